"""Sans-IO HTTP/1.1: bytes in, parsed values out; no sockets and no event loop.

Everything in this package is pure computation over bytes so that it can be tested by feeding
input whole, byte by byte, or with trailing data, and reused by any transport.
"""
