"""RFC 6455 opening handshake: layer 0, sans-I/O.

Checks and builds the HTTP/1.1 Upgrade request and the ``101 Switching
Protocols`` response (RFC 6455 section 4).  Parsing HTTP itself is the
caller's job: these functions take a method or status and a mapping of
**lower-case** header names to values (repeated headers joined with ``", "``)
and return the bytes to send.  No I/O, no randomness: the client's nonce is
supplied by the caller.

A request or response from the peer that breaks the rules raises
:class:`~socketwire.errors.RemoteProtocolError` (a server answers HTTP 400);
bad arguments from our own code raise
:class:`~socketwire.errors.LocalProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from typing import Final

from socketwire.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "GUID",
    "accept_key",
    "check_request",
    "check_response",
    "client_request",
    "make_key",
    "server_response",
]

#: RFC 6455 section 1.3: the GUID appended to the key before hashing.
GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_FORBIDDEN_IN_HEADERS: Final = frozenset("\r\n\x00")


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value for ``key`` (RFC 6455 section 1.3)."""
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    # binascii directly: every connection makes one, and base64's wrapper is a
    # Python call more.
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def _tokens(value: str) -> set[str]:
    # RFC 7230 section 7: a comma-separated list; tokens are case-insensitive.
    return {t.strip().lower() for t in value.split(",")}


def _decode_key(key: str) -> bytes:
    """Strict base64 decoding of a key (the alphabet, the padding, nothing after
    it); ``b""`` when it is not base64."""
    try:
        # A str is taken as is when it is ASCII (ValueError otherwise).
        return binascii.a2b_base64(key, strict_mode=True)
    except ValueError:  # binascii.Error included
        return b""


def _check_upgrade_headers(headers: Mapping[str, str]) -> None:
    # RFC 6455 section 4.1 (client, items 2-3) and 4.2.1 (server, items 3-4).
    upgrade = headers.get("upgrade")
    if upgrade is None:
        raise RemoteProtocolError("missing Upgrade header")
    # The usual values are the single token itself: checked before splitting.
    if upgrade.lower() != "websocket" and "websocket" not in _tokens(upgrade):
        raise RemoteProtocolError(f"Upgrade header does not name websocket: {upgrade!r}")
    connection = headers.get("connection")
    if connection is None:
        raise RemoteProtocolError("missing Connection header")
    if connection.lower() != "upgrade" and "upgrade" not in _tokens(connection):
        raise RemoteProtocolError(f"Connection header has no 'upgrade' token: {connection!r}")


def check_request(method: str, headers: Mapping[str, str]) -> str:
    """Check a client's opening handshake; return its ``Sec-WebSocket-Key``.

    ``headers`` maps lower-case names to values.  Raises
    :class:`RemoteProtocolError` with a readable message when the request is
    not a valid WebSocket upgrade (RFC 6455 section 4.2.1); the caller then
    answers HTTP 400.  Subprotocols, extensions and Origin are not looked at.
    """
    if method != "GET":
        # Section 4.2.1 item 1: the method must be GET.
        raise RemoteProtocolError(f"WebSocket handshake must use GET, not {method!r}")
    _check_upgrade_headers(headers)
    version = headers.get("sec-websocket-version")
    if version is None:
        raise RemoteProtocolError("missing Sec-WebSocket-Version header")
    if version.strip() != "13":
        # Section 4.2.1 item 6 / 4.4: only version 13 is defined.
        raise RemoteProtocolError(f"unsupported Sec-WebSocket-Version {version!r}, expected 13")
    key = headers.get("sec-websocket-key")
    if key is None:
        raise RemoteProtocolError("missing Sec-WebSocket-Key header")
    key = key.strip()
    if len(_decode_key(key)) != 16:
        # Section 4.2.1 item 5: base64 of a 16-byte value.
        raise RemoteProtocolError(f"Sec-WebSocket-Key is not base64 of 16 bytes: {key!r}")
    return key


def _encode_header_lines(headers: Iterable[tuple[str, str]]) -> list[str]:
    lines = []
    for name, value in headers:
        if (
            not name
            or ":" in name
            or " " in name
            or _FORBIDDEN_IN_HEADERS.intersection(name)
            or _FORBIDDEN_IN_HEADERS.intersection(value)
        ):
            raise LocalProtocolError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    return lines


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise LocalProtocolError("HTTP headers must be latin-1 text") from None


def server_response(key: str, extra_headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """Return the full ``101 Switching Protocols`` response for ``key``.

    ``key`` is the value :func:`check_request` returned; ``extra_headers``
    (for instance ``Set-Cookie`` or ``Sec-WebSocket-Protocol``) are appended
    as given, after a check that they cannot break the response.
    """
    # RFC 6455 section 4.2.2 item 5.
    head = (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
    )
    if not extra_headers:
        # The usual case (an empty list): no header to check.
        return (head + "\r\n").encode("ascii")
    return _to_bytes("".join([head, *_encode_header_lines(extra_headers), "\r\n"]))


def make_key(nonce: bytes) -> str:
    """Return a ``Sec-WebSocket-Key`` from 16 random bytes (RFC 6455 section 4.1 item 7).

    The core has no randomness: pass ``os.urandom(16)`` or ``secrets.token_bytes(16)``.
    """
    if len(nonce) != 16:
        raise LocalProtocolError(f"the nonce is 16 bytes, got {len(nonce)}")
    return base64.b64encode(nonce).decode("ascii")


def client_request(
    host: str, target: str, key: str, extra_headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """Return the client's opening handshake (RFC 6455 section 4.1).

    ``host`` is the ``Host`` header value (``"example.com:8080"``), ``target``
    the request target (``"/socket.io/?EIO=4&transport=websocket"``), ``key``
    from :func:`make_key`.
    """
    if not target.startswith("/") or any(c.isspace() or c == "\x00" for c in target):
        raise LocalProtocolError(f"invalid request target {target!r}")
    if not host or any(c.isspace() or c in "/\x00" for c in host):
        raise LocalProtocolError(f"invalid Host {host!r}")
    if len(_decode_key(key)) != 16:
        raise LocalProtocolError(f"key is not base64 of 16 bytes (use make_key): {key!r}")
    parts = [
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n",
        *_encode_header_lines(extra_headers),
        "\r\n",
    ]
    return _to_bytes("".join(parts))


def check_response(status: int, headers: Mapping[str, str], key: str) -> None:
    """Check the server's handshake response to our ``key`` (RFC 6455 section 4.1).

    Raises :class:`RemoteProtocolError` unless the status is 101, the
    Upgrade/Connection headers are right and ``Sec-WebSocket-Accept`` matches.
    Since this core never offers an extension, any ``Sec-WebSocket-Extensions``
    in the response is refused too.  A requested subprotocol is the caller's to
    check.
    """
    if status != 101:
        raise RemoteProtocolError(f"expected HTTP 101 Switching Protocols, got {status}")
    _check_upgrade_headers(headers)
    accept = headers.get("sec-websocket-accept")
    if accept is None:
        raise RemoteProtocolError("missing Sec-WebSocket-Accept header")
    if accept.strip() != accept_key(key):
        raise RemoteProtocolError(f"wrong Sec-WebSocket-Accept {accept!r}")
    if headers.get("sec-websocket-extensions", "").strip():
        # Section 4.1 item 5 (response checks): no extension was requested.
        raise RemoteProtocolError("server selected an extension that was not offered")
