"""Serving until interrupted, in the run mode the options choose: one worker in this process,
worker processes under a supervisor (``worker_num`` above 1, ``supervise``, worker recycling),
or either under the development reloader (``reload``).

`serve` is where `tremolo.Tremolo.run` hands over to the server: it gets the options and a
`tremolo.types.DispatcherFactory`, and passes the supervisor the worker's entry point as a
callable, so that nothing in the server layer knows which application it serves.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import TYPE_CHECKING, Callable, Optional

from .link import RELOADER_LINK_ENV, reloader_link
from .logs import configure_logging
from .sockets import BindError, addresses, bind, unlink_unix_socket
from .worker import WorkerTarget, event_loop_factory, run_worker

if TYPE_CHECKING:
    from ..options import Options
    from ..types import DispatcherFactory

logger = logging.getLogger('tremolo')


def serve(options: Options, make_dispatcher: DispatcherFactory,
          reimport: Optional[Callable[[], DispatcherFactory]] = None) -> None:
    """Serve what ``make_dispatcher`` makes (in each worker) as ``options`` say, until
    SIGINT or SIGTERM (see the deployment documentation for the signals).

    Args:
        options: The server's options.
        make_dispatcher: Makes the dispatcher of each worker, given its event loop.
        reimport: Imports the application afresh and returns its dispatcher factory: called
            in the supervisor on SIGHUP, for the new workers. Without it, SIGHUP starts new
            workers with the code already loaded.

    Raises:
        RuntimeError: The event loop asked for cannot be made, or a worker failed to start.
        SystemExit: An address cannot be listened on (a busy port): status 1, after one
            error line naming the address.
        ValueError: The logging configuration file cannot be applied.
    """
    configure_logging(options)
    try:
        _serve(options, make_dispatcher, reimport)
    except BindError as exc:
        # A usage error, like a busy port: one line, not a traceback from deep in the stack.
        logger.error('%s', exc.strerror)
        raise SystemExit(1) from None


def _serve(options: Options, make_dispatcher: DispatcherFactory,
           reimport: Optional[Callable[[], DispatcherFactory]]) -> None:
    reuse_port = False
    parent = None
    if options.reload:
        from .reloader import is_reloader_child, reserved_ports, run_with_reloader

        if not is_reloader_child():
            run_with_reloader(options)
            return
        options, reuse_port = reserved_ports(options)
        parent = reloader_link()
        os.environ.pop(RELOADER_LINK_ENV, None)  # not for the application's own children
    event_loop_factory(options.loop)  # a missing uvloop fails here, before any worker starts
    target: WorkerTarget = functools.partial(run_worker, make_dispatcher, options)
    if options.supervised:
        from .supervisor import Supervisor

        def new_target() -> WorkerTarget:
            assert reimport is not None
            return functools.partial(run_worker, reimport(), options)

        Supervisor(options, target, new_target if reimport is not None else None,
                   parent).run()
        return
    sockets: list[socket.socket] = []
    paths: list[str] = []
    try:
        for address in addresses(options):
            sockets.append(bind(address, options.backlog, reuse_port))
            if isinstance(address, str):
                paths.append(address)
        target(sockets, parent)
    finally:
        # Every socket bound is closed, even when a later address fails to bind, and the
        # files of UNIX sockets are removed.
        for sock in sockets:
            sock.close()
        for path in paths:
            unlink_unix_socket(path)
