"""Micro-benchmark of the server's incoming-event path: ``Socket.handle_packet``, no I/O.

A decoded EVENT packet goes through the socket's dispatch (the shared
``socketwire.handlers.Runner``) to a sync handler; with an ack id, the handler's
return value is encoded and handed to the engine.  The engine is a stand-in that
only counts what it is given, so the figures are the dispatch, the handler call
and the ack's encoding, nothing of the network.

    .venv/bin/python bench/dispatch.py [N]      # N dispatches per timing (100000)

Prints the best of 7 timings of N dispatches for each case.
"""

from __future__ import annotations

import asyncio
import sys
import timeit
from typing import Any, cast

import socketwire
from socketwire.core.engineio.message import OutgoingMessage
from socketwire.core.socketio.packet import Packet, PacketType
from socketwire.server.connection import Connection
from socketwire.server.socket import Socket

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


class CountingEngine:
    """The part of an EngineSocket that a socket writes to, counting the writes."""

    writable = True

    def __init__(self) -> None:
        self.sent = 0

    def send_text(self, text: bytes) -> None:
        self.sent += 1

    def write_message(self, message: OutgoingMessage) -> None:
        self.sent += 1


class StandInConnection:
    def __init__(self) -> None:
        self.engine = CountingEngine()


def connected_socket(nsp: socketwire.Namespace, sid: str) -> Socket:
    socket = Socket(nsp, cast(Connection, StandInConnection()), sid, {})
    socket.connected = True
    return socket


async def main() -> None:
    sio = socketwire.Server()

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("note")
    def note(socket: socketwire.Socket, *args: Any) -> None:
        return None

    nsp = sio.of("/")
    plain = connected_socket(nsp, "a")
    own = connected_socket(nsp, "b")
    own.on("mine", lambda *args: args)

    cases = {
        "ack (nsp handler returns a tuple)": (
            plain,
            Packet(PacketType.EVENT, "/", ["echo", 1, "x"], 7),
        ),
        "no ack (nsp handler returns None)": (plain, Packet(PacketType.EVENT, "/", ["note", 1])),
        "ack (socket.on handler)": (own, Packet(PacketType.EVENT, "/", ["mine", 1, "x"], 7)),
    }
    for name, (socket, packet) in cases.items():

        def run(on_packet: Any = socket.handle_packet, packet: Packet = packet) -> None:
            on_packet(packet)

        best = min(timeit.repeat(run, number=N, repeat=7))
        print(f"{name:36s} {best * 1e3:7.1f} ms / {N} = {best / N * 1e9:5.0f} ns each")


if __name__ == "__main__":
    asyncio.run(main())
