"""Which time limits a built-in server connection arms, request by request.

Every armed limit is an entry in a queue that stays until its deadline (lazy
cancelling, see ``HttpTimeouts``), so a limit armed for nothing costs memory for
as long as the limit: a minute for a head, five for a body. These tests count
the entries on a real ``HttpConnection`` fed bytes by hand; the limits' effect on
real sockets is in tests/integration/test_http_limits.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple

import pytest

import socketwire
from socketwire.serve import HttpTimeouts, make_protocol_factory
from socketwire.serve.connection import HttpConnection
from socketwire.serve.websocket import WebSocketConnection
from tests.transports import Transport

UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)
HANDSHAKE = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\r\n"


def counts(timeouts: HttpTimeouts) -> tuple[int, int, int]:
    return len(timeouts.head.queue), len(timeouts.body.queue), len(timeouts.idle.queue)


class Connected(NamedTuple):
    timeouts: HttpTimeouts
    conn: HttpConnection
    transport: Transport


@pytest.fixture
async def connected() -> AsyncIterator[Connected]:
    """A new connection of a server with its own time limits."""
    sio = socketwire.Server()
    timeouts = HttpTimeouts()
    conn = make_protocol_factory(sio.handle_request, 1 << 20, 1 << 22, timeouts)()
    transport = Transport()
    conn.connection_made(transport)
    yield Connected(timeouts, conn, transport)
    for ticker in (timeouts.head, timeouts.body, timeouts.idle):
        ticker.cancel()
    await sio.close()


async def test_websocket_handshake_arms_only_the_head_limit_of_its_connect(
    connected: Connected,
) -> None:
    timeouts, conn, transport = connected
    assert counts(timeouts) == (1, 0, 0)
    conn.data_received(UPGRADE)
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 101 ")
    assert isinstance(transport.protocol, WebSocketConnection)
    # The first request's head was due by the limit armed at connect; a GET
    # with no body arms no body limit.
    assert counts(timeouts) == (1, 0, 0)


async def test_keep_alive_requests_arm_their_limits(connected: Connected) -> None:
    timeouts, conn, transport = connected
    conn.data_received(HANDSHAKE)
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 ")
    sid = b"".join(transport.writes).split(b'"sid":"')[1].split(b'"')[0]
    # Answered: the connection is idle.
    assert counts(timeouts) == (1, 0, 1)
    # The next request's head begins: its own head limit.
    post = b"POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\n" % sid
    conn.data_received(post + b"Host: localhost\r\nContent-Length: 2\r\n")
    assert counts(timeouts) == (2, 0, 1)
    # Its head is complete and a body is announced: the body limit.
    conn.data_received(b"\r\n4")
    assert counts(timeouts) == (2, 1, 1)
    conn.data_received(b"0")
    assert b"".join(transport.writes).endswith(b"ok")
