"""``socketwire --workers N``: N worker processes on one port, no sticky sessions (layer 3).

The command line's process becomes a supervisor. It binds the listening socket
once, makes a private directory for the workers' Unix sockets, and starts N
workers (``python -m socketwire ... --worker-id I``), each with one end of a
socket pair, its channel. Then:

* **Connections.** The supervisor accepts and passes each connection to the
  next ready worker, in turn, over its channel (``socketwire.serve.handoff``
  says why rather than ``SO_REUSEPORT`` or a shared accepting socket). The
  listening socket is the supervisor's for its whole life, so the port never
  refuses a connection while workers start, stop or die.
* **Sessions.** A worker names its Engine.IO sessions after itself
  (``<worker>.<random>``); a request for a session of another worker (a
  polling request, or the WebSocket upgrade of a polling session) goes to that
  worker over its Unix socket and is answered there
  (``socketwire.serve.forward``). No load balancer needs to be sticky.
* **One cluster.** The workers' namespaces share a ``WorkersAdapter``
  (``socketwire.adapters.workers``) over a mesh of Unix sockets: broadcasts,
  rooms, ``fetch_sockets``, ``server_side_emit`` with acks and broadcasts with
  acks span the workers as they span a Redis cluster, without Redis, and
  connection state recovery works when a client comes back on another worker.
* **Restarts.** A worker that exits unasked is started again (after a second,
  if it lived less than that); its clients reconnect, to any worker. SIGHUP
  replaces the workers one at a time: the new worker is started and serving
  before the old one is told to stop, and the old one drains gracefully
  (``Server.shutdown``: acks in flight arrive, clients are told to reconnect
  and, with recovery, get their missed packets on the worker they reach).
  SIGINT or SIGTERM stops every worker gracefully, then the supervisor.

A worker's id grows with every worker started (1, 2, 3...), so an old and a
new worker never share one. ``current_worker()`` tells the application, in a
worker, which one it is and what its router did.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from socketwire.adapters.cluster import ClusterAdapter
from socketwire.adapters.worker_bus import WorkerBus, bus_socket_path
from socketwire.adapters.workers import create_adapter
from socketwire.reload import socketwire_command
from socketwire.serve.forward import OwnerRouter, RouterStats, http_socket_path, owned_id
from socketwire.serve.handoff import READY, ConnectionReceiver, pass_connection

__all__ = [
    "WorkerInfo",
    "current_worker",
    "serve_worker",
    "supervise_workers",
    "worker_arguments",
]

log = logging.getLogger("socketwire.workers")

# Options of the supervisor that a worker must not see (with their value, if any).
_SUPERVISOR_FLAGS = {"--workers": True, "--fd": True}
# A worker that exits sooner than this after its start is restarted this much later.
_QUICK_EXIT = 1.0
# How long a new worker may take to serve before a rolling restart gives up on it.
_START_TIMEOUT = 30.0


@dataclass(slots=True)
class WorkerInfo:
    """The worker this process is (``current_worker()``)."""

    #: The worker's id: unique among the supervisor's workers, old and new.
    id: int
    #: The directory of the workers' Unix sockets.
    directory: str
    #: What its router did with the requests of the connections it was given.
    router: RouterStats = field(default_factory=RouterStats)
    #: Where the connections the supervisor gives it arrive.
    receiver: ConnectionReceiver | None = None

    def stats(self) -> dict[str, int]:
        """The worker's counters: ``id``, ``connections`` (given by the
        supervisor), and the router's ``served``, ``forwarded``, ``spliced``,
        ``gone``."""
        connections = 0 if self.receiver is None else self.receiver.received
        return {"id": self.id, "connections": connections, **self.router.as_dict()}


_current: WorkerInfo | None = None


def current_worker() -> WorkerInfo | None:
    """The worker this process is, or None outside ``socketwire --workers``."""
    return _current


def worker_arguments(argv: Sequence[str], worker: int, channel: int, directory: str) -> list[str]:
    """The supervisor's command line for worker ``worker``: without the
    supervisor's options, with the worker's channel and directory."""
    return socketwire_command(
        argv,
        _SUPERVISOR_FLAGS,
        "--worker-id",
        str(worker),
        "--worker-channel",
        str(channel),
        "--worker-dir",
        directory,
    )


# -- the worker ----------------------------------------------------------------------------


def serve_worker(args: argparse.Namespace) -> int:
    """Serve as one worker of a supervisor (the hidden ``--worker-*`` options);
    the exit status."""
    from socketwire.cli import LoadError, load_server, ssl_context
    from socketwire.engine.process import run_until_signalled
    from socketwire.serve import HttpTimeouts, ProxyHeaders, listen, make_protocol_factory

    global _current
    sys.path.insert(0, os.path.abspath(args.app_dir))
    sio = load_server(args.target, args.factory)
    if args.app:
        raise LoadError("--app is not served by --workers yet: run it beside, or without workers")
    context = ssl_context(args)
    worker = int(args.worker_id)
    directory = str(args.worker_dir)
    info = _current = WorkerInfo(worker, directory)
    channel = socket.socket(fileno=args.worker_channel)
    bus = WorkerBus(directory, worker)
    recovery = sio.recovery.max_disconnection_duration if sio.recovery is not None else None
    factory = create_adapter(bus, recovery=recovery)
    user_generate = sio.engine.generate_id

    def generate_id(req: Any) -> str:
        # The owner in the id: any worker routes the session's requests with no lookup.
        return owned_id(worker, user_generate(req))

    sio.engine.generate_id = generate_id
    if isinstance(sio.sockets.adapter, ClusterAdapter):
        # One adapter per namespace: the workers' cluster takes the place of the
        # app's (across hosts, run the hosts without --workers on that adapter).
        log.warning(
            "worker %d: the app's %s is replaced by the workers' adapter",
            worker,
            type(sio.sockets.adapter).__name__,
        )
    sio.adapter_factory = factory
    for nsp in sio.namespaces.values():
        if not nsp.adapter_ready:
            nsp.adapter = factory(nsp)
    router = OwnerRouter(sio.handle_request, sio.engine, sio.path, worker, directory)
    info.router = router.stats
    proxy = ProxyHeaders(args.forwarded_allow_ips) if args.proxy_headers else None
    timeouts = HttpTimeouts(args.http_head_timeout, args.http_body_timeout, args.keep_alive_timeout)
    protocol_factory = make_protocol_factory(
        router,
        sio.engine.max_http_buffer_size,
        sio.engine.write_buffer_limit,
        timeouts,
        proxy=proxy,
    )
    receiver = info.receiver = ConnectionReceiver(
        channel, protocol_factory, ssl=context, on_lost=_supervisor_gone
    )

    forwarded: list[asyncio.AbstractServer] = []

    async def start() -> None:
        await bus.start()
        await sio.init_adapters()
        # Requests forwarded by the other workers: from a Unix socket, which the
        # proxy headers are believed from (the client's address and scheme).
        # Not the Server's own listener: it must outlive ``shutdown``'s first
        # step, so that this worker's polling sessions, reached through the
        # other workers, are served while it drains and then told to reconnect.
        forwarded.append(
            await listen(
                sio.handle_request,
                0,
                "",
                uds=http_socket_path(directory, worker),
                max_body_size=sio.engine.max_http_buffer_size,
                write_buffer_limit=sio.engine.write_buffer_limit,
                proxy_headers=True,
                http_head_timeout=args.http_head_timeout,
                http_body_timeout=args.http_body_timeout,
                keep_alive_timeout=args.keep_alive_timeout,
            )
        )
        receiver.start()
        log.info("worker %d serving (pid %d)", worker, os.getpid())

    async def stop() -> None:
        receiver.stop()
        log.info("worker %d shutting down (at most %.1fs)", worker, args.timeout_graceful_shutdown)
        await sio.shutdown(args.timeout_graceful_shutdown)
        for server in forwarded:
            server.close()
        await bus.close()
        log.info("worker %d stopped", worker)

    run_until_signalled(
        start,
        stop,
        use_uvloop=args.loop != "asyncio",
        stop_timeout=args.timeout_graceful_shutdown,
    )
    return 0


def _supervisor_gone() -> None:
    # Nothing more will come: stop as on SIGTERM (gracefully) rather than
    # serve on, orphaned, until killed.
    log.error("the supervisor is gone: stopping")
    os.kill(os.getpid(), signal.SIGTERM)


# -- the supervisor ------------------------------------------------------------------------


class _Worker:
    """One worker process, seen from the supervisor."""

    def __init__(self, slot: int, worker_id: int) -> None:
        self.slot = slot
        self.id = worker_id
        self.process: asyncio.subprocess.Process | None = None
        self.channel: socket.socket | None = None
        self.ready = asyncio.Event()
        self.retiring = False
        self.started_at = time.monotonic()
        self.exited: asyncio.Task[int] | None = None


class Supervisor:
    """The process of ``socketwire --workers N`` (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, argv: Sequence[str], sock: socket.socket) -> None:
        self.args = args
        self.argv = list(argv)
        self.sock = sock
        self.count = int(args.workers)
        self.directory = tempfile.mkdtemp(prefix="socketwire-workers-")
        self.slots: list[_Worker | None] = [None] * self.count
        self.workers: dict[int, _Worker] = {}
        self.next_id = 1
        self.turn = 0
        self.accepting = False
        self.stopping = False
        self.rolling: asyncio.Task[None] | None = None
        # Once every first worker serves: a worker that exits later is replaced.
        self.serving = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done = asyncio.Event()

    # -- workers ------------------------------------------------------------------------

    async def spawn(self, slot: int) -> _Worker:
        """Start a worker in ``slot`` (it serves once its ready byte arrives)."""
        worker = _Worker(slot, self.next_id)
        self.next_id += 1
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = worker_arguments(self.argv, worker.id, theirs.fileno(), self.directory)
        try:
            # Its own process group: Ctrl-C reaches the supervisor alone, which
            # stops the workers once (a second signal would cut their drain short).
            worker.process = await asyncio.create_subprocess_exec(
                *command, pass_fds=(theirs.fileno(),), process_group=0
            )
        finally:
            theirs.close()
        mine.setblocking(False)
        worker.channel = mine
        self.workers[worker.id] = worker
        loop = asyncio.get_running_loop()
        loop.add_reader(mine.fileno(), self._on_channel, worker)
        worker.exited = loop.create_task(self._watch(worker))
        return worker

    def _on_channel(self, worker: _Worker) -> None:
        channel = worker.channel
        if channel is None:
            return
        try:
            data = channel.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget_channel(worker)
            return
        if READY in data and not worker.ready.is_set() and not worker.retiring:
            worker.ready.set()
            log.debug("worker %d ready", worker.id)
            self._update_accepting()

    def _forget_channel(self, worker: _Worker) -> None:
        channel, worker.channel = worker.channel, None
        worker.ready.clear()
        if channel is not None:
            assert self.loop is not None
            self.loop.remove_reader(channel.fileno())
            channel.close()
        self._update_accepting()

    async def _watch(self, worker: _Worker) -> int:
        assert worker.process is not None
        code = await worker.process.wait()
        self._forget_channel(worker)
        self.workers.pop(worker.id, None)
        for path in (
            http_socket_path(self.directory, worker.id),
            bus_socket_path(self.directory, worker.id),
        ):
            with contextlib.suppress(OSError):
                os.unlink(path)
        if worker.retiring or self.stopping or not self.serving:
            return code
        log.error("worker %d exited with status %d: starting another", worker.id, code)
        if self.slots[worker.slot] is worker:
            lived = time.monotonic() - worker.started_at
            if lived < _QUICK_EXIT:
                await asyncio.sleep(_QUICK_EXIT)
            if not self.stopping and self.slots[worker.slot] is worker:
                self.slots[worker.slot] = await self.spawn(worker.slot)
        return code

    def _ready_workers(self) -> list[_Worker]:
        return [w for w in self.workers.values() if w.ready.is_set() and w.channel is not None]

    # -- connections --------------------------------------------------------------------

    def _update_accepting(self) -> None:
        """Accept while a worker can take connections; else leave them in the backlog."""
        loop = self.loop
        if loop is None:
            return
        want = not self.stopping and bool(self._ready_workers())
        if want and not self.accepting:
            loop.add_reader(self.sock.fileno(), self._on_accept)
        elif not want and self.accepting:
            loop.remove_reader(self.sock.fileno())
        self.accepting = want

    def _on_accept(self) -> None:
        for _ in range(64):  # a burst at a time: the loop's other work goes on
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("cannot accept a connection: %s", exc)
                return
            try:
                self._hand(conn)
            finally:
                conn.close()

    def _hand(self, conn: socket.socket) -> None:
        ready = self._ready_workers()
        for i in range(len(ready)):
            worker = ready[(self.turn + i) % len(ready)]
            assert worker.channel is not None
            try:
                pass_connection(worker.channel, conn)
            except OSError as exc:
                log.warning("worker %d cannot take a connection: %s", worker.id, exc)
                continue
            self.turn = (self.turn + i + 1) % max(len(ready), 1)
            return
        log.warning("no worker could take a connection: closed")

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        loop = self.loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.roll)
        try:
            for slot in range(self.count):
                self.slots[slot] = await self.spawn(slot)
            for worker in list(self.workers.values()):
                wait = asyncio.ensure_future(worker.ready.wait())
                assert worker.exited is not None
                await asyncio.wait({wait, worker.exited}, return_when=asyncio.FIRST_COMPLETED)
                wait.cancel()
                if not worker.ready.is_set():
                    # It could not start (a target that does not load, say):
                    # the others would not either. Its own error says why.
                    self.stopping = True
                    code = await worker.exited
                    log.error("worker %d exited with status %d before serving", worker.id, code)
                    return code or 1
            self.serving = True
            log.info(
                "serving %s on %s (%d workers; SIGINT or SIGTERM to stop, SIGHUP to restart them)",
                self.args.target,
                self.where(),
                self.count,
            )
            await self.done.wait()
        finally:
            await self._stop_all()
            shutil.rmtree(self.directory, ignore_errors=True)
        return 0

    def where(self) -> str:
        from socketwire.cli import describe_address

        name = self.sock.getsockname()
        return describe_address(name, self.args.ssl_certfile is not None)

    def stop(self) -> None:
        """SIGINT or SIGTERM: stop every worker gracefully, then exit."""
        if not self.stopping:
            log.info("stopping the workers (at most %.1fs)", self.args.timeout_graceful_shutdown)
            self.stopping = True
            self._update_accepting()
            self.done.set()

    def roll(self) -> None:
        """SIGHUP: replace the workers one at a time."""
        if self.stopping:
            return
        if self.rolling is not None and not self.rolling.done():
            log.info("SIGHUP: a rolling restart is already running")
            return
        assert self.loop is not None
        self.rolling = self.loop.create_task(self._roll())

    async def _roll(self) -> None:
        log.info("SIGHUP: replacing the workers one at a time")
        for slot in range(self.count):
            if self.stopping:
                return
            old = self.slots[slot]
            new = await self.spawn(slot)
            self.slots[slot] = new
            assert new.exited is not None
            ready = asyncio.ensure_future(new.ready.wait())
            await asyncio.wait(
                {ready, new.exited}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            ready.cancel()
            if not new.ready.is_set():
                log.error("worker %d did not start: the rolling restart stops here", new.id)
                self.slots[slot] = old
                new.retiring = True
                await self._stop_worker(new)
                return
            if old is not None:
                await self._stop_worker(old)
        log.info("rolling restart done")

    async def _stop_worker(self, worker: _Worker) -> None:
        """Stop one worker gracefully: no more connections for it, then SIGTERM."""
        worker.retiring = True
        worker.ready.clear()
        self._update_accepting()
        process = worker.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        limit = self.args.timeout_graceful_shutdown + 2.0
        assert worker.exited is not None
        try:
            await asyncio.wait_for(asyncio.shield(worker.exited), limit)
        except TimeoutError:
            log.warning("worker %d did not stop in %.1fs: killing it", worker.id, limit)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await worker.exited

    async def _stop_all(self) -> None:
        self.stopping = True
        self._update_accepting()
        if self.rolling is not None:
            self.rolling.cancel()
        await asyncio.gather(
            *(self._stop_worker(w) for w in list(self.workers.values())), return_exceptions=True
        )
        log.info("stopped")


def supervise_workers(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``args.workers`` workers on one listening socket until SIGINT or
    SIGTERM (see the module docstring). The exit status."""
    from socketwire.reload import bind_socket

    if args.workers < 1:
        log.error("--workers must be at least 1")
        return 2
    if args.reload:
        log.error("--reload and --workers do not go together: --reload runs one server")
        return 2
    if args.app:
        log.error("--app is not served by --workers yet: run it beside, or without workers")
        return 2
    sock = socket.socket(fileno=args.fd) if args.fd is not None else bind_socket(args)
    supervisor = Supervisor(args, argv, sock)
    try:
        return asyncio.run(supervisor.run())
    finally:
        sock.close()
        if args.uds and os.path.exists(args.uds):
            os.unlink(args.uds)
