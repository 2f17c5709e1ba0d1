"""The built wheel: the mapped packages land inside ``tremolo``, nothing at the top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
         '-w', str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = out.glob('tremolo-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_contents(wheel_names):
    names = set(wheel_names)
    for expected in ('tremolo/__init__.py', 'tremolo/py.typed', 'tremolo/http/head.py',
                     'tremolo/testing/client.py', 'tremolo/middleware/__init__.py',
                     'tremolo/extensions/__init__.py'):
        assert expected in names
    tops = {name.split('/')[0] for name in names}
    assert tops <= {'tremolo'} | {name for name in tops if name.endswith('.dist-info')}


def test_wheel_metadata(wheel_names):
    metadata = [name for name in wheel_names if name.endswith('METADATA')]
    assert metadata
