"""``socketwire.serve.proxy.ProxyHeaders``: which peers are trusted, and what they say."""

from __future__ import annotations

import pytest

from socketwire.serve.proxy import ProxyHeaders


def test_trusted_peers() -> None:
    proxy = ProxyHeaders("127.0.0.1, 10.0.0.0/8, ::1")
    assert proxy.trusts("127.0.0.1") and proxy.trusts("10.1.2.3") and proxy.trusts("::1")
    assert not proxy.trusts("192.0.2.1") and not proxy.trusts("not an address")
    assert proxy.trusts("")  # a Unix-socket peer
    assert ProxyHeaders("*").trusts("192.0.2.1")
    with pytest.raises(ValueError):
        ProxyHeaders("127.0.0.1, localhost")


def test_the_client_is_the_nearest_untrusted_hop() -> None:
    proxy = ProxyHeaders("127.0.0.1, 10.0.0.0/8")
    peer = "127.0.0.1"
    assert proxy.client_address(peer, None) == peer
    assert proxy.client_address(peer, "203.0.113.7") == "203.0.113.7"
    # A client that forges the header only adds hops further left.
    assert proxy.client_address(peer, "198.51.100.1, 203.0.113.7, 10.0.0.2") == "203.0.113.7"
    assert proxy.client_address(peer, "10.0.0.3, 10.0.0.2") == "10.0.0.3"
    assert proxy.client_address(peer, " , ") == peer


def test_the_scheme() -> None:
    assert ProxyHeaders.is_secure("https", False) is True
    assert ProxyHeaders.is_secure("wss", False) is True
    assert ProxyHeaders.is_secure("http, https", True) is False
    assert ProxyHeaders.is_secure(None, True) is True
