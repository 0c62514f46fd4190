"""Micro-benchmark of the built-in server's whole stack, bytes in and bytes out, no I/O.

A real ``HttpConnection`` (the one ``bench/server.py`` serves) on a transport that
only keeps what it is given: the WebSocket handshake, the CONNECT to "/", then
the rig's echo (``42<id>["echo",{...}]`` in masked frames, answered by
``43<id>[{...}]``), one frame per read (``echo w=1``) or ten (``echo w=10``), and
the rig's broadcast (``emit("tick", ...)`` to 1,000 such connections) and rooms
(one emit to each of 100 rooms of 10 of them).
What is timed is the server's Python (and compiled) work per operation: no
system call, no event loop turn, so the figures move with the code only, not
with the load generator or the kernel (see RESULTS.md for the rig's figures).

    .venv/bin/python bench/wire.py            # N = 50000 echoes, 3000 connects
    .venv/bin/python bench/wire.py 200000

Prints the best and the median of 5 timings of each case, per operation.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from server import create_server  # noqa: E402  (bench/server.py)
from socketwire.engine.process import settle_gc  # noqa: E402
from socketwire.serve import HttpTimeouts, make_protocol_factory  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
CONNECTS = 3000
BROADCAST_CLIENTS = 1000
ROOMS = 100
MASK = b"\x11\x22\x33\x44"
REQUEST = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
# The rig's echo payload: a ~100-byte object.
PAYLOAD = json.dumps({"seq": 1, "ts": 1733400000000, "d": "x" * 60}, separators=(",", ":"))


class Transport:
    """Keeps the last write and the protocol the connection hands itself to."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.last = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.last = data

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def frame(text: bytes) -> bytes:
    """A masked text frame, as a client sends it."""
    n = len(text)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    return head + MASK + bytes(b ^ MASK[i & 3] for i, b in enumerate(text))


def timings(fn: Any, ops: int) -> list[float]:
    out = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) / ops)
    return out


async def main() -> None:
    sio = create_server()
    factory = make_protocol_factory(sio.handle_request, 1_000_000, 4 << 20, HttpTimeouts())
    settle_gc()  # as Server.run does
    connect_frame = frame(b"40")

    def connect() -> Transport:
        transport = Transport()
        conn = factory()
        conn.connection_made(transport)
        conn.data_received(REQUEST)
        # Upgraded: the transport reads into the WebSocket itself (an older tree
        # kept reading through the HTTP connection).
        if transport.protocol is None:
            transport.protocol = conn
        transport.protocol.data_received(connect_frame)
        return transport

    transport = connect()
    assert transport.last[2:4] == b"40", transport.last
    read = transport.protocol.data_received
    one = frame(b'423["echo",%s]' % PAYLOAD.encode())
    ten = b"".join(frame(b'42%d["echo",%s]' % (i, PAYLOAD.encode())) for i in range(10))
    read(one)
    assert transport.last.startswith(b"\x81") and b"433[" in transport.last, transport.last

    def echo1() -> None:
        for _ in range(N):
            read(one)

    def echo10() -> None:
        for _ in range(N // 10):
            read(ten)

    kept: list[Transport] = []

    def connects() -> None:
        kept.extend(connect() for _ in range(CONNECTS))

    # The rig's broadcast: one emit to every client, the same frame written to each.
    audience = [connect() for _ in range(BROADCAST_CLIENTS - 1)]
    tick = {"i": 0, "d": "x" * 100}
    emit = sio.emit
    rounds = max(1, N // BROADCAST_CLIENTS)

    def broadcast() -> None:
        for _ in range(rounds):
            emit("tick", tick)

    broadcast()
    assert audience[-1].last.endswith(b"x" * 100 + b'"}]'), audience[-1].last

    # The rig's rooms: 100 rooms of 10 clients, one emit per room.
    for i, t in enumerate(audience[: ROOMS * 10]):
        t.protocol.data_received(frame(b'42["join","r%d"]' % (i % ROOMS)))
    room_names = [f"r{r}" for r in range(ROOMS)]
    to = sio.to
    room_rounds = max(1, N // (ROOMS * 10))

    def rooms() -> None:
        for _ in range(room_rounds):
            for name in room_names:
                to(name).emit("tick", tick)

    results = {
        "echo w=1 (ns per echo)": [t * 1e9 for t in timings(echo1, N)],
        "echo w=10 (ns per echo)": [t * 1e9 for t in timings(echo10, N)],
        "broadcast (ns per delivery)": [
            t * 1e9 for t in timings(broadcast, rounds * BROADCAST_CLIENTS)
        ],
        "rooms (ns per delivery)": [t * 1e9 for t in timings(rooms, room_rounds * ROOMS * 10)],
    }
    for t in audience:
        t.protocol.connection_lost(None)
    del audience
    gc.collect()
    results["connect (us per connection)"] = [t * 1e6 for t in timings(connects, CONNECTS)]
    for name, values in results.items():
        print(f"{name:30s} best {min(values):8.1f}   median {statistics.median(values):8.1f}")


if __name__ == "__main__":
    asyncio.run(main())
