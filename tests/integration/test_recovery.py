"""Connection state recovery (Socket.IO 4.6+) with the official client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import socketwire
from tests.conftest import ServerStarter, run_node

JS = Path(__file__).parent / "js"


def recovery_server(**options: Any) -> tuple[socketwire.Server, list[str]]:
    sio = socketwire.Server(connection_state_recovery=True, **options)
    reasons: list[str] = []

    @sio.on("join")
    def join(socket: socketwire.Socket, room: str) -> bool:
        socket.join(room)
        socket.data["joined"] = room
        for i in range(3):
            sio.to(room).emit("tick", i)
        return True

    @sio.on("state")
    def state(socket: socketwire.Socket) -> dict[str, Any]:
        return {"rooms": sorted(socket.rooms - {socket.id}), "data": socket.data}

    @sio.on("disconnect")
    def gone(socket: socketwire.Socket, reason: str) -> None:
        reasons.append(reason)
        if len(reasons) == 1:
            # While the client is away: what it must get back, and what it must not.
            for i in range(3, 6):
                sio.to("room1").emit("tick", i)
            sio.to("elsewhere").emit("tick", "not for you")
            sio.except_("room1").emit("tick", "excluded")
            sio.emit("all", "everyone")
            sio.volatile.emit("tick", "volatile is not kept")

    return sio, reasons


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_missed_broadcasts_arrive_once_in_order(
    start_server: ServerStarter, transports: str
) -> None:
    sio, reasons = recovery_server()
    url = await start_server(sio)
    lines = await run_node(JS / "recovery.js", url, transports)
    connects = [x for x in lines if "connect" in x]
    assert len(connects) == 2
    assert connects[0]["recovered"] is False
    assert connects[1]["recovered"] is True
    assert connects[1]["id"] == connects[0]["id"]
    ticks = [x["args"] for x in lines if x.get("event") == "tick"]
    # Every broadcast carries its offset as the last argument (a string).
    assert [t[0] for t in ticks] == [0, 1, 2, 3, 4, 5]
    assert all(isinstance(t[1], str) and len(t) == 2 for t in ticks)
    assert len({t[1] for t in ticks}) == 6
    second = lines.index(connects[1])
    after = [x["event"] for x in lines[second:] if "event" in x]
    assert after == ["tick", "tick", "tick", "all"]
    (state,) = [x["state"] for x in lines if "state" in x]
    assert state == {"rooms": ["room1"], "data": {"joined": "room1"}}
    assert reasons[0] == "transport close"


async def test_expired_session_is_not_recovered(start_server: ServerStarter) -> None:
    # A zero lifetime: the session is gone by the time the client is back.
    sio, _reasons = _short_lived()
    url = await start_server(sio)
    lines = await run_node(JS / "recovery.js", url, "websocket")
    connects = [x for x in lines if "connect" in x]
    assert [c["recovered"] for c in connects] == [False, False]
    assert connects[0]["id"] != connects[1]["id"]
    (state,) = [x["state"] for x in lines if "state" in x]
    assert state == {"rooms": [], "data": {}}


def _short_lived() -> tuple[socketwire.Server, list[str]]:
    sio = socketwire.Server(connection_state_recovery={"max_disconnection_duration": 0})
    reasons: list[str] = []

    @sio.on("join")
    def join(socket: socketwire.Socket, room: str) -> bool:
        socket.join(room)
        socket.data["joined"] = room
        sio.to(room).emit("tick", 0)
        return True

    @sio.on("state")
    def state(socket: socketwire.Socket) -> dict[str, Any]:
        return {"rooms": sorted(socket.rooms - {socket.id}), "data": socket.data}

    return sio, reasons


async def test_middlewares_skipped_or_run_on_recovery(start_server: ServerStarter) -> None:
    for skip in (True, False):
        sio, _ = recovery_server()
        sio.recovery.skip_middlewares = skip  # type: ignore[union-attr]
        calls: list[str] = []

        def mw(socket: socketwire.Socket, calls: list[str] = calls) -> None:
            calls.append(socket.id)

        sio.use(mw)

        url = await start_server(sio)
        lines = await run_node(JS / "recovery.js", url, "websocket")
        connects = [x for x in lines if "connect" in x]
        assert connects[1]["recovered"] is True
        assert len(calls) == (1 if skip else 2)
