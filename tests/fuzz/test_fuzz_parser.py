"""A quick run of the parser fuzzer (``make fuzz`` runs a million inputs)."""

from __future__ import annotations

import random

from tremolo.http.head import HeadReader

from . import fuzz_parser


def test_fuzz_smoke(capsys):
    assert fuzz_parser.run(5000, seed=20240601) == 0
    assert '5000 inputs' in capsys.readouterr().out


def test_mutants_and_cuts_are_well_formed():
    rng = random.Random(7)
    for _ in range(500):
        data = fuzz_parser.mutate(rng, rng.choice(fuzz_parser.CORPUS))
        assert isinstance(data, bytes) and len(data) <= fuzz_parser.MAX_INPUT
        at = fuzz_parser.cuts(rng, len(data))
        assert at == sorted(set(at)) and all(0 < i < len(data) for i in at)


def test_drive_reports_pipelined_requests_and_the_error():
    data = (b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab'
            b'GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\n\r\n')
    events = fuzz_parser.drive(data, [5, 50, 51])
    assert [e[0] for e in events] == ['head', 'body', 'head', 'error']
    assert events[1][1] == b'ab' and events[2][2] == b'/2' and events[3][1] == 505


def test_a_crash_is_reported(monkeypatch, capsys):
    def broken(self, buffer):
        raise ValueError('boom')

    monkeypatch.setattr(HeadReader, 'read', broken)
    assert fuzz_parser.run(10, seed=1) == 1
    assert 'FAIL (ValueError)' in capsys.readouterr().err


def test_a_hang_is_reported(monkeypatch, capsys):
    def hang(self, buffer):
        while True:
            pass

    monkeypatch.setattr(HeadReader, 'read', hang)
    assert fuzz_parser.run(10, seed=1, time_limit=0.05) == 1
    assert 'FAIL (hang)' in capsys.readouterr().err
