"""``socketwire.http.request`` and ``socketwire.http.response``, unit by unit."""

from __future__ import annotations

import logging

import pytest

from socketwire.http.request import (
    BodyBuffer,
    Request,
    RequestTooLarge,
    add_header,
    check_declared_length,
    collect_headers,
    dispatch,
    header_name,
    parse_query,
)
from socketwire.http.response import asgi_headers, error_response, response_head


class RecordingRequest(Request):
    """A request whose responses are kept (what a front door would send)."""

    __slots__ = ("responses",)

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        super().__init__("GET", "/p", "a=1", "/p?a=1", headers or {}, "127.0.0.1", False)
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []

    def _send_response(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.responses.append((status, headers, body))


# == headers (RFC 9110 section 5) ===========================================================


def test_header_names_are_lower_case_and_interned() -> None:
    a = header_name(b"Content-Type")
    assert a == "content-type" and a is header_name(b"CONTENT-TYPE")


def test_repeated_headers_are_merged() -> None:
    headers: dict[str, str] = {}
    for name, value in [
        (b"Cookie", b"a=1"),
        (b"X-Tag", b"x"),
        (b"cookie", b"b=2"),
        (b"x-tag", b"y"),
        (b"Host", b"example.org"),
    ]:
        add_header(headers, name, value)
    # RFC 6265 section 5.4 joins cookie pairs with "; ", RFC 9110 section 5.3
    # other repeated fields with ", ".
    assert headers == {"cookie": "a=1; b=2", "x-tag": "x, y", "host": "example.org"}


def test_collect_headers_takes_any_bytes_like_pairs() -> None:
    raw: list[tuple[bytes | bytearray | memoryview, bytes | bytearray | memoryview]] = [
        (bytearray(b"Upgrade"), memoryview(b"websocket")),
        (b"X-A", b"\xe9"),
    ]
    assert collect_headers(raw) == {"upgrade": "websocket", "x-a": "\xe9"}  # latin-1


def test_shared_header_values_are_interned() -> None:
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    add_header(first, b"User-Agent", b"agent/1.0 " + b"x" * 5)
    add_header(second, b"user-agent", b"agent/1.0 " + b"x" * 5)
    assert first["user-agent"] is second["user-agent"]


# == query ==================================================================================


def test_query_last_value_wins_and_is_decoded() -> None:
    assert parse_query("a=1&a=2&b=%20c+d&e") == {"a": "2", "b": " c d", "e": ""}
    assert parse_query("") == {}


def test_request_query_is_parsed_on_first_use() -> None:
    req = RecordingRequest()
    assert req._query is None
    assert req.query == {"a": "1"}
    assert req.query is req.query


# == body limits ============================================================================


def test_body_buffer_holds_the_limit() -> None:
    body = BodyBuffer(10)
    assert body.take() == b""
    body.add(b"12345")
    assert body.take() == b"12345"
    body.add(b"67890")
    assert body.take() == b"1234567890"
    with pytest.raises(RequestTooLarge) as exc:
        body.add(b"!")
    assert exc.value.status == 413


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    check_declared_length({"content-length": "10"}, 10)
    check_declared_length({"content-length": "not a number"}, 10)  # the parser's business
    check_declared_length({}, 10)
    with pytest.raises(RequestTooLarge) as exc:
        check_declared_length({"content-length": "11"}, 10)
    assert exc.value.status == 413


# == answering once =========================================================================


def test_a_request_is_answered_once() -> None:
    req = RecordingRequest()
    aborted: list[bool] = []
    req.on_abort(lambda: aborted.append(True))
    req.respond(200, [], b"first")
    req.respond(500, [], b"second")
    req.abort()  # too late: the answer went out
    assert req.responses == [(200, [], b"first")] and aborted == []


def test_abort_runs_its_callback_once_and_ends_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    req = RecordingRequest()
    calls: list[int] = []

    def callback() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    req.on_abort(callback)
    with caplog.at_level(logging.ERROR, logger="socketwire.http"):
        req.abort()
        req.abort()
    assert calls == [1]
    assert "abort callback failed" in caplog.text
    req.respond(200, [], b"")
    assert req.responses == []


def test_a_websocket_refusal_names_the_version() -> None:
    req = RecordingRequest()
    req.refuse_websocket(b"no")
    ((status, headers, body),) = req.responses
    # RFC 6455 section 4.2.2.
    assert status == 400 and ("Sec-WebSocket-Version", "13") in headers and body == b"no"


def test_dispatch_answers_500_when_the_handler_fails(caplog: pytest.LogCaptureFixture) -> None:
    def failing(req: RecordingRequest) -> None:
        raise ValueError("bug")

    req = RecordingRequest()
    with caplog.at_level(logging.ERROR, logger="socketwire.http"):
        dispatch(failing, req)
    assert req.responses == [(500, [("Content-Type", "text/plain")], b"Internal Server Error")]
    assert "request handler failed for GET /p" in caplog.text

    def answers_then_fails(req: RecordingRequest) -> None:
        req.respond(204, [], b"")
        raise ValueError("bug")

    req = RecordingRequest()
    with caplog.at_level(logging.ERROR, logger="socketwire.http"):
        dispatch(answers_then_fails, req)
    assert req.responses == [(204, [], b"")]


# == responses ==============================================================================


def test_http11_response_head() -> None:
    head = response_head(200, [("Content-Type", "text/plain")], 5, True)
    assert head == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
    closing = response_head(799, [], 0, False)
    assert closing == b"HTTP/1.1 799 Unknown\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert error_response(413, "Payload Too Large").endswith(
        b"Connection: close\r\n\r\nPayload Too Large"
    )


def test_asgi_response_headers() -> None:
    assert asgi_headers([("Set-Cookie", "io=1")], 3) == [
        (b"set-cookie", b"io=1"),
        (b"content-length", b"3"),
    ]
