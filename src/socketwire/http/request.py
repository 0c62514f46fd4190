"""One HTTP request as both front doors hand it to the Engine.IO runtime (layer 3).

The built-in server and the ASGI app read a request differently (httptools
callbacks, ASGI messages) but keep it the same way: header names lower-cased and
interned, repeated headers merged, the query parsed on first use, the body held
to ``max_http_buffer_size``, and the answer given exactly once. :class:`Request`
is that shared part of ``engine.ports.HttpRequest``; each front door subclasses
it with how a response leaves and how a WebSocket handshake is accepted.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, TypeVar
from urllib.parse import parse_qsl

from socketwire.http.response import TEXT_PLAIN

__all__ = [
    "SHARED_HEADER_VALUES",
    "SHARED_VALUE_MAX_LEN",
    "BodyBuffer",
    "Request",
    "RequestTooLarge",
    "add_header",
    "check_declared_length",
    "collect_headers",
    "dispatch",
    "header_name",
    "parse_query",
    "shared_query",
]

log = logging.getLogger("socketwire.http")

# -- headers -----------------------------------------------------------------------------

#: The headers whose values repeat from client to client: values shorter than
#: ``SHARED_VALUE_MAX_LEN`` are interned, since every session keeps its
#: handshake headers.
SHARED_HEADER_VALUES: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "host",
        "origin",
        "pragma",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "upgrade",
        "user-agent",
    }
)
SHARED_VALUE_MAX_LEN: Final = 256


@functools.lru_cache(maxsize=512)
def header_name(raw: bytes) -> str:
    """A header name as the runtime sees it: lower case (names are case-insensitive,
    RFC 9110 section 5.1), one interned string per name."""
    return sys.intern(raw.decode("latin-1").lower())


def add_header(headers: dict[str, str], name: bytes, value: bytes) -> None:
    """Add one received header line to ``headers``.

    A repeated header is merged into one value: with ``", "`` as RFC 9110 section
    5.3 allows for list-valued fields, and with ``"; "`` for ``Cookie``, whose
    pairs RFC 6265 section 5.4 joins that way.
    """
    key = header_name(name)
    val = value.decode("latin-1")
    if key in SHARED_HEADER_VALUES and len(val) < SHARED_VALUE_MAX_LEN:
        val = sys.intern(val)
    old = headers.get(key)
    if old is not None:
        val = old + ("; " if key == "cookie" else ", ") + val
    headers[key] = val


def collect_headers(
    raw: Iterable[tuple[bytes | bytearray | memoryview, bytes | bytearray | memoryview]],
) -> dict[str, str]:
    """``add_header`` over a list of ``(name, value)`` byte pairs (an ASGI scope's)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        # ASGI servers may hand any bytes-like object; the name cache needs bytes.
        add_header(headers, bytes(name), bytes(value))
    return headers


# -- query -------------------------------------------------------------------------------

# Recent handshake queries and their parsed form. Most clients of a server send
# the same handshake query (``EIO=4&transport=websocket``, plus the same
# application parameters), so a WebSocket handshake usually parses nothing, and
# every session made with that query shares one read-only parse of it (a copy per
# session cost 185 bytes for as long as the session lived). Queries naming a
# session (``sid``) or busting caches (Engine.IO's ``t``) are unique per request
# and are not kept.
_QUERY_CACHE: dict[str, Mapping[str, str]] = {}
_QUERY_CACHE_SIZE: Final = 256
_QUERY_CACHE_MAX_LEN: Final = 512


def _parse(raw: str) -> dict[str, str]:
    if "%" in raw or "+" in raw:
        pairs = parse_qsl(raw, keep_blank_values=True)
    else:
        pairs = [(k, v) for k, _, v in (p.partition("=") for p in raw.split("&") if p)]
    return {sys.intern(k): (sys.intern(v) if len(v) < 16 else v) for k, v in pairs}


def shared_query(raw: str) -> Mapping[str, str]:
    """Query parameters, the last value of a repeated name winning, read-only.

    A query that many requests send (no ``sid``, no ``t``, at most 512
    characters) is parsed once and the same read-only mapping is returned to
    every request that sends it; short names and values are interned.
    """
    if not raw:
        return _NO_QUERY
    cached = _QUERY_CACHE.get(raw)
    if cached is not None:
        return cached
    query = _parse(raw)
    if len(raw) <= _QUERY_CACHE_MAX_LEN and "sid" not in query and "t" not in query:
        if len(_QUERY_CACHE) >= _QUERY_CACHE_SIZE:
            _QUERY_CACHE.clear()
        shared = _QUERY_CACHE[raw] = MappingProxyType(query)
        return shared
    return query


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters as the caller's own dict (see :func:`shared_query`)."""
    return dict(shared_query(raw))


_NO_QUERY: Final[Mapping[str, str]] = MappingProxyType({})


# -- body ----------------------------------------------------------------------------------


class RequestTooLarge(Exception):
    """A request refused before it is read; ``status`` is the answer (413, 414, 417 or 431)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _payload_too_large() -> RequestTooLarge:
    return RequestTooLarge(413, "Payload Too Large")


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse (413) a body whose ``Content-Length`` already says it is over ``limit``,
    before any of it is read."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _payload_too_large()


class BodyBuffer:
    """A request body arriving in pieces, held to ``limit`` bytes (413 beyond)."""

    __slots__ = ("_chunks", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._chunks: list[bytes] | None = None

    def add(self, chunk: bytes) -> None:
        """Take the next piece; raises ``RequestTooLarge`` once over the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise _payload_too_large()
        chunks = self._chunks
        if chunks is None:
            self._chunks = [chunk]
        else:
            chunks.append(chunk)

    def take(self) -> bytes:
        """The whole body (one piece is returned as is, not copied)."""
        chunks = self._chunks
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# -- the request -------------------------------------------------------------------------


class Request:
    """One HTTP request, answered exactly once (the shared part of ``HttpRequest``).

    Subclasses send the response (``_send_response``) and implement
    ``is_websocket`` and ``accept_websocket``.
    """

    __slots__ = (
        "_abort_cb",
        "_query",
        "_raw_query",
        "answered",
        "body",
        "headers",
        "method",
        "path",
        "remote_address",
        "secure",
        "url",
    )

    def __init__(
        self,
        method: str,
        path: str,
        raw_query: str,
        url: str,
        headers: dict[str, str],
        remote_address: str,
        secure: bool,
    ) -> None:
        self.method = method
        self.path = path
        self._raw_query = raw_query
        self._query: Mapping[str, str] | None = None
        self.url = url
        self.headers = headers
        self.body = b""
        self.remote_address = remote_address
        self.secure = secure
        self.answered = False
        self._abort_cb: Callable[[], None] | None = None

    @property
    def query(self) -> Mapping[str, str]:
        """The query string's parameters, read-only, parsed on first use (most
        requests of a session never look); see :func:`shared_query`."""
        q = self._query
        if q is None:
            q = self._query = shared_query(self._raw_query)
        return q

    def on_abort(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` if the client goes away before the response."""
        self._abort_cb = callback

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send the response, once; later calls are ignored."""
        if self.answered:
            return
        self.answered = True
        self._abort_cb = None
        self._send_response(status, headers, body)

    def abort(self) -> None:
        """The client went away before the answer: run the abort callback, once."""
        if self.answered:
            return
        self.answered = True
        cb, self._abort_cb = self._abort_cb, None
        if cb is not None:
            try:
                cb()
            except Exception:
                log.exception("abort callback failed for %s %s", self.method, self.path)

    def refuse_websocket(self, message: bytes) -> None:
        """Answer a WebSocket handshake that is not one with 400, naming the
        version spoken (RFC 6455 section 4.2.2)."""
        self.respond(400, [*TEXT_PLAIN, ("Sec-WebSocket-Version", "13")], message)

    def _send_response(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        raise NotImplementedError


R = TypeVar("R", bound=Request)


def dispatch(app: Callable[[R], None], req: R) -> None:
    """Hand ``req`` to ``app``; if it fails before answering, answer 500.

    A failing handler never reaches the front door's machinery (the event loop's
    protocol callbacks, the ASGI server): it is logged and this request alone fails.
    """
    try:
        app(req)
    except Exception:
        log.exception("request handler failed for %s %s", req.method, req.path)
        if not req.answered:
            req.respond(500, TEXT_PLAIN, b"Internal Server Error")
