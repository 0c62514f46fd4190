"""Engine.IO options seen on the wire: CORS, cookie, HTTP compression, transports, path."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from typing import Any

import socketwire
from tests.conftest import ServerStarter
from tests.integration.rawclient import HttpResponse, http_request

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def open_payload(resp: HttpResponse) -> dict[str, Any]:
    assert resp.status == 200, resp
    assert resp.body[:1] == b"0", resp.body
    data: dict[str, Any] = json.loads(resp.body[1:])
    return data


async def test_no_cors_headers_unless_configured(start_server: ServerStarter) -> None:
    url = await start_server(socketwire.Server())
    resp = await http_request(url, "GET", HANDSHAKE, headers=[("Origin", "https://a.example")])
    open_payload(resp)
    assert "access-control-allow-origin" not in resp.headers


async def test_cors_star(start_server: ServerStarter) -> None:
    url = await start_server(socketwire.Server(cors={"origin": "*"}))
    resp = await http_request(url, "GET", HANDSHAKE, headers=[("Origin", "https://a.example")])
    open_payload(resp)
    assert resp.headers["access-control-allow-origin"] == "*"


async def test_cors_list_and_regex_reflect_only_matching_origins(
    start_server: ServerStarter,
) -> None:
    sio = socketwire.Server(
        cors={"origin": ["https://a.example", re.compile(r"\.b\.example$")], "credentials": True}
    )
    url = await start_server(sio)
    for origin in ("https://a.example", "https://x.b.example"):
        resp = await http_request(url, "GET", HANDSHAKE, headers=[("Origin", origin)])
        open_payload(resp)
        assert resp.headers["access-control-allow-origin"] == origin
        assert resp.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in resp.headers["vary"]
    resp = await http_request(url, "GET", HANDSHAKE, headers=[("Origin", "https://evil.example")])
    assert "access-control-allow-origin" not in resp.headers
    assert "access-control-allow-credentials" not in resp.headers


async def test_cors_callable_and_preflight(start_server: ServerStarter) -> None:
    seen: list[str | None] = []

    def allow(origin: str | None) -> bool:
        seen.append(origin)
        return origin == "https://ok.example"

    url = await start_server(socketwire.Server(cors={"origin": allow, "max_age": 600}))
    resp = await http_request(
        url,
        "OPTIONS",
        HANDSHAKE,
        headers=[
            ("Origin", "https://ok.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-token"),
        ],
    )
    assert resp.status == 204
    assert resp.headers["access-control-allow-origin"] == "https://ok.example"
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert resp.headers["access-control-allow-headers"] == "content-type,x-token"
    assert resp.headers["access-control-max-age"] == "600"
    resp = await http_request(url, "OPTIONS", HANDSHAKE, headers=[("Origin", "https://no.example")])
    assert "access-control-allow-origin" not in resp.headers
    assert seen == ["https://ok.example", "https://no.example"]


async def test_cookie_option(start_server: ServerStarter) -> None:
    url = await start_server(socketwire.Server(cookie=True))
    resp = await http_request(url, "GET", HANDSHAKE)
    sid = open_payload(resp)["sid"]
    assert resp.headers["set-cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"

    url2 = await start_server(
        socketwire.Server(cookie={"name": "sw", "path": "/app", "secure": True})
    )
    resp = await http_request(url2, "GET", HANDSHAKE)
    sid = open_payload(resp)["sid"]
    assert resp.headers["set-cookie"] == f"sw={sid}; Path=/app; HttpOnly; Secure; SameSite=Lax"

    url3 = await start_server(socketwire.Server())
    assert "set-cookie" not in (await http_request(url3, "GET", HANDSHAKE)).headers


async def _big_payload_get(url: str, accept: str | None) -> HttpResponse:
    sid = open_payload(await http_request(url, "GET", HANDSHAKE))["sid"]
    post = await http_request(url, "POST", f"{HANDSHAKE}&sid={sid}", body="40")
    assert post.status == 200 and post.body == b"ok"
    headers = [("Accept-Encoding", accept)] if accept else []
    return await http_request(url, "GET", f"{HANDSHAKE}&sid={sid}", headers=headers)


def _big_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        socket.emit("big", "y" * 5000)

    return sio


async def test_http_compression_of_polling_responses(start_server: ServerStarter) -> None:
    url = await start_server(_big_server())
    resp = await _big_payload_get(url, "gzip, deflate")
    assert resp.headers.get("content-encoding") == "gzip"
    body = gzip.decompress(resp.body)
    assert body.startswith(b"40{") and b'42["big","' + b"y" * 5000 + b'"]' in body

    resp = await _big_payload_get(url, "deflate")
    assert resp.headers.get("content-encoding") == "deflate"
    assert b"y" * 5000 in zlib.decompress(resp.body)

    resp = await _big_payload_get(url, None)
    assert "content-encoding" not in resp.headers
    assert b"y" * 5000 in resp.body


async def test_http_compression_disabled_and_threshold(start_server: ServerStarter) -> None:
    off = await start_server(_big_server(http_compression=False))
    resp = await _big_payload_get(off, "gzip")
    assert "content-encoding" not in resp.headers
    high = await start_server(_big_server(http_compression={"threshold": 100_000}))
    resp = await _big_payload_get(high, "gzip")
    assert "content-encoding" not in resp.headers


async def test_transports_and_allow_upgrades(start_server: ServerStarter) -> None:
    ws_only = await start_server(socketwire.Server(transports=["websocket"]))
    resp = await http_request(ws_only, "GET", HANDSHAKE)
    assert resp.status == 400
    assert resp.json() == {"code": 0, "message": "Transport unknown"}

    no_upgrade = await start_server(socketwire.Server(allow_upgrades=False))
    assert open_payload(await http_request(no_upgrade, "GET", HANDSHAKE))["upgrades"] == []

    default = await start_server(
        socketwire.Server(ping_interval=1.5, ping_timeout=2, max_http_buffer_size=5000)
    )
    data = open_payload(await http_request(default, "GET", HANDSHAKE))
    assert data["upgrades"] == ["websocket"]
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (1500, 2000, 5000)
    assert len(data["sid"]) == 20


async def test_custom_path_and_fallback(start_server: ServerStarter) -> None:
    def fallback(req: Any) -> None:
        req.respond(200, [("Content-Type", "text/plain")], b"fallback " + req.path.encode())

    url = await start_server(socketwire.Server(path="/rt", fallback=fallback))
    open_payload(await http_request(url, "GET", "/rt/?EIO=4&transport=polling"))
    resp = await http_request(url, "GET", HANDSHAKE)
    assert (resp.status, resp.body) == (200, b"fallback /socket.io/")

    plain = await start_server(socketwire.Server())
    resp = await http_request(plain, "GET", "/elsewhere")
    assert resp.status == 404
