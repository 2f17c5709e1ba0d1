"""A mutation fuzzer for the sans-IO request parser (stdlib only).

Takes a corpus of valid and malformed requests, mutates them (bit flips, interesting bytes,
insertions of protocol fragments, deletions, duplications, splices of two requests, truncation)
and runs every mutant through `HeadReader` and the body decoders the way the protocol does:
heads then bodies, pipelined requests one after the other. Each mutant is fed twice, whole and
cut at random places, and must:

- raise nothing but `ParseError` (anything else is a crash: a 500 or a dropped connection);
- give the same requests, bodies, trailers and verdict in both feeds (a parser whose answer
  depends on how TCP segmented the bytes is a request-smuggling vector);
- finish within a time bound (a hang is a denial of service).

Run ``make fuzz`` (a million inputs) or ``python tests/fuzz/fuzz_parser.py --inputs N --seed S``.
A failure prints the seed, the input number and the input, and exits with status 1.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from typing import Optional, Union

from tremolo.http.body import ChunkedDecoder, ContentLengthDecoder
from tremolo.http.errors import ParseError
from tremolo.http.head import HeadReader

CORPUS = [
    b'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
    b'GET /path/to?a=1&b=two HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n'
    b'Cookie: a=1\r\nCookie: b=2\r\n\r\n',
    b'POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
    b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005, 005\r\n\r\nhello',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'5\r\nhello\r\n6;ext="q\\"v";b\r\n world\r\n0\r\nX-Sum: 1\r\nServer-Timing: a\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n'
    b'0\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n',
    b'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n',
    b'\r\n\r\nGET http://u@a.test:80/x?y HTTP/1.1\r\nHost: [::1]:80\r\n\r\n',
    b'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
    b'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n',
    b'GET / HTTP/1.2\r\nHost: a\r\nX: b\r\n c\r\n\r\n',
    b'GET / HTTP/2.0\r\n\r\n',
    b'GET / HTTP/1.1\nHost: a\n\n',
    b'PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab'
    b'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'ffffffffffffffff\r\nabc',
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'3 ;a = b\r\nabc\r\n0\r\nContent-Length: 9\r\nHost: b\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    b'X-Obs: caf\xc3\xa9\r\n\r\n',
]

INTERESTING_BYTES = b'\x00\t\n\r "#%,/:;=?@[\\]\x7f\x80\xff0159AaFfxX-+'
FRAGMENTS = [
    b'\r\n', b'\n', b'\r', b' ', b'\t', b'\r\n ', b':', b';', b',', b'"', b'0', b'f' * 17,
    b'0\r\n\r\n', b'\r\n\r\n', b'Transfer-Encoding: chunked\r\n', b'Content-Length: 5\r\n',
    b'Content-Length: 0\r\n', b'Host: a\r\n', b'chunked', b'HTTP/1.1', b'GET / HTTP/1.1\r\n',
    b'5\r\nhello\r\n', b'Connection: close\r\n', b'Expect: 100-continue\r\n', b'%00', b'[::1]',
]

MAX_INPUT = 4096


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Apply one to four random mutations to ``data`` (mostly one: more mutants stay close
    enough to a valid request to reach the deeper states)."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        size = len(buf)
        kind = rng.randrange(8)
        pos = rng.randint(0, size)
        if kind == 0 and size:  # flip one bit
            pos = min(pos, size - 1)
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and size:  # overwrite with an interesting byte
            buf[min(pos, size - 1)] = rng.choice(INTERESTING_BYTES)
        elif kind == 2:  # insert a random or interesting byte
            buf[pos:pos] = bytes([rng.randrange(256) if rng.random() < 0.3
                                  else rng.choice(INTERESTING_BYTES)])
        elif kind == 3:  # insert a protocol fragment
            buf[pos:pos] = rng.choice(FRAGMENTS)
        elif kind == 4 and size:  # delete a range
            buf[pos:pos + rng.randint(1, 8)] = b''
        elif kind == 5 and size:  # duplicate a range
            end = min(size, pos + rng.randint(1, 32))
            buf[end:end] = buf[pos:end]
        elif kind == 6:  # splice: our head, another request's tail
            other = rng.choice(CORPUS)
            buf[pos:] = other[rng.randint(0, len(other)):]
        elif kind == 7 and size:  # truncate
            del buf[pos:]
    return bytes(buf[:MAX_INPUT])


def cuts(rng: random.Random, size: int) -> list[int]:
    """Random places to cut an input of ``size`` bytes at (sorted, without 0 and size)."""
    if size < 2:
        return []
    if rng.random() < 0.05:
        return list(range(1, size))  # byte by byte
    return sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, 6))))


Outcome = list[tuple]


def drive(data: bytes, at: list[int]) -> Outcome:
    """Feed ``data`` cut at ``at`` as the protocol does; return what was parsed.

    The outcome lists every head and every complete body in order, then how the input ended:
    ``('error', status, message)`` or ``('waiting',)``.
    """
    events: Outcome = []
    reader = HeadReader()
    buffer = b''
    decoder: Optional[Union[ContentLengthDecoder, ChunkedDecoder]] = None
    body: list[bytes] = []
    bounds = [0, *at, len(data)]
    try:
        for start, end in zip(bounds, bounds[1:]):
            piece = data[start:end]
            if decoder is not None:
                pieces = decoder.feed(piece)
                piece = b''
                body.extend(pieces)
                if not decoder.done:
                    continue
                buffer = decoder.rest
                events.append(('body', _joined(body), decoder.trailers))
                decoder = None
            buffer += piece
            while decoder is None:
                result = reader.read(buffer)
                if result is None:
                    break
                head, consumed = result
                assert 0 < consumed <= len(buffer), (consumed, len(buffer))
                buffer = buffer[consumed:]
                events.append(('head', head.method, head.target, head.version, head.headers,
                               head.content_length, head.chunked, head.keep_alive,
                               head.expect_continue, head.upgrade, head.host))
                if head.chunked:
                    decoder = ChunkedDecoder()
                elif head.content_length:
                    decoder = ContentLengthDecoder(head.content_length)
                else:
                    continue
                body = decoder.feed(buffer)
                buffer = b''
                if decoder.done:
                    buffer = decoder.rest
                    events.append(('body', _joined(body), decoder.trailers))
                    decoder = None
    except ParseError as exc:
        assert exc.status in (400, 413, 414, 417, 431, 501, 505), exc.status
        assert exc.message
        events.append(('error', exc.status, exc.message))
        return events
    events.append(('waiting',))
    return events


def _joined(pieces: list[bytes]) -> bytes:
    for piece in pieces:
        assert isinstance(piece, bytes) and piece, pieces
    return b''.join(pieces)


class Hang(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


def check(data: bytes, at: list[int]) -> str:
    """The properties every input must have; raises AssertionError (or the crash) if not.

    Returns:
        ``'rejected'``, ``'accepted'`` (at least one request parsed, no error) or
        ``'incomplete'``.
    """
    whole = drive(data, [])
    split = drive(data, at)
    assert whole == split, f'whole and split feeds disagree:\n  {whole}\n  {split}'
    if whole[-1][0] == 'error':
        return 'rejected'
    return 'accepted' if len(whole) > 1 else 'incomplete'


def run(inputs: int, seed: int, time_limit: float = 2.0, report: bool = True) -> int:
    """Fuzz ``inputs`` mutants; return the number of failures (stops at the first)."""
    rng = random.Random(seed)
    use_alarm = hasattr(signal, 'setitimer')
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
    started = time.perf_counter()
    verdicts = {'rejected': 0, 'accepted': 0, 'incomplete': 0}
    try:
        for number in range(inputs):
            data = mutate(rng, rng.choice(CORPUS))
            at = cuts(rng, len(data))
            began = time.perf_counter()
            try:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, time_limit)
                verdicts[check(data, at)] += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is reported
                if isinstance(exc, KeyboardInterrupt):
                    raise
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                kind = 'hang' if isinstance(exc, Hang) else type(exc).__name__
                print(f'FAIL ({kind}) seed={seed} input #{number} cut at {at}:\n{data!r}',
                      file=sys.stderr)
                traceback.print_exception(type(exc), exc, exc.__traceback__)
                return 1
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if not use_alarm and time.perf_counter() - began > time_limit:
                print(f'FAIL (slow) seed={seed} input #{number}: {data!r}', file=sys.stderr)
                return 1
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    if report:
        print(f'{inputs} inputs in {elapsed:.1f} s: {inputs / elapsed:,.0f} inputs/s '
              f'(seed {seed}; {verdicts["accepted"]} accepted, {verdicts["rejected"]} rejected, '
              f'{verdicts["incomplete"]} incomplete)')
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--inputs', type=int, default=1_000_000, help='mutants to run')
    parser.add_argument('--seed', type=int, default=None, help='random seed (default: random)')
    parser.add_argument('--time-limit', type=float, default=2.0,
                        help='seconds one input may take before it counts as a hang')
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    return run(args.inputs, seed, args.time_limit)


if __name__ == '__main__':
    sys.exit(main())
