"""What is measured: load scenarios (wrk against one endpoint), idle keep-alive memory and
import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

LOAD, IDLE, IMPORT = 'load', 'idle', 'import'
#: The ``script`` of the load scenario measured by the WebSocket echo client, not wrk.
WEBSOCKET = 'websocket'


@dataclass(frozen=True)
class Scenario:
    """One measurement made for every server."""

    name: str
    title: str
    kind: str
    endpoint: Optional[str] = None  # validated before measuring (see validate.ENDPOINTS)
    connections: Optional[int] = None  # None: the --connections option
    script: str = 'report.lua'
    request_body: int = 0  # bytes each request sends (the Lua script sets them)

    def title_for(self, connections: int) -> str:
        return self.title.format(c=connections)


SCENARIOS: list[Scenario] = [
    Scenario('hello', 'GET / ({c} connections)', LOAD, 'hello'),
    Scenario('hello-c1', 'GET / (1 connection)', LOAD, 'hello', connections=1),
    Scenario('hello-c256', 'GET / (256 connections)', LOAD, 'hello', connections=256),
    Scenario('json', 'GET /json ({c} connections)', LOAD, 'json'),
    Scenario('user', 'GET /user/42 ({c} connections)', LOAD, 'user'),
    Scenario('stream', 'GET /stream: 1 MiB in 64 chunks ({c} connections)', LOAD, 'stream'),
    Scenario('upload', 'POST /upload: 1 MiB body ({c} connections)', LOAD, 'upload',
             script='upload.lua', request_body=1024 * 1024),
    Scenario('ws-echo', 'WebSocket /ws: 16-byte echo round trips (1 connection)', LOAD, 'ws',
             connections=1, script=WEBSOCKET),
    Scenario('idle', 'Idle keep-alive connections: worker RSS', IDLE, 'hello'),
    Scenario('import', 'Start-up: python -c "import ..."', IMPORT),
]


def select(names: Optional[list[str]]) -> list[Scenario]:
    """The scenarios named (all when ``names`` is empty), in the standard order.

    Raises:
        ValueError: An unknown name.
    """
    if not names:
        return list(SCENARIOS)
    known = {scenario.name for scenario in SCENARIOS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f'unknown scenario(s) {", ".join(unknown)}; known: {", ".join(known)}')
    return [scenario for scenario in SCENARIOS if scenario.name in names]
