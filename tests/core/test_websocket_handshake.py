"""Tests of the sans-I/O RFC 6455 opening handshake."""

from __future__ import annotations

import base64

import pytest

from socketwire.core.websocket.handshake import (
    GUID,
    accept_key,
    check_request,
    check_response,
    client_request,
    make_key,
    server_response,
)
from socketwire.errors import LocalProtocolError, RemoteProtocolError

# RFC 6455 section 1.3.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def request_headers(**overrides: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "host": "server.example.com",
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": RFC_KEY,
        "sec-websocket-version": "13",
    }
    headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return {k: v for k, v in headers.items() if v is not None}


def parse_http(data: bytes) -> tuple[str, dict[str, str]]:
    """A tiny HTTP head parser for the tests: (first line, lower-case headers)."""
    assert data.endswith(b"\r\n\r\n")
    lines = data[:-4].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def test_guid() -> None:
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_rfc_accept_key_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_make_key_rfc_nonce() -> None:
    assert make_key(b"the sample nonce") == RFC_KEY


@pytest.mark.parametrize("size", [0, 15, 17])
def test_make_key_wants_16_bytes(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        make_key(bytes(size))


def test_check_request_returns_key() -> None:
    assert check_request("GET", request_headers()) == RFC_KEY


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("websocket", "Upgrade"),
        ("WebSocket", "upgrade"),
        ("WEBSOCKET", "keep-alive, Upgrade"),
        ("websocket", "Upgrade,keep-alive"),
        ("h2c, websocket", " keep-alive ,  UPGRADE "),
    ],
)
def test_check_request_token_lists(upgrade: str, connection: str) -> None:
    headers = request_headers(upgrade=upgrade, connection=connection)
    assert check_request("GET", headers) == RFC_KEY


def test_check_request_strips_key_whitespace() -> None:
    headers = request_headers(sec_websocket_key=f" {RFC_KEY} ", sec_websocket_version=" 13 ")
    assert check_request("GET", headers) == RFC_KEY


@pytest.mark.parametrize(
    ("method", "overrides", "why"),
    [
        ("POST", {}, "GET"),
        ("get", {}, "GET"),
        ("GET", {"upgrade": None}, "Upgrade"),
        ("GET", {"upgrade": "h2c"}, "Upgrade"),
        ("GET", {"upgrade": "websocketx"}, "Upgrade"),
        ("GET", {"connection": None}, "Connection"),
        ("GET", {"connection": "keep-alive"}, "Connection"),
        ("GET", {"connection": "upgraded"}, "Connection"),
        ("GET", {"sec_websocket_version": None}, "Version"),
        ("GET", {"sec_websocket_version": "8"}, "Version"),
        ("GET", {"sec_websocket_version": "13, 8"}, "Version"),
        ("GET", {"sec_websocket_key": None}, "Key"),
        ("GET", {"sec_websocket_key": ""}, "Key"),
        ("GET", {"sec_websocket_key": "not base64!"}, "Key"),
        ("GET", {"sec_websocket_key": "dGhlIHNhbXBsZSBub25jZQ"}, "Key"),  # no padding
        ("GET", {"sec_websocket_key": base64.b64encode(bytes(15)).decode()}, "Key"),
        ("GET", {"sec_websocket_key": base64.b64encode(bytes(17)).decode()}, "Key"),
        ("GET", {"sec_websocket_key": "dGhlIHNhbXBsZSBub25jZQ==\u00e9"}, "Key"),
    ],
)
def test_check_request_rejects(method: str, overrides: dict[str, str | None], why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        check_request(method, request_headers(**overrides))


def test_rfc_server_response() -> None:
    assert server_response(RFC_KEY) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_server_response_extra_headers() -> None:
    response = server_response(RFC_KEY, [("Set-Cookie", "io=abc; Path=/"), ("X-A", "1")])
    assert response.endswith(
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Set-Cookie: io=abc; Path=/\r\n"
        b"X-A: 1\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    "header",
    [
        ("X-A", "1\r\nX-Injected: 2"),
        ("X-A\r\nX-B", "1"),
        ("X-A", "a\nb"),
        ("X-A", "\x00"),
        ("", "1"),
        ("X:A", "1"),
        ("X A", "1"),
        ("X-A", "\u20ac"),
    ],
)
def test_extra_headers_cannot_break_the_message(header: tuple[str, str]) -> None:
    with pytest.raises(LocalProtocolError):
        server_response(RFC_KEY, [header])
    with pytest.raises(LocalProtocolError):
        client_request("h", "/", RFC_KEY, [header])


def test_client_request_bytes() -> None:
    request = client_request(
        "server.example.com:8080", "/chat?x=1", RFC_KEY, [("Origin", "http://example.com")]
    )
    assert request == (
        b"GET /chat?x=1 HTTP/1.1\r\n"
        b"Host: server.example.com:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: http://example.com\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("host", "target", "key"),
    [
        ("h", "chat", RFC_KEY),
        ("h", "/a b", RFC_KEY),
        ("h", "/a\r\nX: y", RFC_KEY),
        ("", "/", RFC_KEY),
        ("h h", "/", RFC_KEY),
        ("h\r\n", "/", RFC_KEY),
        ("h", "/", "short"),
        ("h", "/", RFC_KEY + "\r\nX: y"),
    ],
)
def test_client_request_misuse(host: str, target: str, key: str) -> None:
    with pytest.raises(LocalProtocolError):
        client_request(host, target, key)


def test_full_handshake_round_trip() -> None:
    key = make_key(bytes(range(16)))
    request_line, headers = parse_http(client_request("localhost", "/ws", key))
    method, target, version = request_line.split(" ")
    assert (target, version) == ("/ws", "HTTP/1.1")
    assert check_request(method, headers) == key
    status_line, response_headers = parse_http(server_response(key))
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    check_response(int(status_line.split(" ")[1]), response_headers, key)


def response_headers(**overrides: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": RFC_ACCEPT,
    }
    headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return {k: v for k, v in headers.items() if v is not None}


def test_check_response_accepts_rfc_example() -> None:
    check_response(101, response_headers(), RFC_KEY)
    check_response(101, response_headers(upgrade="WebSocket", connection="upgrade"), RFC_KEY)


@pytest.mark.parametrize(
    ("status", "overrides", "why"),
    [
        (200, {}, "101"),
        (400, {}, "101"),
        (101, {"upgrade": None}, "Upgrade"),
        (101, {"upgrade": "h2c"}, "Upgrade"),
        (101, {"connection": None}, "Connection"),
        (101, {"connection": "close"}, "Connection"),
        (101, {"sec_websocket_accept": None}, "Accept"),
        (101, {"sec_websocket_accept": accept_key(make_key(bytes(16)))}, "Accept"),
        (101, {"sec_websocket_accept": RFC_ACCEPT.lower()}, "Accept"),
        (101, {"sec_websocket_extensions": "permessage-deflate"}, "extension"),
    ],
)
def test_check_response_rejects(status: int, overrides: dict[str, str | None], why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        check_response(status, response_headers(**overrides), RFC_KEY)
