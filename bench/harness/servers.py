"""The servers compared: how each one is started, from which virtual environment.

Every server gets the same treatment: access log off, log level warning or above, a listen
backlog of 4096 and a keep-alive timeout of 300 s (so the idle-connection measurement keeps
them all), one process (a supervisor plus one worker for tremolo 0.5.3, whose worker is the
one measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

BENCH_DIR = Path(__file__).resolve().parent.parent
ENVS_DIR = BENCH_DIR / '.envs'
APPS_DIR = BENCH_DIR / 'apps'
BASELINE = 'tremolo'

BACKLOG = '4096'
KEEPALIVE = '300'


def tremolo_cli(app: str) -> list[str]:
    """``python -m tremolo APP`` with the options every server gets."""
    return ['-m', 'tremolo', app, '--host', '127.0.0.1', '--port', '{port}',
            '--no-access-log', '--log-level', 'warning', '--backlog', BACKLOG,
            '--keepalive-timeout', KEEPALIVE]


def uvicorn_cli(app: str) -> list[str]:
    """``python -m uvicorn APP`` with the options every server gets."""
    return ['-m', 'uvicorn', app, '--host', '127.0.0.1', '--port', '{port}',
            '--no-access-log', '--log-level', 'warning', '--backlog', BACKLOG,
            '--timeout-keep-alive', KEEPALIVE, '--lifespan', 'on']


TREMOLO_CLI = tremolo_cli('tremolo_app:app')
UVICORN_CLI = uvicorn_cli('asgi_app:app')



@dataclass(frozen=True)
class ServerSpec:
    """One server configuration to measure."""

    name: str
    label: str
    env: str
    args: list[str]
    import_stmt: str
    packages: tuple[str, ...] = field(default=())
    #: Measured only when named with ``--only`` (it needs a setup step of its own).
    on_request: bool = False

    @property
    def python(self) -> Path:
        return ENVS_DIR / self.env / 'bin' / 'python'

    def argv(self, port: int) -> list[str]:
        return [str(self.python), *(arg.format(port=port) for arg in self.args)]

    def unavailable(self) -> Optional[str]:
        """Why this server cannot run here, or None."""
        reason_file = ENVS_DIR / f'{self.env}.unavailable'
        if reason_file.exists():
            return reason_file.read_text().strip() or 'environment unavailable'
        if not (ENVS_DIR / self.env / '.ok').exists() or not self.python.exists():
            return f'environment .envs/{self.env} is not set up (run: make -C bench setup)'
        return None


SERVERS: list[ServerSpec] = [
    ServerSpec(
        'tremolo', 'Tremolo (this repo), asyncio', 'tremolo',
        [*TREMOLO_CLI, '--loop', 'asyncio'], 'import tremolo', ('tremolo',),
    ),
    ServerSpec(
        # What the Metrics extension costs: next to `tremolo`, in the same run
        # (--only tremolo,tremolo-metrics --scenarios hello).
        'tremolo-metrics', 'Tremolo (this repo), asyncio, Metrics extension installed',
        'tremolo', [*(arg.replace('tremolo_app:app', 'tremolo_metrics_app:app')
                      for arg in TREMOLO_CLI), '--loop', 'asyncio'],
        'import tremolo', ('tremolo',), on_request=True,
    ),
    ServerSpec(
        'tremolo-uvloop', 'Tremolo (this repo), uvloop', 'tremolo',
        [*TREMOLO_CLI, '--loop', 'uvloop'], 'import tremolo, uvloop', ('tremolo', 'uvloop'),
    ),
    ServerSpec(
        'tremolo-pypy', 'Tremolo (this repo) on PyPy, asyncio', 'pypy',
        [*TREMOLO_CLI, '--loop', 'asyncio'], 'import tremolo', ('tremolo',),
    ),
    ServerSpec(
        'tremolo-base', 'Tremolo at another commit (make -C bench base BASE=REV), asyncio',
        'tremolo-base', [*TREMOLO_CLI, '--loop', 'asyncio'], 'import tremolo', ('tremolo',),
        on_request=True,
    ),
    ServerSpec(
        'tremolo-asgi', 'Tremolo (this repo) in ASGI mode, raw ASGI app, asyncio', 'tremolo',
        [*tremolo_cli('asgi_app:app'), '--loop', 'asyncio'], 'import tremolo', ('tremolo',),
    ),
    ServerSpec(
        'tremolo-starlette', 'Tremolo (this repo) in ASGI mode, Starlette app, asyncio',
        'tremolo', [*tremolo_cli('starlette_app:app'), '--loop', 'asyncio'],
        'import tremolo, starlette', ('tremolo', 'starlette'),
    ),
    ServerSpec(
        # Like for like with uvicorn-httptools and uvicorn-starlette, which run on uvloop.
        'tremolo-asgi-uvloop', 'Tremolo (this repo) in ASGI mode, raw ASGI app, uvloop',
        'tremolo', [*tremolo_cli('asgi_app:app'), '--loop', 'uvloop'],
        'import tremolo, uvloop', ('tremolo', 'uvloop'),
    ),
    ServerSpec(
        'tremolo-starlette-uvloop', 'Tremolo (this repo) in ASGI mode, Starlette app, uvloop',
        'tremolo', [*tremolo_cli('starlette_app:app'), '--loop', 'uvloop'],
        'import tremolo, starlette, uvloop', ('tremolo', 'starlette', 'uvloop'),
    ),
    ServerSpec(
        'tremolo-0.5.3', 'tremolo 0.5.3 (PyPI), limits lifted', 'tremolo053',
        ['tremolo053_app.py', '--port', '{port}', '--backlog', BACKLOG,
         '--keepalive-timeout', KEEPALIVE],
        'import tremolo', ('tremolo',),
    ),
    ServerSpec(
        'uvicorn-h11', 'uvicorn, h11 + asyncio, raw ASGI', 'uvicorn',
        [*UVICORN_CLI, '--http', 'h11', '--loop', 'asyncio'], 'import uvicorn, h11',
        ('uvicorn', 'h11'),
    ),
    ServerSpec(
        'uvicorn-httptools', 'uvicorn, httptools + uvloop, raw ASGI', 'uvicorn',
        [*UVICORN_CLI, '--http', 'httptools', '--loop', 'uvloop'],
        'import uvicorn, httptools, uvloop', ('uvicorn', 'httptools', 'uvloop'),
    ),
    ServerSpec(
        'uvicorn-starlette', 'uvicorn, httptools + uvloop, Starlette app', 'uvicorn',
        [*uvicorn_cli('starlette_app:app'), '--http', 'httptools', '--loop', 'uvloop'],
        'import uvicorn, starlette', ('uvicorn', 'starlette', 'httptools', 'uvloop'),
    ),
    ServerSpec(
        'hypercorn', 'hypercorn (asyncio), raw ASGI', 'hypercorn',
        ['-m', 'hypercorn', 'asgi_app:app', '--bind', '127.0.0.1:{port}', '--backlog', BACKLOG,
         '--keep-alive', KEEPALIVE, '--log-level', 'warning', '--workers', '1'],
        'import hypercorn', ('hypercorn', 'h11', 'wsproto'),
    ),
    ServerSpec(
        'granian', 'granian (Rust core), raw ASGI', 'granian',
        ['-m', 'granian', '--interface', 'asgi', '--host', '127.0.0.1', '--port', '{port}',
         '--workers', '1', '--backlog', BACKLOG, '--log-level', 'warning', 'asgi_app:app'],
        'import granian', ('granian',),
    ),
    ServerSpec(
        'aiohttp', 'aiohttp.web (C extensions)', 'aiohttp',
        ['aiohttp_app.py', '--port', '{port}', '--backlog', BACKLOG,
         '--keepalive-timeout', KEEPALIVE],
        'import aiohttp.web', ('aiohttp', 'multidict', 'yarl'),
    ),
]


def select(names: Optional[list[str]]) -> list[ServerSpec]:
    """The servers named (all when ``names`` is empty), baseline first, in the table's order.

    Raises:
        ValueError: An unknown name.
    """
    if not names:
        return [spec for spec in SERVERS if not spec.on_request]
    known = {spec.name: spec for spec in SERVERS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f'unknown server(s) {", ".join(unknown)}; known: {", ".join(known)}')
    return [spec for spec in SERVERS if spec.name in names]
