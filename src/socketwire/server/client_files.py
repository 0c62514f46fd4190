"""The browser client's files served under ``<path>/`` (layer 2).

By default they come from the package (``socketwire/static``: socketwire's own
client, built from ``js/client`` by ``js/build.sh``); ``$SOCKETWIRE_CLIENT_DIST``
names a folder to serve instead, such as the official ``socket.io-client``
``dist`` folder. Each file is read once, compressed with gzip once, and answered
with an ETag (``If-None-Match`` gets a 304) and ``Cache-Control``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from socketwire.engine.ports import HttpRequest

_JS = "application/javascript; charset=utf-8"
_MAP = "application/json; charset=utf-8"

# The names Node's socket.io serves, and the TypeScript declarations of the ES module.
CLIENT_FILES = {
    "socket.io.js": _JS,
    "socket.io.js.map": _MAP,
    "socket.io.min.js": _JS,
    "socket.io.min.js.map": _MAP,
    "socket.io.esm.min.js": _JS,
    "socket.io.esm.min.js.map": _MAP,
    "socket.io.msgpack.min.js": _JS,
    "socket.io.msgpack.min.js.map": _MAP,
    "socket.io.d.ts": "application/typescript; charset=utf-8",
}

CACHE_CONTROL = "public, max-age=0"


def find_client_dist(start: Path | None = None) -> Path | None:
    """A folder named by ``$SOCKETWIRE_CLIENT_DIST`` holding ``socket.io.js``, if any.

    ``start`` is unused and kept for callers of earlier releases, which looked
    for ``node_modules`` folders: the package's own client is the default now.
    """
    env = os.environ.get("SOCKETWIRE_CLIENT_DIST")
    if env:
        p = Path(env)
        return p if (p / "socket.io.js").is_file() else None
    return None


def packaged_file(name: str) -> bytes | None:
    """The bytes of ``socketwire/static/<name>``, or None when the package has no such file."""
    ref = resources.files("socketwire").joinpath("static", name)
    return ref.read_bytes() if ref.is_file() else None


@dataclass(frozen=True, slots=True)
class ClientFile:
    """One file ready to answer: its bytes, their gzip form and their ETags."""

    content_type: str
    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, name: str, body: bytes) -> ClientFile:
        digest = hashlib.sha256(body).hexdigest()[:20]
        # mtime=0: the same bytes give the same compressed bytes on every start.
        return cls(CLIENT_FILES[name], body, gzip.compress(body, 9, mtime=0), f'"{digest}"')


class ClientFiles:
    """Loads and answers the client's files (one instance per server)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, ClientFile | None] = {}

    def get(self, name: str) -> ClientFile | None:
        """The file ``name`` (a key of ``CLIENT_FILES``), None when there is none."""
        if name in self._cache:
            return self._cache[name]
        dist = find_client_dist()
        if dist is not None:
            path = dist / name
            body = path.read_bytes() if path.is_file() else None
        else:
            body = packaged_file(name)
        found = self._cache[name] = None if body is None else ClientFile.of(name, body)
        return found

    def serve(self, req: HttpRequest, name: str) -> bool:
        """Answer ``req`` with the file ``name``; False (nothing sent) when there is none."""
        file = self.get(name)
        if file is None:
            return False
        gz = _accepts_gzip(req.headers.get("accept-encoding", ""))
        etag = file.etag[:-1] + '-gz"' if gz else file.etag
        headers = [("Cache-Control", CACHE_CONTROL), ("ETag", etag), ("Vary", "Accept-Encoding")]
        if _etag_matches(req.headers.get("if-none-match"), etag):
            req.respond(304, headers, b"")
            return True
        headers.append(("Content-Type", file.content_type))
        body = file.gzipped if gz else file.body
        if gz:
            headers.append(("Content-Encoding", "gzip"))
        req.respond(200, headers, b"" if req.method == "HEAD" else body)
        return True


def _accepts_gzip(accept_encoding: str) -> bool:
    # RFC 9110 §12.5.3: "gzip" (or "*") listed without q=0.
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().replace(" ", "")
            return not (q.startswith("q=") and _quality(q[2:]) == 0)
    return False


def _quality(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


__all__ = ["CLIENT_FILES", "ClientFile", "ClientFiles", "find_client_dist", "packaged_file"]
