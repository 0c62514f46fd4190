"""Client URLs: where to connect, which namespace, and the key that shares a connection.

``parse_url("http://example.com:3000/chat?x=1", "/socket.io")`` gives the scheme,
host, port, the namespace (the URL path, ``"/"`` when empty), the query, and the
identity under which connections are shared (as the JavaScript client's
``url()``: ``"<scheme>://<host>:<port><path>"``).  ``engine_target`` builds the
request target of an Engine.IO request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["ParsedUrl", "engine_target", "parse_url"]

_SECURE_SCHEMES = frozenset(("https", "wss"))
_SCHEMES = frozenset(("http", "https", "ws", "wss"))


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """A client URL taken apart."""

    scheme: str
    secure: bool
    host: str  # without brackets, e.g. "::1"
    port: int
    namespace: str
    query: tuple[tuple[str, str], ...]
    id: str  # the identity of the shared connection (scheme, host, port, engine path)

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: the port only when not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str, path: str = "/socket.io") -> ParsedUrl:
    """Parse a client URL (``http``, ``https``, ``ws`` or ``wss``; no scheme means https)."""
    if "://" not in url:
        # The JavaScript client outside a browser: a protocol-less URL is https.
        url = "https://" + url.lstrip("/")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} (http, https, ws or wss)")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    secure = scheme in _SECURE_SCHEMES
    port = parts.port or (443 if secure else 80)
    namespace = parts.path or "/"
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    bracketed = f"[{host}]" if ":" in host else host
    return ParsedUrl(
        scheme=scheme,
        secure=secure,
        host=host,
        port=port,
        namespace=namespace,
        query=query,
        id=f"{scheme}://{bracketed}:{port}{path}",
    )


def engine_target(path: str, query: Mapping[str, str]) -> str:
    """The request target ``<path>/?k=v&...`` of an Engine.IO request (trailing slash added)."""
    base = "/" + path.strip("/") + "/" if path.strip("/") else "/"
    if not query:
        return base
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    return f"{base}?{encoded}"
