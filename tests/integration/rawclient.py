"""Raw HTTP/1.1 and WebSocket clients on plain asyncio streams, for tests.

Nothing here is clever or forgiving: the point is to send exactly the bytes a
test asks for (including invalid ones) and to report exactly what came back.

* :func:`http_request` sends one request on a fresh connection and returns
  ``HttpResponse(status, headers, body)``; :func:`send_raw` sends arbitrary bytes
  and returns everything the server wrote until it closed the connection.
* :class:`WebSocketClient` opens a WebSocket (RFC 6455 section 4.1 handshake with
  a random key), sends masked frames (or unmasked / hand-made ones on request),
  reads the server's unmasked frames with a bounded timeout and reports close
  frames and the end of the TCP connection as :class:`WebSocketClosed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from socketwire.core.websocket import handshake
from socketwire.core.websocket.frames import (
    FrameReader,
    Opcode,
    decode_close_payload,
    encode_close_payload,
    encode_frame,
)
from tests.waits import WAIT as DEFAULT_TIMEOUT


def host_port(base: str) -> tuple[str, int]:
    """``("127.0.0.1", 8080)`` from ``"http://127.0.0.1:8080"``."""
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None, base
    return parts.hostname, parts.port


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class IncompleteResponse(AssertionError):
    """The server closed the connection before a whole response head."""


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and lower-cased headers of a response head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise IncompleteResponse(f"not an HTTP response: {head[:80]!r}")
    status = int(rest.split(" ", 1)[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, headers


def parse_response(raw: bytes) -> HttpResponse:
    """Parse one whole response out of ``raw`` (as returned by :func:`send_raw`)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise IncompleteResponse(f"no complete response head in {raw[:200]!r}")
    status, headers = parse_head(head)
    length = headers.get("content-length")
    body = rest[: int(length)] if length is not None else rest
    return HttpResponse(status, headers, body)


async def _read_response(reader: asyncio.StreamReader, method: str) -> HttpResponse:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise IncompleteResponse(f"connection closed after {exc.partial[:200]!r}") from None
    status, headers = parse_head(head[:-4])
    if status == 101 or status == 204 or status == 304 or method == "HEAD":
        return HttpResponse(status, headers, b"")
    length = headers.get("content-length")
    if length is not None:
        body = await reader.readexactly(int(length))
    else:
        body = await reader.read()
    return HttpResponse(status, headers, body)


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def build_request(
    method: str,
    target: str,
    host: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The bytes of one HTTP/1.1 request (``Content-Length`` added unless given)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    names = {name.lower() for name, _ in headers}
    lines.extend(f"{name}: {value}" for name, value in headers)
    if "content-length" not in names and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    if "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def http_request(
    base: str,
    method: str,
    target: str,
    *,
    body: bytes | str = b"",
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """Send one request on a new connection; return the response.

    ``target`` is the request target (``"/socket.io/?EIO=4&transport=polling"``).
    A connection reset while the body is still being written is tolerated: the
    response the server wrote before closing is still read.
    """
    host, port = host_port(base)
    data = body.encode() if isinstance(body, str) else body

    async def run() -> HttpResponse:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(build_request(method, target, f"{host}:{port}", data, headers))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return await _read_response(reader, method)
        finally:
            await _close_writer(writer)

    return await asyncio.wait_for(run(), timeout)


async def send_raw(base: str, data: bytes, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Write ``data`` on a new connection; return all bytes read until the server closes.

    Fails (``TimeoutError``) if the server keeps the connection open past ``timeout``.
    """
    host, port = host_port(base)

    async def run() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            chunks = []
            while True:
                try:
                    chunk = await reader.read(65536)
                except ConnectionError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            await _close_writer(writer)

    return await asyncio.wait_for(run(), timeout)


# -- WebSocket ----------------------------------------------------------------------------


class WebSocketHandshakeFailed(AssertionError):
    """The server did not switch protocols; ``response`` is what it answered."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"WebSocket handshake refused: {response.status} {response.body[:200]!r}")
        self.response = response


class WebSocketClosed(Exception):
    """The connection ended: ``code`` is the server's close code (None: no close frame)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"WebSocket closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


@dataclass
class WebSocketClient:
    """A minimal client-side WebSocket on an asyncio stream pair."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    max_message_size: int = 16 * 1024 * 1024
    #: The server's close code once a close frame arrived (1005: empty close frame).
    close_code: int | None = None
    close_reason: str = ""
    #: Whether the TCP connection ended (EOF or reset).
    eof: bool = False
    _frames: FrameReader = field(init=False)
    _queue: deque[tuple[int, bytes]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self._frames = FrameReader(max_message_size=self.max_message_size, client_side=True)

    # -- opening ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        base: str,
        target: str,
        *,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[HttpResponse, WebSocketClient | None]:
        """Attempt the opening handshake; the client is None unless the server said 101."""
        host, port = host_port(base)
        key = handshake.make_key(os.urandom(16))
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            writer.write(handshake.client_request(f"{host}:{port}", target, key, headers))
            await writer.drain()
            response = await asyncio.wait_for(_read_response(reader, "GET"), timeout)
        except BaseException:
            await _close_writer(writer)
            raise
        if response.status != 101:
            await _close_writer(writer)
            return response, None
        try:
            handshake.check_response(response.status, response.headers, key)
        except BaseException:
            await _close_writer(writer)
            raise
        return response, cls(reader, writer)

    @classmethod
    async def connect(
        cls,
        base: str,
        target: str,
        *,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> WebSocketClient:
        """Open a WebSocket or fail with :class:`WebSocketHandshakeFailed`."""
        response, ws = await cls.open(base, target, headers=headers, timeout=timeout)
        if ws is None:
            raise WebSocketHandshakeFailed(response)
        return ws

    # -- sending -----------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (no framing)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_frame(
        self,
        opcode: int,
        payload: bytes,
        *,
        fin: bool = True,
        masked: bool = True,
        rsv: int = 0,
    ) -> None:
        """One frame; ``masked=False`` and ``rsv`` (0-7) make it invalid on purpose."""
        frame = encode_frame(opcode, payload, fin=fin, mask=os.urandom(4) if masked else None)
        if rsv:
            frame = bytes((frame[0] | (rsv & 7) << 4,)) + frame[1:]
        self.send_raw(frame)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(Opcode.TEXT, text.encode() if isinstance(text, str) else text)

    def send_binary(self, data: bytes) -> None:
        self.send_frame(Opcode.BINARY, data)

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(Opcode.CLOSE, encode_close_payload(code, reason))

    # -- receiving -----------------------------------------------------------------------

    async def _read_more(self) -> None:
        try:
            data = await self.reader.read(65536)
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return
        for opcode, payload in self._frames.feed(data):
            if opcode == Opcode.CLOSE:
                if self.close_code is None:
                    self.close_code, self.close_reason = decode_close_payload(payload)
            elif opcode == Opcode.PING:
                self.send_frame(Opcode.PONG, payload)
            elif opcode in (Opcode.TEXT, Opcode.BINARY) and self.close_code is None:
                self._queue.append((opcode, payload))

    async def recv(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, bytes]:
        """The next data message ``(opcode, payload)``.

        Raises :class:`WebSocketClosed` once a close frame or the end of the TCP
        connection is reached (after the messages sent before it), and
        ``TimeoutError`` when nothing arrives within ``timeout`` seconds.
        """

        async def wait() -> tuple[int, bytes]:
            while not self._queue:
                if self.close_code is not None or self.eof:
                    raise WebSocketClosed(self.close_code, self.close_reason)
                await self._read_more()
            return self._queue.popleft()

        return await asyncio.wait_for(wait(), timeout)

    async def recv_text(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        opcode, payload = await self.recv(timeout)
        assert opcode == Opcode.TEXT, f"expected a text frame, got opcode {opcode}: {payload!r}"
        return payload.decode()

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int | None, list[bytes]]:
        """Wait for the server to end the connection (close frame and TCP close).

        Returns the close code (None if the TCP connection ended without a close
        frame) and the payloads of the data messages that came before it.
        """
        skipped: list[bytes] = []

        async def wait() -> int | None:
            while True:
                while self._queue:
                    skipped.append(self._queue.popleft()[1])
                if self.eof:
                    return self.close_code
                await self._read_more()

        code = await asyncio.wait_for(wait(), timeout)
        return code, skipped

    @property
    def closed(self) -> bool:
        return self.eof or self.close_code is not None

    async def aclose(self) -> None:
        """Drop the TCP connection (no closing handshake)."""
        await _close_writer(self.writer)
