"""Serving a request at the worker that owns its session (layer 3, asyncio).

With ``socketwire --workers N`` any worker may accept any connection: there are
no sticky sessions. An Engine.IO session lives in one worker, its owner, whose
id is written in the session id itself (``<worker>.<random>``, see
:func:`owned_id`), so every worker knows the owner of a request from its
``sid`` alone, with no lookup and no shared table. The random part keeps the
id as unguessable as any session id.

:class:`OwnerRouter` sits in front of a worker's ``Server.handle_request`` on
the connections the worker accepts. A request naming a session of another
worker is passed to that worker over its Unix socket (``http-<worker>.sock``
in the workers' directory), where the worker's own server answers it as if the
client had come straight there:

* a polling ``GET`` or ``POST`` is sent as one HTTP/1.1 request (the client's
  address and scheme in ``X-Forwarded-For``/``-Proto``, which that socket
  believes), and the owner's response (bounded: ``MAX_FORWARDED_RESPONSE``)
  is the client's. A ``GET`` that the owner parks until it has packets stays
  parked there; the client going away closes the forwarded request too;
* a WebSocket upgrade is relayed byte for byte: the request's head, then both
  directions of the connection, spliced, with flow control each way. The
  owner answers the upgrade and then runs the WebSocket itself.

A request for a worker that is gone (it died, or stopped) gets the error a
single server gives for an unknown session (400, ``Session ID unknown``): the
client starts a new session, as after a restart.

:class:`SessionRouter` is that forwarding without the workers: who owns a
session and how an owner is reached are its subclasses' (``OwnerRouter`` here;
``socketwire.nodes.NodeRouter`` for the nodes of a Redis cluster, over TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Hashable
from typing import Final

from socketwire.core.engineio.errors import EngineErrorCode
from socketwire.engine.server import EngineServer
from socketwire.serve.connection import MAX_HEAD_SIZE, Request

__all__ = [
    "FORWARDED_HEADER",
    "MAX_FORWARDED_RESPONSE",
    "OwnerRouter",
    "RouterStats",
    "SessionRouter",
    "http_socket_path",
    "owned_id",
    "owner_of",
]

log = logging.getLogger("socketwire.workers")

#: The largest response body relayed from the owner of a session (bytes).
MAX_FORWARDED_RESPONSE: Final = 256 * 1024 * 1024
#: Set on a forwarded request: its receiver serves it, never forwards it again.
FORWARDED_HEADER: Final = "x-socketwire-forwarded"

# Headers of one hop only (RFC 9110 section 7.6.1), and those the relay sets itself.
_REQUEST_SKIPPED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
        FORWARDED_HEADER,
    }
)
_RESPONSE_SKIPPED: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length"}
)


def owned_id(worker: int, random_part: str) -> str:
    """A session id that names its owner: ``<worker>.<random_part>``."""
    return f"{worker}.{random_part}"


def owner_of(sid: str) -> int | None:
    """The worker that owns session ``sid``, or None if the id names none."""
    head, dot, _ = sid.partition(".")
    if not dot or not head.isdigit() or len(head) > 9:
        return None
    return int(head)


def http_socket_path(directory: str, worker: int) -> str:
    """The Unix socket a worker serves its forwarded requests on."""
    return os.path.join(directory, f"http-{worker}.sock")


class RouterStats:
    """What one worker's router did: requests served here, requests and
    WebSocket upgrades passed to their owner, and those whose owner was gone."""

    __slots__ = ("forwarded", "gone", "served", "spliced")

    def __init__(self) -> None:
        self.served = 0
        self.forwarded = 0
        self.spliced = 0
        self.gone = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {
            "served": self.served,
            "forwarded": self.forwarded,
            "spliced": self.spliced,
            "gone": self.gone,
        }


class _Pipe(asyncio.Protocol):
    """One side of a spliced connection: what it reads, the other side writes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: _Pipe | None = None
        self.held = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        other = self.other
        if other is None or other.transport is None:
            self.held += data
            return
        other.transport.write(data)

    def eof_received(self) -> bool | None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        other = self.other
        if other is not None and other.transport is not None:
            # close() writes what is buffered first: nothing relayed is lost.
            other.transport.close()

    # A side that cannot write as fast as the other reads slows the reader down.
    def pause_writing(self) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.pause_reading()

    def resume_writing(self) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.resume_reading()


class SessionRouter:
    """Serve a request here, or at the owner of its session (the module docstring).

    The base of :class:`OwnerRouter` (workers of one host, over Unix sockets)
    and of ``socketwire.nodes.NodeRouter`` (nodes of a cluster, over TCP). A
    subclass says who owns a session (:meth:`owner`) and how to reach an owner
    (:meth:`open_stream`, :meth:`open_pipe`); this class does the rest.

    ``app`` is the local ``Server.handle_request``, ``engine`` its
    ``EngineServer`` (for the errors it answers), ``engine_path`` the server's
    path (``/socket.io``). A request that carries ``FORWARDED_HEADER`` was
    forwarded once already: it is served here whatever its session id says, so
    that two routers that disagree on an owner never pass a request back and
    forth (it gets ``Session ID unknown`` instead).
    """

    #: How the owners are named in the log lines.
    owner_kind: str = "owner"

    def __init__(
        self, app: Callable[[Request], None], engine: EngineServer, engine_path: str
    ) -> None:
        self.app = app
        self.engine = engine
        self.prefix = "/" + engine_path.strip("/")
        self.stats = RouterStats()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what a subclass says ------------------------------------------------------------

    def owner(self, sid: str) -> Hashable | None:
        """The owner of session ``sid`` when it is another than this one, else None."""
        raise NotImplementedError

    async def open_stream(
        self, owner: Hashable
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``owner`` (``OSError`` or ``LookupError`` when it is gone)."""
        raise NotImplementedError

    async def open_pipe(self, owner: Hashable, protocol: asyncio.Protocol) -> None:
        """Connect ``protocol`` to ``owner`` (``OSError`` or ``LookupError`` when it is gone)."""
        raise NotImplementedError

    def forget(self, owner: Hashable) -> None:
        """``owner`` could not be reached (a subclass may drop what it knew of it)."""

    def forwarded_by(self) -> str:
        """The value of ``FORWARDED_HEADER`` on the requests this router forwards."""
        return "1"

    # -- routing -------------------------------------------------------------------------

    def __call__(self, req: Request) -> None:
        path = req.path
        if (
            path.startswith(self.prefix)
            and (len(path) == len(self.prefix) or path[len(self.prefix)] == "/")
            and FORWARDED_HEADER not in req.headers
        ):
            sid = req.query.get("sid")
            owner = None if sid is None else self.owner(sid)
            if owner is not None:
                if req.is_websocket():
                    self._spawn(self._splice(req, owner))
                else:
                    self._spawn(self._forward(req, owner))
                return
        self.stats.served += 1
        self.app(req)

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _head(self, req: Request, body_length: int | None) -> bytes:
        lines = [f"{req.method} {req.url} HTTP/1.1\r\n"]
        for name, value in req.headers.items():
            if name not in _REQUEST_SKIPPED and (body_length is None or name != "upgrade"):
                lines.append(f"{name}: {value}\r\n")
        if body_length is not None:
            lines.append(f"content-length: {body_length}\r\nconnection: close\r\n")
        else:
            lines.append("connection: upgrade\r\n")
        if req.remote_address:
            lines.append(f"x-forwarded-for: {req.remote_address}\r\n")
        lines.append(f"{FORWARDED_HEADER}: {self.forwarded_by()}\r\n")
        lines.append(f"x-forwarded-proto: {'https' if req.secure else 'http'}\r\n\r\n")
        return "".join(lines).encode("latin-1")

    def _gone(self, req: Request, owner: Hashable, exc: BaseException) -> None:
        self.stats.gone += 1
        self.forget(owner)
        log.info(
            "%s %s is gone (%s): %s %s refused", self.owner_kind, owner, exc, req.method, req.path
        )
        sid = req.query.get("sid")
        self.engine.respond_error(req, EngineErrorCode.UNKNOWN_SID, context={"sid": sid})

    async def _forward(self, req: Request, owner: Hashable) -> None:
        """A polling request, to its owner and its answer back."""
        self.stats.forwarded += 1
        task = asyncio.current_task()
        assert task is not None

        # The client went away: so does the forwarded request (the owner sees it leave).
        def client_left() -> None:
            task.cancel()

        req.on_abort(client_left)
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                reader, writer = await self.open_stream(owner)
                writer.write(self._head(req, len(req.body)) + req.body)
                head = await reader.readuntil(b"\r\n\r\n")
            except (
                OSError,
                LookupError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ) as exc:
                self._gone(req, owner, exc)
                return
            status, headers, length = _parse_response_head(head)
            if status == 0 or length > MAX_FORWARDED_RESPONSE:
                log.warning("%s %s answered a forwarded request badly", self.owner_kind, owner)
                req.respond(502, [("Content-Type", "text/plain")], b"Bad Gateway")
                return
            try:
                body = await reader.readexactly(length) if length else b""
            except (OSError, asyncio.IncompleteReadError) as exc:
                self._gone(req, owner, exc)
                return
            req.respond(status, headers, body)
        except asyncio.CancelledError:
            pass
        finally:
            if writer is not None:
                writer.close()

    async def _splice(self, req: Request, owner: Hashable) -> None:
        """A WebSocket upgrade: relay the connection, both ways, to the owner."""
        self.stats.spliced += 1
        upstream = _Pipe()
        try:
            await self.open_pipe(owner, upstream)
        except (OSError, LookupError) as exc:
            self._gone(req, owner, exc)
            return
        conn = req.connection
        transport = conn.transport
        if transport is None or transport.is_closing() or req.answered:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        client = _Pipe()
        client.transport = transport
        rest = conn.hand_over(req, client)
        client.other, upstream.other = upstream, client
        assert upstream.transport is not None
        upstream.transport.write(self._head(req, None) + rest)
        if upstream.held:
            transport.write(upstream.held)
            upstream.held = b""
        with contextlib.suppress(RuntimeError):
            transport.resume_reading()


class OwnerRouter(SessionRouter):
    """The app of a worker's public connections: serve a request here, or at the
    worker that owns its session, over that worker's Unix socket (see the
    module docstring).

    ``app`` is the worker's ``Server.handle_request``, ``engine`` its
    ``EngineServer`` (for the errors it answers), ``engine_path`` the server's
    path (``/socket.io``).
    """

    owner_kind = "worker"

    def __init__(
        self,
        app: Callable[[Request], None],
        engine: EngineServer,
        engine_path: str,
        worker: int,
        directory: str,
    ) -> None:
        super().__init__(app, engine, engine_path)
        self.worker = worker
        self.directory = directory

    def owner(self, sid: str) -> int | None:
        """The worker named by ``sid`` when it is another one."""
        owner = owner_of(sid)
        return None if owner == self.worker else owner

    async def open_stream(
        self, owner: Hashable
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the worker's Unix socket."""
        assert isinstance(owner, int)
        return await asyncio.open_unix_connection(
            http_socket_path(self.directory, owner), limit=MAX_HEAD_SIZE
        )

    async def open_pipe(self, owner: Hashable, protocol: asyncio.Protocol) -> None:
        """Connect ``protocol`` to the worker's Unix socket."""
        assert isinstance(owner, int)
        loop = asyncio.get_running_loop()
        await loop.create_unix_connection(lambda: protocol, http_socket_path(self.directory, owner))


def _parse_response_head(head: bytes) -> tuple[int, list[tuple[str, str]], int]:
    """Status, headers (without those of one hop) and Content-Length of a
    response head; status 0 when it is not one."""
    try:
        text = head.decode("latin-1")
        status_line, *lines = text.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            return 0, [], 0
        status = int(parts[1])
        headers: list[tuple[str, str]] = []
        length = 0
        for line in lines:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                return 0, [], 0
            key = name.strip().lower()
            value = value.strip()
            if key == "content-length":
                length = int(value)
            elif key not in _RESPONSE_SKIPPED:
                headers.append((name.strip(), value))
        return status, headers, length
    except ValueError:
        return 0, [], 0
