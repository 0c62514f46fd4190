"""TLS: https:// and wss:// URLs through the stdlib ``ssl`` module, against both servers.

A self-signed certificate for 127.0.0.1 is made with the ``openssl`` command line
(the test is skipped without it); the client trusts it through ``ssl=``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from socketwire.client import TransportError
from tests.certificates import self_signed

from .conftest import ClientFactory
from .helpers import WAIT, watch_manager
from .peers import NodePeer, SocketwirePeer
from .test_client import ack, settle_transport


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["node", "socketwire"])
async def tls_peer(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> AsyncIterator[NodePeer | SocketwirePeer]:
    cert, key = certificate
    peer: NodePeer | SocketwirePeer
    if request.param == "node":
        peer = NodePeer("--tls-cert", str(cert), "--tls-key", str(key), scheme="https")
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        peer = SocketwirePeer(ssl=context)
    await peer.start()
    yield peer
    await peer.stop()


async def test_https_and_wss(
    tls_peer: NodePeer | SocketwirePeer,
    certificate: tuple[Path, Path],
    transports: list[str],
    make_client: ClientFactory,
) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    client = make_client(tls_peer.url + "/chat", transports=transports, ssl=context)
    manager_events = watch_manager(client.manager)
    await asyncio.wait_for(client.connect(), WAIT)
    await settle_transport(client, transports, manager_events)
    assert await ack(client, "echo", "over tls", b"\x00\x01") == ("over tls", b"\x00\x01")
    assert (await ack(client, "whoami"))["transport"] == transports[-1]
    # wss:// is the same server.
    wss = make_client(
        tls_peer.url.replace("https://", "wss://"), transports=["websocket"], ssl=context
    )
    await asyncio.wait_for(wss.connect(), WAIT)
    assert await ack(wss, "echo", 1) == 1


async def test_untrusted_certificate_is_refused(
    tls_peer: NodePeer | SocketwirePeer, make_client: ClientFactory
) -> None:
    client = make_client(tls_peer.url, transports=["websocket"], reconnection=False)
    with pytest.raises(TransportError) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    assert isinstance(info.value.description, ssl.SSLCertVerificationError)
