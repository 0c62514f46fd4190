"""What goes back to an HTTP client, for either front door (layer 3).

The Engine.IO runtime answers with ``(status, headers, body)``; the front door
adds ``Content-Length`` (RFC 9110 section 8.6) and puts it on the wire: as an
HTTP/1.1 head (:func:`response_head`, the built-in server) or as the header list
of an ``http.response.start`` message (:func:`asgi_headers`, the ASGI app).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

__all__ = ["TEXT_PLAIN", "asgi_headers", "error_response", "response_head"]

#: The headers of a plain-text answer (errors the front door gives itself).
TEXT_PLAIN: Final[list[tuple[str, str]]] = [("Content-Type", "text/plain")]

_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}


def response_head(
    status: int, headers: list[tuple[str, str]], length: int, keep_alive: bool
) -> bytes:
    """An HTTP/1.1 response head (RFC 9112 section 4), ``Content-Length`` included.

    ``keep_alive=False`` adds ``Connection: close`` (RFC 9112 section 9.6): the
    server ends the connection after this response.
    """
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
    for name, value in headers:
        head.append(f"{name}: {value}\r\n")
    head.append(f"Content-Length: {length}\r\n")
    if not keep_alive:
        head.append("Connection: close\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1")


def error_response(status: int, message: str) -> bytes:
    """A whole plain-text response that ends the connection (a request that could
    not be read: 400, 413, 414, 431)."""
    body = message.encode()
    return response_head(status, TEXT_PLAIN, len(body), False) + body


def asgi_headers(headers: list[tuple[str, str]], length: int) -> list[tuple[bytes, bytes]]:
    """Response headers as ASGI takes them: lower-case byte names, ``content-length`` added."""
    out = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    out.append((b"content-length", str(length).encode("ascii")))
    return out
