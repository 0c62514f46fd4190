"""Client URLs: namespace, default ports, query, and the identity that shares connections."""

from __future__ import annotations

import pytest

from socketwire.client.url import engine_target, parse_url


def test_namespace_port_and_id() -> None:
    url = parse_url("http://example.com/chat?x=1&y=", "/socket.io")
    assert (url.scheme, url.host, url.port, url.secure) == ("http", "example.com", 80, False)
    assert url.namespace == "/chat"
    assert url.query == (("x", "1"), ("y", ""))
    assert url.id == "http://example.com:80/socket.io"
    assert url.host_header == "example.com"


def test_same_server_same_id_whatever_the_namespace() -> None:
    a = parse_url("http://localhost:3000", "/socket.io")
    b = parse_url("http://localhost:3000/admin", "/socket.io")
    assert a.namespace == "/" and b.namespace == "/admin"
    assert a.id == b.id
    assert parse_url("http://localhost:3000", "/other").id != a.id


def test_secure_schemes_and_defaults() -> None:
    assert parse_url("https://h").port == 443
    assert parse_url("wss://h").secure
    assert parse_url("ws://h:81").host_header == "h:81"
    assert parse_url("example.org/x").scheme == "https"  # no scheme: https, as in Node


def test_ipv6() -> None:
    url = parse_url("http://[::1]:3000/")
    assert url.host == "::1"
    assert url.host_header == "[::1]:3000"
    assert url.id == "http://[::1]:3000/socket.io"


def test_bad_urls() -> None:
    with pytest.raises(ValueError):
        parse_url("ftp://h")
    with pytest.raises(ValueError):
        parse_url("http://")


def test_engine_target() -> None:
    assert engine_target("/socket.io", {"EIO": "4", "transport": "polling"}) == (
        "/socket.io/?EIO=4&transport=polling"
    )
    assert engine_target("/socket.io/", {}) == "/socket.io/"
    assert engine_target("/", {"a b": "c&d"}) == "/?a%20b=c%26d"
