"""Two socketwire nodes on one real redis-server behind a real nginx, round
robin, no sticky sessions (``deploy/nginx/socketwire.conf``).

* Without session routing (the control), a polling session breaks as soon as
  nginx sends one of its requests to the other node: ``Session ID unknown``.
* With ``--session-routing``: raw polling requests all succeed, some through
  the other node; the official JS client (npm) over polling only, WebSocket
  only and polling with upgrade, several clients at once, every request
  served, both nodes used, requests forwarded or upgrades relayed; broadcasts
  to rooms, ``fetch_sockets`` and ``server_side_emit`` across the nodes.
* A node killed (SIGKILL): its clients reconnect, through nginx, to the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from socketwire.client import Client
from tests.client.helpers import watch
from tests.cluster.conftest import RedisServer
from tests.conftest import run_node
from tests.waits import WAIT, scaled

from .conftest import cluster

SPREAD = Path(__file__).resolve().parents[1] / "workers" / "js" / "spread.js"


async def http(url: str, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a connection of its own: status and body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in rest.lower().partition(b"\r\n\r\n")[0]:
        payload = dechunk(payload)
    return int(status_line.split()[1]), payload


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


async def polling_sessions(url: str, count: int) -> list[tuple[int, bytes]]:
    """``count`` raw polling sessions: open, connect to ``/``, read the answer.
    Every answer after the opening one, as (status, body)."""
    answers: list[tuple[int, bytes]] = []
    for _ in range(count):
        status, body = await http(url, "GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200, body
        sid = json.loads(body[1:])["sid"]
        query = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        answers.append(await http(url, "POST", query, b"40"))
        if answers[-1][0] == 200:
            # The server has its CONNECT: this GET is answered at once.
            answers.append(await http(url, "GET", query))
    return answers


async def test_without_routing_polling_fails_behind_round_robin(
    app_dir: Path, redis_server: RedisServer, key: str
) -> None:
    async with cluster(app_dir, redis_server.url, key, routing=False) as nodes:
        answers = await polling_sessions(nodes.url, 4)
    failed = [body for status, body in answers if status == 400]
    # nginx alternates: the request after the opening one reaches the other node.
    assert failed and all(b"Session ID unknown" in body for body in failed)


async def test_with_routing_every_polling_request_is_served(
    app_dir: Path, redis_server: RedisServer, key: str
) -> None:
    async with cluster(app_dir, redis_server.url, key) as nodes:
        answers = await polling_sessions(nodes.url, 4)
        assert all(status == 200 for status, _ in answers), answers
        # Every session got its CONNECT answer.
        connects = [body for _, body in answers if body.startswith(b"40")]
        assert len(connects) == 4
        client = Client(nodes.url, transports=["websocket"], reconnection=False)
        await asyncio.wait_for(client.connect(), WAIT)
        try:
            stats = await client.emit_with_ack("stats", timeout=WAIT)
        finally:
            await client.disconnect()
        assert len({s["node"] for s in stats}) == 2
        assert sum(s["forwarded"] for s in stats) >= 4
        assert all(s["served"] > 0 and s["gone"] == 0 for s in stats)
        assert "Session ID unknown" not in nodes.log()


@pytest.mark.parametrize("transports", ["polling", "websocket", "polling,websocket"])
async def test_the_official_client_on_any_node(
    app_dir: Path, redis_server: RedisServer, key: str, transports: str
) -> None:
    async with cluster(app_dir, redis_server.url, key) as nodes:
        (result,) = await run_node(SPREAD, nodes.url, transports, timeout=scaled(40))
        log = nodes.log()
    assert result["errors"] == []
    # A broadcast to a room of clients spread over both nodes reached them all.
    assert sorted(i for i, _ in result["news"]) == list(range(6))
    expected = "polling" if transports == "polling" else "websocket"
    assert result["transports"] == [expected] * 6
    stats = {s["node"]: s for s in result["stats"]}
    assert len(stats) == 2  # the other node answered the server-side emit
    assert all(s["served"] > 0 and s["gone"] == 0 for s in stats.values())
    if transports == "polling":
        assert sum(s["forwarded"] for s in stats.values()) > 0
    if transports == "polling,websocket":
        assert sum(s["forwarded"] + s["spliced"] for s in stats.values()) > 0
    assert "Session ID unknown" not in log


async def connect_on_both(url: str, **options: Any) -> list[tuple[Client, dict[str, Any]]]:
    """Clients through nginx until both nodes have one (round robin: two or three)."""
    found: dict[str, tuple[Client, dict[str, Any]]] = {}
    extra: list[Client] = []
    for _ in range(6):
        client = Client(url, force_new=True, **options)
        await asyncio.wait_for(client.connect(), WAIT)
        who = await client.emit_with_ack("whoami", timeout=WAIT)
        if who["node"] in found:
            extra.append(client)
            # Polling clients make requests in pairs: one request more moves the
            # next handshake to the other node of the round robin.
            await http(url, "GET", "/socket.io/?EIO=3&transport=polling")
        else:
            found[who["node"]] = (client, who)
        if len(found) == 2:
            break
    for client in extra:
        await client.disconnect()
    assert len(found) == 2, "nginx sent every client to one node"
    return list(found.values())


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_one_cluster_across_the_nodes(
    app_dir: Path, redis_server: RedisServer, key: str, transport: str
) -> None:
    async with cluster(app_dir, redis_server.url, key) as nodes:
        (a, who_a), (b, who_b) = await connect_on_both(nodes.url, transports=[transport])
        try:
            # The client's address through nginx and, polling, another node.
            assert who_a["address"] == who_b["address"] == "127.0.0.1"
            events_b = watch(b)
            assert await b.emit_with_ack("join", "room", timeout=WAIT) is True
            assert await a.emit_with_ack("shout", "room", "hi", {"n": 1}, timeout=WAIT) is True
            assert await events_b.wait("news") == ("hi", {"n": 1})
            everyone = await a.emit_with_ack("count", timeout=WAIT)
            assert everyone == sorted([who_a["sid"], who_b["sid"]])
            assert await a.emit_with_ack("count", "room", timeout=WAIT) == [who_b["sid"]]
            stats = await a.emit_with_ack("stats", timeout=WAIT)
            assert sorted(s["node"] for s in stats) == sorted([who_a["node"], who_b["node"]])
        finally:
            await a.disconnect()
            await b.disconnect()
        assert "Session ID unknown" not in nodes.log()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_a_killed_nodes_clients_reconnect_to_the_other(
    app_dir: Path, redis_server: RedisServer, key: str, transport: str
) -> None:
    async with cluster(app_dir, redis_server.url, key) as nodes:
        pairs = await connect_on_both(
            nodes.url,
            transports=[transport],
            reconnection_delay=0.05,
            reconnection_delay_max=0.2,
        )
        (doomed, killed), (survivor, kept) = pairs
        try:
            events, survivor_events = watch(doomed), watch(survivor)
            os.kill(killed["pid"], signal.SIGKILL)
            await events.wait("disconnect")
            await events.wait("connect")
            now = await doomed.emit_with_ack("whoami", timeout=WAIT)
            assert now["node"] == kept["node"] and now["pid"] != killed["pid"]
            if transport == "websocket":
                # The other node's WebSocket clients never noticed.
                assert survivor_events.named("disconnect") == []
            elif not survivor.connected:
                # A polling request of the survivor's that nginx had sent through
                # the killed node was lost with it: the client reconnects too.
                await survivor_events.wait("connect")
            # The cluster is one node now.
            stats = await survivor.emit_with_ack("stats", timeout=WAIT)
            assert [s["node"] for s in stats] == [kept["node"]]
        finally:
            await doomed.disconnect()
            await survivor.disconnect()
