"""The body both compression benchmark apps stream: about 1 MiB of JSON (an array of 10,944
objects) in 64 pieces of about 16 KiB. Standard library only: every environment imports it."""

import json

_ROWS = [{'id': n, 'name': f'item {n}', 'tags': ['a', 'b', 'c'], 'price': n * 1.25,
          'available': n % 3 != 0} for n in range(64 * 171)]
_PER_PIECE = 171
_TEXTS = [','.join(json.dumps(row) for row in _ROWS[start:start + _PER_PIECE])
          for start in range(0, len(_ROWS), _PER_PIECE)]
_TEXTS[0] = '[' + _TEXTS[0]
#: The pieces, in order: joined, they are one JSON array.
JSON_PIECES = [(text + (',' if n < len(_TEXTS) - 1 else ']')).encode()
               for n, text in enumerate(_TEXTS)]
