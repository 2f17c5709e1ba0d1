"""Serving until interrupted, in the run mode the options choose: one worker in this process,
several supervised worker processes (``worker_num``), or either under the development reloader
(``reload``).

`serve` is where `tremolo.Tremolo.run` hands over to the server: it gets the options and a
`tremolo.types.DispatcherFactory`, and passes the supervisor the worker's entry point as a
callable, so that nothing in the server layer knows which application it serves.
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import TYPE_CHECKING

from .logs import configure_logging
from .sockets import BindError, addresses, bind, unlink_unix_socket
from .worker import event_loop_factory, run_worker

if TYPE_CHECKING:
    from ..options import Options
    from ..types import DispatcherFactory

logger = logging.getLogger('tremolo')


def serve(options: Options, make_dispatcher: DispatcherFactory) -> None:
    """Serve what ``make_dispatcher`` makes (in each worker) as ``options`` say, until
    SIGINT or SIGTERM (see the deployment documentation for the signals).

    Raises:
        RuntimeError: The event loop asked for cannot be made, or a worker failed to start.
        SystemExit: An address cannot be listened on (a busy port): status 1, after one
            error line naming the address.
    """
    configure_logging(options)
    try:
        _serve(options, make_dispatcher)
    except BindError as exc:
        # A usage error, like a busy port: one line, not a traceback from deep in the stack.
        logger.error('%s', exc.strerror)
        raise SystemExit(1) from None


def _serve(options: Options, make_dispatcher: DispatcherFactory) -> None:
    reuse_port = False
    if options.reload:
        from .reloader import is_reloader_child, reserved_ports, run_with_reloader

        if not is_reloader_child():
            run_with_reloader(options)
            return
        options, reuse_port = reserved_ports(options)
    event_loop_factory(options.loop)  # a missing uvloop fails here, before any worker starts
    target = functools.partial(run_worker, make_dispatcher, options)
    if options.worker_num > 1:
        from .supervisor import Supervisor

        Supervisor(options, target).run()
        return
    sockets: list[socket.socket] = []
    paths: list[str] = []
    try:
        for address in addresses(options):
            sockets.append(bind(address, options.backlog, reuse_port))
            if isinstance(address, str):
                paths.append(address)
        target(sockets, None)
    finally:
        # Every socket bound is closed, even when a later address fails to bind, and the
        # files of UNIX sockets are removed.
        for sock in sockets:
            sock.close()
        for path in paths:
            unlink_unix_socket(path)
