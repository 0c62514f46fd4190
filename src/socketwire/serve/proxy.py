"""Proxy headers: the client's address and scheme behind a reverse proxy (layer 3).

Behind nginx or a load balancer every connection comes from the proxy, so the
peer address says nothing about the client. A proxy that the operator trusts
says who the client is in ``X-Forwarded-For`` (the addresses a request passed
through, the client first) and how it came in ``X-Forwarded-Proto``.
:class:`ProxyHeaders` believes those headers only on connections from the
trusted addresses (``forwarded_allow_ips``, default ``127.0.0.1``), since any
client can send them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["DEFAULT_FORWARDED_ALLOW_IPS", "ProxyHeaders"]

#: The proxies trusted when none are named: a proxy on the same host.
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyHeaders:
    """Which peers may set the client's address and scheme, and how to read them.

    ``ProxyHeaders("127.0.0.1, 10.0.0.0/8")``: a comma-separated list of addresses
    and networks, or ``*`` for every peer. A Unix-socket peer (no address) is
    trusted: only processes allowed by the socket file's permissions reach it.
    """

    __slots__ = ("_any", "_hosts", "_networks")

    def __init__(self, allow: str | Iterable[str] = DEFAULT_FORWARDED_ALLOW_IPS) -> None:
        items = allow.split(",") if isinstance(allow, str) else list(allow)
        self._any = False
        self._hosts: set[str] = set()
        self._networks: list[_Network] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "*":
                self._any = True
            elif "/" in item:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            else:
                # Raises ValueError for what is not an address: a typo in the
                # option must not trust nobody in silence.
                self._hosts.add(str(ipaddress.ip_address(item)))

    def trusts(self, peer: str) -> bool:
        """Whether a connection from ``peer`` may set the proxy headers."""
        if self._any or not peer or peer in self._hosts:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the nearest hop of ``X-Forwarded-For`` that is not
        itself a trusted proxy (read from the right, as each proxy appends the
        address it saw), else the first."""
        if not forwarded_for:
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if not hops:
            return peer
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0]

    @staticmethod
    def is_secure(forwarded_proto: str | None, secure: bool) -> bool:
        """Whether the client's own connection was TLS, per ``X-Forwarded-Proto``
        (its first value: the scheme the outermost proxy was reached with)."""
        if not forwarded_proto:
            return secure
        scheme = forwarded_proto.split(",", 1)[0].strip().lower()
        return scheme in ("https", "wss")
