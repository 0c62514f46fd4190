"""Binary data, in both directions.

``bytes`` (and ``bytearray``/``memoryview``) anywhere in an event's arguments,
even deep inside dicts and lists, travel as binary attachments; the JS client
gets ``Buffer``/``ArrayBuffer`` objects in the same places, and whatever binary
the client sends (``Buffer``, ``ArrayBuffer``, typed arrays, ``Blob``...) arrives
here as ``bytes``::

    socket.on("welcome", ({ logo, parts }, raw) => {});     // Buffers
    socket.emit("upload", { name: "a.bin", chunks: [buf1, buf2] }, (receipt, tail) => {
      // receipt = { name, size, sha256: <Buffer 32 bytes> }, tail = <Buffer>
    });

The server greets with some binary, acknowledges an ``upload`` with the SHA-256
digest of the concatenated chunks (bytes), and ``echo`` sends any payload back
unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Any

import socketwire

LOGO = bytes(range(256))


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("connection")
    def on_connection(socket: socketwire.Socket) -> None:
        socket.emit("welcome", {"logo": LOGO, "parts": [b"\x00\x01", b"", b"\xff"]}, b"raw")

    @sio.on("upload")
    def upload(socket: socketwire.Socket, meta: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        data = b"".join(meta["chunks"])
        receipt = {"name": meta["name"], "size": len(data), "sha256": hashlib.sha256(data).digest()}
        return receipt, data[-4:]

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *payload: Any) -> tuple[Any, ...]:
        return payload

    return sio


if __name__ == "__main__":
    create_server().run(3000)
