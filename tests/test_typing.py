"""The public API as a type checker sees it from an application outside the checkout: found
through the install (the strict editable one of ``make``, or a wheel), with ``mypy --strict``
clean on a typed application and precise about a wrong one."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.apps.harness import REPO_ROOT

pytest.importorskip('mypy', reason='mypy is installed on CPython only (test extras)')

WRONG = '''\
from tremolo import Response, Tremolo
from tremolo.extensions.static import StaticFiles
from tremolo.middleware.bandwidth import BandwidthLimiter

app = Tremolo()
app.install(StaticFiles('/static', 'public'))
app.add_middleware(BandwidthLimiter(download_rate=1024))


@app.route('/')
async def index(response: Response) -> str:
    response.set_status('teapot')
    return 418
'''


def mypy(tmp_path, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict app.py`` in a folder of its own, far from the checkout (which must not
    be what is found)."""
    (tmp_path / 'app.py').write_text(source)
    return subprocess.run(
        [sys.executable, '-m', 'mypy', '--strict', '--no-incremental', '--config-file',
         str(tmp_path / 'none.ini'), 'app.py'],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)},
    )


def test_a_typed_application_is_clean_under_strict(tmp_path):
    shutil.copy(REPO_ROOT / 'examples' / 'typed.py', tmp_path / 'typed.py')
    (tmp_path / 'none.ini').write_text('[mypy]\n')
    result = mypy(tmp_path, (tmp_path / 'typed.py').read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Success: no issues found in 1 source file' in result.stdout


def test_mistakes_are_found_in_the_application(tmp_path):
    (tmp_path / 'none.ini').write_text('[mypy]\n')
    result = mypy(tmp_path, WRONG)
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if ': error:' in line]
    # Only the two mistakes: tremolo, tremolo.middleware and tremolo.extensions were all found.
    assert len(errors) == 2, result.stdout
    assert errors[0].startswith('app.py:12: error: Argument 1 to "set_status" of "Response" '
                                'has incompatible type "str"; expected "int"')
    assert errors[1].startswith('app.py:13: error: Incompatible return value type (got "int", '
                                'expected "str")')
