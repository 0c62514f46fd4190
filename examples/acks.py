"""Getting acknowledgements, in both directions.

Client to server: the value a handler returns is the acknowledgement. A tuple
gives the client several arguments, ``None`` an empty ack. A handler that takes
an ``ack`` keyword parameter gets the ack callable instead (``None`` when the
client asked for none) and can answer before its work is done::

    socket.emit("ferret", "tobi", (data) => console.log(data));  // "woot"
    socket.emit("divmod", 17, 5, (q, r) => console.log(q, r));   // 3 2
    const woot = await socket.emitWithAck("ferret", "tobi");      // first argument only

Server to client: pass ``callback=`` to ``emit``, or ``await emit_with_ack``. The
client's listener gets a function as its last argument and calls it::

    socket.on("ferret", (name, fn) => fn("woot", name));

On connection the server asks the client twice, once with a callback and once
with ``emit_with_ack``, and tells it what it got back with ``ferret answered``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

ACK_TIMEOUT = 10.0  # seconds the server waits for the client's answer


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("ferret")
    def ferret(socket: socketwire.Socket, name: str) -> str:
        log.info("%s asks about ferret %s", socket.id, name)
        return "woot"

    @sio.on("divmod")
    def on_divmod(socket: socketwire.Socket, a: int, b: int) -> tuple[int, int]:
        return divmod(a, b)  # two ack arguments: quotient, remainder

    @sio.on("save")
    async def save(socket: socketwire.Socket, doc: dict[str, Any], ack: Any) -> None:
        if ack is not None:
            ack("queued", doc["id"])  # answer now...
        await asyncio.sleep(0.01)  # ...then do the slow part
        socket.emit("saved", doc["id"])

    @sio.on("connection")
    async def on_connection(socket: socketwire.Socket) -> None:
        def got_answer(*answer: Any) -> None:
            socket.emit("ferret answered", {"via": "callback", "answer": list(answer)})

        socket.emit("ferret", "tobi", callback=got_answer)

        try:
            answer = await socket.emit_with_ack("ferret", "loki", timeout=ACK_TIMEOUT)
        except (socketwire.AckTimeout, socketwire.Disconnected) as exc:
            log.info("%s did not answer: %r", socket.id, exc)
            return
        socket.emit("ferret answered", {"via": "emit_with_ack", "answer": answer})

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
