"""Static files: serve a directory under a URL prefix.

```python
from tremolo import Tremolo
from tremolo.extensions.static import StaticFiles

app = Tremolo()
app.install(StaticFiles('public', prefix='/static'))
```

Files go out with `Response.sendfile`: Content-Type from the name, ETag and Last-Modified,
conditional requests (304/412) and ranges (206/416), zero-copy where the connection allows.

Only files inside the directory are ever served. A request is refused with 404, and the
refusal logged at INFO on the ``tremolo.static`` logger with the client and the target, when
its path:

- holds a percent-encoded slash, backslash or NUL (``%2F``, ``%5C``, ``%00``) in the target
  as received: a name cannot contain them, so they only ever serve to smuggle a separator past
  a check;
- has a ``.`` or ``..`` segment (also when percent-encoded: ``%2e%2e``), an empty segment
  (``//``, which would make an absolute path), a backslash, or a segment that starts like a
  Windows drive (``C:``);
- names a hidden file or directory (a segment starting with ``.``) and ``hidden`` is off;
- leads, through a symbolic link, outside the directory, and ``follow_symlinks`` is off
  (links that stay inside are followed).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from typing import Any, Optional, Union

from tremolo import Context, Extension, NotFound, RegistrationError, Request, Response, Tremolo

logger = logging.getLogger('tremolo.static')

# Percent-encoded "/", "\" and NUL, in the raw target (compared lower-cased).
_ENCODED_SEPARATORS = (b'%2f', b'%5c', b'%00')


class StaticFiles(Extension):
    """Serve the files of ``directory`` under ``prefix`` (``GET`` and ``HEAD``).

    A directory is answered with its ``index`` file, at the URL that ends with a slash: a
    request for ``/static/docs`` is redirected (301) to ``/static/docs/``, as web servers do,
    so that relative links in the index page resolve. There are no directory listings.

    Args:
        directory: The directory to serve (it must exist).
        prefix: The URL path it is served under (``''`` or ``'/'`` for the whole site).
        index: The file served for a directory, or ``None`` for none (404).
        follow_symlinks: Also serve files that symbolic links lead to outside ``directory``.
        cache_control: The ``Cache-Control`` of every file, or ``None`` for none.
        hidden: Serve hidden files and directories (names starting with ``.``).
        headers: More headers for every file.
        name: Identifies the extension (several may be installed, one per prefix).
    """

    def __init__(
        self, directory: Union[str, os.PathLike[str]], prefix: str = '/static', *,
        index: Optional[str] = 'index.html', follow_symlinks: bool = False,
        cache_control: Optional[str] = 'public, max-age=3600', hidden: bool = False,
        headers: Optional[Mapping[str, str]] = None, name: str = 'static',
    ) -> None:
        self.directory = os.fspath(directory)
        self.prefix = prefix.rstrip('/')
        if self.prefix and not self.prefix.startswith('/'):
            raise ValueError(f'prefix {prefix!r} must start with /')
        if index is not None and (not index or '/' in index or index.startswith('.')):
            raise ValueError(f'index {index!r} must be a plain file name')
        self.index = index
        self.follow_symlinks = follow_symlinks
        self.cache_control = cache_control
        self.hidden = hidden
        self.headers = dict(headers or {})
        self.name = name
        self.root = ''

    def setup(self, app: Tremolo) -> None:
        if not os.path.isdir(self.directory):
            raise RegistrationError(f'{self.name}: {self.directory!r} is not a directory')
        self.root = os.path.realpath(self.directory)
        app.route(self.prefix + '/{path:path}', methods=('GET',))(self.serve)
        if self.prefix:
            app.route(self.prefix, methods=('GET',))(self.serve_prefix)

    async def serve_prefix(self, request: Request, response: Response) -> bytes:
        """The prefix itself: redirected to the directory URL (with the slash)."""
        return response.redirect(_with_query(self.prefix + '/', request), 301)

    async def serve(
        self, request: Request, response: Response, context: Context, path: str
    ) -> Any:
        """Answer ``GET``/``HEAD`` for one path under the prefix."""
        real = self.resolve(request, path)
        try:
            info = os.stat(real)
        except (OSError, ValueError):
            raise NotFound() from None
        if stat.S_ISDIR(info.st_mode):
            if path and not path.endswith('/'):
                location = request.raw_path.decode('ascii') + '/'
                return response.redirect(_with_query(location, request), 301)
            if self.index is None:
                raise NotFound()
            real = self._inside(os.path.join(real, self.index), request, self.index)
        elif path.endswith('/'):
            raise NotFound()  # a file is not a directory (as open() says: ENOTDIR)
        if self.cache_control is not None:
            response.headers['Cache-Control'] = self.cache_control
        return await response.sendfile(
            real, headers=self.headers, chunk_size=context.option('buffer_size'),
        )

    def resolve(self, request: Request, path: str) -> str:
        """The real path of the file for ``path`` (the part of the URL after the prefix).

        Raises:
            NotFound: The path is refused (logged) or leads nowhere.
        """
        raw = request.raw_path.lower()
        if any(encoded in raw for encoded in _ENCODED_SEPARATORS):
            self._refuse(request, 'encoded separator or NUL')
        segments = path.split('/')
        if segments[-1] == '':
            segments.pop()  # the trailing slash of a directory URL
        for segment in segments:
            if segment in ('', '.', '..'):
                self._refuse(request, 'empty or dot segment')
            if '\\' in segment or '\x00' in segment:
                self._refuse(request, 'backslash or NUL')
            if len(segment) >= 2 and segment[1] == ':' and segment[0].isalpha():
                self._refuse(request, 'drive letter')
            if segment[0] == '.' and not self.hidden:
                self._refuse(request, 'hidden file')
        return self._inside(os.path.join(self.root, *segments), request, path)

    def _inside(self, candidate: str, request: Request, path: str) -> str:
        """The real path of ``candidate``, checked to stay inside the root (symbolic links
        resolved) and not to be hidden once resolved."""
        real = os.path.realpath(candidate)
        root = self.root
        inside = real == root or real.startswith(root.rstrip(os.sep) + os.sep)
        if not inside:
            if not self.follow_symlinks:
                self._refuse(request, 'symbolic link out of the directory')
        elif not self.hidden and real != root:
            relative = os.path.relpath(real, root)
            if any(part.startswith('.') for part in relative.split(os.sep)):
                self._refuse(request, 'hidden file (through a link)')
        return real

    def _refuse(self, request: Request, why: str) -> None:
        client = request.client
        host = client[0] if isinstance(client, tuple) else client or '-'
        logger.info('%s: refused %s %s from %s (%s)', self.name, request.method,
                    request.raw_path.decode('ascii', 'replace'), host, why)
        raise NotFound()


def _with_query(location: str, request: Request) -> str:
    return f'{location}?{request.query_string}' if request.query_string else location
