"""``socketwire --reload``: restart the server when its source changes (layer 3).

For development only. The supervising process binds the listening socket once
and runs the server in a child process (``python -m socketwire ... --fd N``),
so a restart keeps the address and port (port 0 stays the port first bound)
and connections queue meanwhile instead of being refused. It looks at the
modification times of the ``.py`` files under the watched directories every
``--reload-delay`` seconds (the standard library only: no watcher to install),
and on a change stops the child as SIGTERM does (gracefully) and starts a new
one. A child that fails (a syntax error just saved) is started again at the
next change.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType

__all__ = ["SourceWatcher", "bind_socket", "child_arguments", "socketwire_command", "supervise"]

log = logging.getLogger("socketwire.reload")

# Directories never watched: tools' caches and environments, not the program.
_SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".venv", "venv", "node_modules", ".mypy_cache", ".tox"}
)

# Options of the supervisor that the child must not see (with their value, if any).
_RELOAD_FLAGS = {"--reload": False, "--reload-dir": True, "--reload-delay": True}


class SourceWatcher:
    """The modification times of the ``.py`` files under some directories."""

    def __init__(self, directories: Iterable[str]) -> None:
        self.directories = [Path(d).resolve() for d in directories]
        self._seen = self.snapshot()

    def snapshot(self) -> dict[str, int]:
        """Every watched file and its modification time (nanoseconds)."""
        seen: dict[str, int] = {}
        for top in self.directories:
            for root, dirs, files in os.walk(top):
                dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith(".")]
                for name in files:
                    if name.endswith(".py"):
                        path = os.path.join(root, name)
                        try:
                            seen[path] = os.stat(path).st_mtime_ns
                        except OSError:  # removed while walking
                            continue
        return seen

    def changes(self) -> list[str]:
        """The files changed, added or removed since the last call."""
        now = self.snapshot()
        before, self._seen = self._seen, now
        changed = [path for path, mtime in now.items() if before.get(path) != mtime]
        changed.extend(path for path in before if path not in now)
        return sorted(changed)


def socketwire_command(argv: Sequence[str], dropped: Mapping[str, bool], *extra: str) -> list[str]:
    """``python -m socketwire`` with the options of ``argv`` (a supervisor's
    command line) but the ``dropped`` ones, then ``extra``. ``dropped`` maps an
    option to whether it takes a value (``--name value`` or ``--name=value``)."""
    out: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        name = arg.partition("=")[0]
        if name in dropped:
            skip_value = dropped[name] and "=" not in arg
            continue
        out.append(arg)
    return [sys.executable, "-m", "socketwire", *out, *extra]


def child_arguments(argv: Sequence[str], fd: int) -> list[str]:
    """The supervisor's command line for the child: without the reload options,
    serving the inherited socket ``fd``."""
    return socketwire_command(argv, _RELOAD_FLAGS, "--fd", str(fd))


def bind_socket(args: argparse.Namespace) -> socket.socket:
    """The listening socket of ``args`` (``--uds`` or ``--host``/``--port``,
    ``--backlog``), inheritable by child processes."""
    if args.uds:
        if os.path.exists(args.uds):
            os.unlink(args.uds)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(args.uds)
    else:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    sock.listen(args.backlog)
    sock.set_inheritable(True)
    return sock


def _stop_child(child: subprocess.Popen[bytes], timeout: float) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("the server did not stop in %.1fs: killing it", timeout)
        child.kill()
        child.wait()


def supervise(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the server in a child process, restarted on source changes; blocks
    until SIGINT or SIGTERM. The exit status."""
    if args.fd is not None:
        log.error("--reload binds its own socket: drop --fd")
        return 2
    sock = bind_socket(args)
    watcher = SourceWatcher(args.reload_dir or ["."])
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    command = child_arguments(argv, sock.fileno())
    log.info("watching %s for changes (--reload)", ", ".join(map(str, watcher.directories)))
    # The child's own limit, plus time to exit.
    stop_timeout = args.timeout_graceful_shutdown + 2.0
    try:
        while not stopping.is_set():
            # Its own process group: Ctrl-C reaches the supervisor alone, which
            # stops the child once (a second signal would cut its shutdown short).
            child = subprocess.Popen(command, pass_fds=(sock.fileno(),), process_group=0)
            reported = False
            while not stopping.wait(args.reload_delay):
                changed = watcher.changes()
                if changed:
                    shown = ", ".join(os.path.relpath(p) for p in changed[:3])
                    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                    log.info("%s%s changed: restarting", shown, more)
                    break
                code = child.poll()
                if code is not None and not reported:
                    reported = True
                    log.error("the server exited with status %d: waiting for a change", code)
            _stop_child(child, stop_timeout)
    finally:
        sock.close()
        if args.uds and os.path.exists(args.uds):
            os.unlink(args.uds)
    return 0
