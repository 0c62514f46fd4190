"""Acknowledgements with a deadline, to one client or to many.

``socket.timeout(s).emit(ev, ..., callback=cb)`` calls ``cb(None, *answer)``
when the client acks and ``cb(AckTimeout(...))`` when it does not in time;
``await socket.timeout(s).emit_with_ack(...)`` returns the answer or raises
``AckTimeout``. A broadcast asks every reached client:
``await sio.timeout(s).emit_with_ack(ev)`` returns one answer per client, or
raises ``AckTimeout`` whose ``responses`` holds the answers that came::

    socket.on("question", (q, ack) => ack(42));   // or never call ack
    socket.on("vote", (q, ack) => ack("yes"));
    socket.emit("ask", "meaning?", (r) => console.log(r));   // {answer: 42} / {timeout: true}
    socket.emit("poll", "lunch?", (r) => console.log(r));    // {votes: [...]} / {partial: [...]}
"""

from __future__ import annotations

import logging
from typing import Any

import socketwire

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 0.5  # seconds


def create_server(**options: Any) -> socketwire.Server:
    sio = socketwire.Server(**options)

    @sio.on("ask")
    async def ask(socket: socketwire.Socket, question: Any) -> dict[str, Any]:
        try:
            answer = await socket.timeout(ANSWER_TIMEOUT).emit_with_ack("question", question)
        except socketwire.AckTimeout:
            return {"timeout": True}
        return {"answer": answer}

    @sio.on("poll")
    async def poll(socket: socketwire.Socket, question: Any) -> dict[str, Any]:
        try:
            votes = await sio.timeout(ANSWER_TIMEOUT).emit_with_ack("vote", question)
        except socketwire.AckTimeout as exc:
            return {"partial": sorted(exc.responses)}
        return {"votes": sorted(votes)}

    @sio.on("remind")
    def remind(socket: socketwire.Socket, text: Any) -> None:
        def done(err: Exception | None, *answer: Any) -> None:
            socket.emit("reminded", "timeout" if err else list(answer))

        socket.timeout(ANSWER_TIMEOUT).emit("reminder", text, callback=done)

    return sio


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    create_server().run(3000)
