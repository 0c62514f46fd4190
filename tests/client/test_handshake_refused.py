"""A server that refuses the Engine.IO handshake: ``HandshakeRefused`` (client/errors.py).

Engine.IO v4 "Handshake": the server answers a handshake it refuses with an HTTP
error; Node's engine.io and socketwire's server say why in an error object,
``{"code": N, "message": ...}`` (Node's ``Server.errors``).  The client reports it
as a ``HandshakeRefused``, which is both the ``TransportError`` it always was (the
JavaScript client's reason strings) and a ``socketwire.HandshakeError``.
"""

from __future__ import annotations

import asyncio

import pytest

import socketwire
from socketwire.client import TransportError
from socketwire.client.errors import HandshakeRefused

from .conftest import ClientFactory
from .helpers import WAIT, watch
from .peers import NodePeer, SocketwirePeer

REASONS = {"polling": "xhr poll error", "websocket": "websocket error"}


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_refused_by_allow_request(transport: str, make_client: ClientFactory) -> None:
    # socketwire's server: allow_request says no, 403 {"code": 4, "message": "Forbidden"}.
    peer = SocketwirePeer(allow_request=lambda req: False)
    await peer.start()
    try:
        client = make_client(peer.url, transports=[transport], reconnection=False)
        events = watch(client)
        with pytest.raises(socketwire.HandshakeError) as info:
            await asyncio.wait_for(client.connect(), WAIT)
        err = info.value
        assert isinstance(err, HandshakeRefused) and isinstance(err, TransportError)
        assert (err.code, err.message, err.status) == (4, "Forbidden", 403)
        assert err.reason == REASONS[transport]
        assert b'"code":4' in err.context
        assert str(err) == f"{err.reason}: handshake refused with HTTP 403: Forbidden (code 4)"
        assert events.named("connect_error") == [(err,)]
    finally:
        await peer.stop()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
@pytest.mark.parametrize("server", ["node", "socketwire"])
async def test_unknown_session_id(
    server: str, transport: str, node_peer: NodePeer, make_client: ClientFactory
) -> None:
    # A first request that names a session the server does not know: 400, code 1.
    own = SocketwirePeer() if server == "socketwire" else None
    if own is not None:
        await own.start()
    url = own.url if own is not None else node_peer.url
    try:
        client = make_client(url, transports=[transport], query={"sid": "nope"}, reconnection=False)
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(client.connect(), WAIT)
        err = info.value
        if server == "node" and transport == "websocket":
            # Node's engine.io refuses a WebSocket with the message alone, as text:
            # no code, so no HandshakeError.
            assert not isinstance(err, HandshakeRefused)
            assert err.description.status == 400
            assert err.description.body == b"Session ID unknown"
            return
        assert isinstance(err, HandshakeRefused)
        assert (err.code, err.message, err.status) == (1, "Session ID unknown", 400)
        if transport == "polling":
            assert err.description == 400  # as the JavaScript client reports it
    finally:
        if own is not None:
            await own.stop()


async def test_other_http_errors_stay_transport_errors(make_client: ClientFactory) -> None:
    # Not an Engine.IO server at that path: 404 without an error object.
    peer = SocketwirePeer()
    await peer.start()
    try:
        client = make_client(
            peer.url, transports=["polling"], path="/elsewhere", reconnection=False
        )
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(client.connect(), WAIT)
        assert not isinstance(info.value, socketwire.HandshakeError)
        assert (info.value.reason, info.value.description) == ("xhr poll error", 404)
    finally:
        await peer.stop()


def test_from_response_reads_only_nodes_error_object() -> None:
    def parse(body: bytes) -> HandshakeRefused | None:
        return HandshakeRefused.from_response("xhr poll error", 400, 400, body)

    refused = parse(b'{"code":3,"message":"Bad request"}')
    assert refused is not None and (refused.code, refused.message) == (3, "Bad request")
    for body in (b"", b"Bad request", b"[3]", b'{"code":"3","message":"x"}', b'{"code":3}'):
        assert parse(body) is None
