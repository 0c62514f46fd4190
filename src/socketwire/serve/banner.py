"""What ``Server.run()`` says when it starts (layer 3).

A server run from a script should say where it listens even when the program
configured no logging, as uvicorn does: without a handler anywhere, Python
shows only warnings. :func:`ensure_console_logging` gives socketwire's loggers
a console handler at INFO in that case only (a program that configured logging
keeps its own), and :func:`announce` writes the line that says how the server
runs: the event loop and whether the compiled speedups are in use.
"""

from __future__ import annotations

import asyncio
import logging

from socketwire.core.websocket.frames import SPEEDUPS

__all__ = ["announce", "describe_runtime", "ensure_console_logging"]

log = logging.getLogger("socketwire.server")


def ensure_console_logging() -> bool:
    """Show socketwire's INFO lines on stderr when no logging is configured.

    Returns whether a handler was added. Nothing is changed when the root logger
    or the ``socketwire`` logger already has a handler.
    """
    package = logging.getLogger("socketwire")
    if logging.getLogger().handlers or package.handlers:
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    package.addHandler(handler)
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)
    # Its own handler only: a root handler added later must not print each line twice.
    package.propagate = False
    return True


def describe_runtime() -> str:
    """``uvloop, compiled speedups``: the running loop and the WebSocket unmasking in use."""
    loop = asyncio.get_running_loop()
    loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    speedups = "compiled speedups" if SPEEDUPS else "pure-Python speedups fallback"
    return f"{loop_name}, {speedups}"


def announce(host: str, port: int, path: str, *, ssl: bool = False, uds: str | None = None) -> None:
    """Log where the server listens and how it runs (INFO, ``socketwire.server``);
    ``uds``: the Unix socket it listens on instead of ``host:port``."""
    scheme = "https" if ssl else "http"
    where = f"unix:{uds}" if uds else f"{scheme}://{host}:{port}"
    log.info(
        "socketwire running on %s%s (%s; press Ctrl-C to stop)",
        where,
        path,
        describe_runtime(),
    )
