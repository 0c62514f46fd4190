"""The server under test for the shared benchmark rig (../shared/bench).

Usage: python bench/server.py PORT  (listens on 127.0.0.1:PORT, uvloop when installed)

Handlers as the rig's README asks: ``echo`` acks its arguments, ``join`` joins a
room and acks its name, ``fanout`` and ``roomcast`` emit ``tick`` to everyone or
to rooms, yielding to the event loop between emits, then ack ``{sent}``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import socketwire


def _clamp(value: Any, high: int) -> int:
    try:
        return max(0, min(high, int(value or 0)))
    except (TypeError, ValueError):
        return 0


def create_server() -> socketwire.Server:
    # The rig keeps heartbeats out of the measurements (Node's reference: 300 s / 200 s).
    sio = socketwire.Server(ping_interval=300, ping_timeout=200)
    nsp = sio.sockets

    @nsp.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @nsp.on("join")
    def join(socket: socketwire.Socket, room: Any) -> Any:
        socket.join(str(room))
        return room

    @nsp.on("fanout")
    async def fanout(socket: socketwire.Socket, opts: dict[str, Any]) -> dict[str, int]:
        count = _clamp(opts.get("count"), 1_000_000)
        d = "x" * _clamp(opts.get("size"), 1_000_000)
        for i in range(count):
            sio.emit("tick", {"i": i, "d": d})
            await asyncio.sleep(0)
        return {"sent": count}

    @nsp.on("roomcast")
    async def roomcast(socket: socketwire.Socket, opts: dict[str, Any]) -> dict[str, int]:
        rooms = _clamp(opts.get("rooms"), 100_000)
        prefix = str(opts.get("prefix") or "r")
        count = _clamp(opts.get("count"), 1_000_000)
        d = "x" * _clamp(opts.get("size"), 1_000_000)
        for i in range(count):
            for r in range(rooms):
                sio.to(prefix + str(r)).emit("tick", {"i": i, "d": d})
                await asyncio.sleep(0)
        return {"sent": count * rooms}

    return sio


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    logging.basicConfig(level=logging.WARNING)
    create_server().run(port, "127.0.0.1")


if __name__ == "__main__":
    main()
