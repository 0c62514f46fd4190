"""Tests of the server-side Engine.IO v4 session state machine
(socketwire.core.engineio.session), grouped by section of the protocol document
(/work/shared/specs/engine.io-protocol-v4.md).

The session is sans-I/O: time is passed explicitly, nothing sleeps or reads a clock.
"""

from __future__ import annotations

import pytest

from socketwire.core.engineio.packet import EnginePacketType, decode_payload
from socketwire.core.engineio.session import (
    EngineSession,
    Heartbeat,
    ReadyState,
    UpgradeState,
)
from socketwire.core.engineio.transport import POLLING, WEBSOCKET
from socketwire.core.reasons import DisconnectReason
from socketwire.core.timers import DeadlineQueue
from socketwire.errors import LocalProtocolError

BUF = b"\x01\x02\x03\x04"
PING_INTERVAL = 25.0
PING_TIMEOUT = 20.0


def polling() -> EngineSession:
    return EngineSession("sid-1", POLLING)


def websocket() -> EngineSession:
    return EngineSession("sid-2", WEBSOCKET)


def test_new_session() -> None:
    s = polling()
    assert s.sid == "sid-1"
    assert s.transport == POLLING
    assert str(POLLING) == "polling"
    assert s.ready_state is ReadyState.OPEN
    assert s.upgrade is UpgradeState.NONE
    assert s.heartbeat is Heartbeat.WAIT_PING
    assert not s.buffer
    assert s.get_waiting is False
    assert s.post_active is False
    assert s.close_reason == ""
    assert websocket().transport == WEBSOCKET
    assert str(WEBSOCKET) == "websocket"


def test_empty_buffers_are_one_immutable_object() -> None:
    # Sessions with nothing to send share one empty buffer, which nothing can fill.
    a, b = polling(), websocket()
    assert a.buffer is b.buffer
    with pytest.raises(AttributeError):
        a.buffer.append((b"4x", False))  # type: ignore[union-attr]
    a.enqueue(b"4x")
    assert a.buffer == [(b"4x", False)] and not b.buffer
    assert a.take_frames() == [(b"4x", False)]
    assert a.buffer is b.buffer


# -- "Heartbeat" -------------------------------------------------------------------


class TestHeartbeat:
    def test_schedule_ping(self) -> None:
        s = polling()
        s.schedule_ping(100.0 + PING_INTERVAL)
        assert s.heartbeat is Heartbeat.WAIT_PING
        assert s.deadline == 125.0
        assert s.is_current(125.0)

    def test_ping_sent_waits_for_pong(self) -> None:
        s = polling()
        s.schedule_ping(125.0)
        s.ping_sent(125.0 + PING_TIMEOUT)
        assert s.heartbeat is Heartbeat.WAIT_PONG
        assert s.deadline == 145.0
        assert s.is_current(145.0)

    def test_stale_deadlines_are_not_current(self) -> None:
        s = polling()
        s.schedule_ping(125.0)
        s.ping_sent(145.0)
        # the ping deadline that fired is no longer this session's
        assert not s.is_current(125.0)
        # a pong arrives: the pong deadline is cancelled lazily by rescheduling
        s.schedule_ping(160.0)
        assert s.heartbeat is Heartbeat.WAIT_PING
        assert not s.is_current(145.0)
        assert not s.is_current(125.0)
        assert s.is_current(160.0)
        # a deadline that never was this session's
        assert not s.is_current(159.999)

    def test_not_current_once_closed(self) -> None:
        s = polling()
        s.schedule_ping(125.0)
        assert s.close(DisconnectReason.TRANSPORT_CLOSE)
        assert s.deadline == 125.0
        assert not s.is_current(125.0)

    def test_not_current_while_closing(self) -> None:
        s = polling()
        s.ping_sent(145.0)
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.ready_state is ReadyState.CLOSING
        assert not s.is_current(145.0)

    def test_heartbeat_driven_by_deadline_queues(self) -> None:
        """The way the asyncio layer drives it: one queue per delay, lazy cancelling."""
        pings: DeadlineQueue[EngineSession] = DeadlineQueue(PING_INTERVAL)
        pongs: DeadlineQueue[EngineSession] = DeadlineQueue(PING_TIMEOUT)
        alive, dead = polling(), EngineSession("sid-dead", POLLING)
        for s in (alive, dead):
            s.schedule_ping(pings.push(0.0, s))

        # t=25: both are due a ping
        due = [s for d, s in pings.expired(25.0) if s.is_current(d)]
        assert due == [alive, dead]
        for s in due:
            s.ping_sent(pongs.push(25.0, s))
            assert s.heartbeat is Heartbeat.WAIT_PONG

        # t=30: only `alive` answers the pong; it goes back to waiting for a ping
        alive.schedule_ping(pings.push(30.0, alive))

        # t=45: both pong deadlines fire, only `dead`'s is current -> ping timeout
        timed_out = [s for d, s in pongs.expired(45.0) if s.is_current(d)]
        assert timed_out == [dead]
        assert dead.heartbeat is Heartbeat.WAIT_PONG
        assert dead.close(DisconnectReason.PING_TIMEOUT)
        assert dead.close_reason == "ping timeout"

        # t=55: alive's next ping
        assert [s for d, s in pings.expired(55.0) if s.is_current(d)] == [alive]
        assert alive.ready_state is ReadyState.OPEN


# -- "HTTP long-polling" > "Receiving data" -----------------------------------------


class TestPolling:
    def test_get_answered_with_buffered_packets(self) -> None:
        s = polling()
        s.enqueue(b"4hello")
        assert s.begin_get() is True
        assert s.get_waiting is True
        assert s.answer_get() == b"4hello"
        assert s.get_waiting is False
        assert not s.buffer

    def test_second_get_while_parked_is_refused(self) -> None:
        s = polling()
        assert s.begin_get() is True
        assert s.begin_get() is False
        # the first GET is still the parked one
        assert s.get_waiting is True
        s.enqueue(b"4a")
        assert s.answer_get() == b"4a"
        # once answered, a new GET is fine
        assert s.begin_get() is True

    def test_get_parks_on_empty_buffer(self) -> None:
        s = polling()
        assert s.begin_get()
        assert s.answer_get() is None
        assert s.get_waiting is True
        s.enqueue(b"4late")
        assert s.answer_get() == b"4late"
        assert s.get_waiting is False
        # nothing left: a second answer_get has nothing to say
        assert s.answer_get() is None

    def test_answer_get_without_a_get(self) -> None:
        s = polling()
        s.enqueue(b"4kept")
        assert s.answer_get() is None
        # the buffer waits for the next GET
        assert s.buffer == [(b"4kept", False)]
        assert s.begin_get()
        assert s.answer_get() == b"4kept"

    def test_payload_joins_packets_in_order(self) -> None:
        s = polling()
        s.enqueue(b"4hello")
        s.enqueue(b"2")
        s.enqueue(b"4world")
        assert s.begin_get()
        # the spec's "HTTP long-polling" example
        assert s.answer_get() == b"4hello\x1e2\x1e4world"

    def test_binary_is_base64_in_polling(self) -> None:
        s = polling()
        s.enqueue(b"4hello")
        s.enqueue(BUF, binary=True)
        assert s.buffer == [(b"4hello", False), (BUF, True)]
        assert s.begin_get()
        body = s.answer_get()
        # the spec's binary example
        assert body == b"4hello\x1ebAQIDBA=="
        assert body is not None
        assert decode_payload(body) == [
            (EnginePacketType.MESSAGE, b"hello", False),
            (EnginePacketType.MESSAGE, BUF, True),
        ]
        assert not s.buffer

    def test_binary_only(self) -> None:
        s = polling()
        s.enqueue(b"", binary=True)
        s.enqueue(b"\xff", binary=True)
        assert s.begin_get()
        assert s.answer_get() == b"b\x1eb/w=="

    def test_end_get_releases_the_slot_and_keeps_the_buffer(self) -> None:
        s = polling()
        assert s.begin_get()
        s.end_get()
        assert s.get_waiting is False
        s.enqueue(b"4a")
        # no GET: nothing is answered
        assert s.answer_get() is None
        assert s.buffer == [(b"4a", False)]
        assert s.begin_get() is True
        assert s.answer_get() == b"4a"

    def test_take_polling_payload(self) -> None:
        s = polling()
        s.enqueue(b"4a")
        s.enqueue(b"\x00", binary=True)
        assert s.take_polling_payload() == b"4a\x1ebAA=="
        assert not s.buffer
        assert s.take_polling_payload() == b""


# -- "Upgrade" -----------------------------------------------------------------------


def probed() -> EngineSession:
    s = polling()
    s.begin_upgrade()
    assert s.probe_received() is True
    return s


class TestUpgrade:
    def test_can_upgrade_only_open_polling_sessions(self) -> None:
        assert polling().can_upgrade() is True
        assert websocket().can_upgrade() is False

        closed = polling()
        closed.close(DisconnectReason.TRANSPORT_CLOSE)
        assert closed.can_upgrade() is False

        closing = polling()
        closing.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert closing.can_upgrade() is False

        probing = polling()
        probing.begin_upgrade()
        assert probing.can_upgrade() is False
        assert probed().can_upgrade() is False

    def test_begin_upgrade(self) -> None:
        s = polling()
        s.begin_upgrade()
        assert s.upgrade is UpgradeState.PROBING
        assert s.transport == POLLING

    def test_begin_upgrade_on_websocket_raises(self) -> None:
        s = websocket()
        with pytest.raises(LocalProtocolError):
            s.begin_upgrade()
        assert s.upgrade is UpgradeState.NONE

    def test_begin_upgrade_twice_raises(self) -> None:
        s = polling()
        s.begin_upgrade()
        with pytest.raises(LocalProtocolError):
            s.begin_upgrade()
        assert s.upgrade is UpgradeState.PROBING

    def test_begin_upgrade_when_closed_raises(self) -> None:
        s = polling()
        s.close(DisconnectReason.TRANSPORT_CLOSE)
        with pytest.raises(LocalProtocolError):
            s.begin_upgrade()
        assert s.upgrade is UpgradeState.NONE

    def test_begin_upgrade_after_upgrade_raises(self) -> None:
        s = probed()
        assert s.upgrade_received()
        with pytest.raises(LocalProtocolError):
            s.begin_upgrade()

    def test_probe_only_while_probing(self) -> None:
        s = polling()
        assert s.probe_received() is False
        assert s.upgrade is UpgradeState.NONE
        s.begin_upgrade()
        assert s.probe_received() is True
        # (mypy keeps the narrowing from before the calls above)
        assert s.upgrade is UpgradeState.PROBED  # type: ignore[comparison-overlap]
        # only once
        assert s.probe_received() is False
        assert s.upgrade is UpgradeState.PROBED

    def test_parked_get_is_not_noop_before_the_probe(self) -> None:
        s = polling()
        assert s.begin_get()
        s.begin_upgrade()
        assert s.answer_get() is None
        assert s.get_waiting is True
        # polling still carries data while probing
        s.enqueue(b"4a")
        assert s.answer_get() == b"4a"

    def test_parked_get_answered_with_noop_once_probed(self) -> None:
        s = polling()
        assert s.begin_get()
        s.begin_upgrade()
        assert s.probe_received()
        assert s.answer_get() == b"6"
        assert s.get_waiting is False
        # no second answer for the same GET
        assert s.answer_get() is None

    def test_noop_does_not_flush_the_buffer(self) -> None:
        s = polling()
        assert s.begin_get()
        s.begin_upgrade()
        s.probe_received()
        s.enqueue(b"4for-the-websocket")
        s.enqueue(BUF, binary=True)
        assert s.answer_get() == b"6"
        # the packets wait for the new transport, unencoded
        assert s.buffer == [(b"4for-the-websocket", False), (BUF, True)]

    def test_upgrade_before_probe_is_refused(self) -> None:
        s = polling()
        assert s.upgrade_received() is False
        assert s.transport == POLLING
        s.begin_upgrade()
        assert s.upgrade_received() is False
        assert s.transport == POLLING
        assert s.upgrade is UpgradeState.PROBING

    def test_upgrade_after_probe_switches_transport(self) -> None:
        s = probed()
        assert s.transport == POLLING
        assert s.upgrade_received() is True
        assert s.transport == WEBSOCKET
        assert s.upgrade is UpgradeState.DONE
        # only once
        assert s.upgrade_received() is False
        assert s.transport == WEBSOCKET
        assert s.can_upgrade() is False

    def test_take_frames_after_upgrade(self) -> None:
        s = probed()
        s.enqueue(b"4a")
        s.enqueue(BUF, binary=True)
        s.enqueue(b"2")
        assert s.upgrade_received()
        frames = s.take_frames()
        # binary is carried as is over WebSocket ("Packet encoding" > "WebSocket")
        assert frames == [(b"4a", False), (BUF, True), (b"2", False)]
        assert not s.buffer
        s.enqueue(b"4b")
        # the returned list is not the live buffer
        assert frames == [(b"4a", False), (BUF, True), (b"2", False)]
        assert s.take_frames() == [(b"4b", False)]
        assert not s.take_frames()

    def test_upgrade_failed_while_probing(self) -> None:
        s = polling()
        s.begin_upgrade()
        s.upgrade_failed()
        assert s.upgrade is UpgradeState.NONE
        assert s.transport == POLLING
        assert s.can_upgrade() is True

    def test_upgrade_failed_after_probe_goes_back_to_polling(self) -> None:
        s = probed()
        s.enqueue(b"4a")
        s.upgrade_failed()
        assert s.upgrade is UpgradeState.NONE
        assert s.transport == POLLING
        # a late "5" does not switch any more
        assert s.upgrade_received() is False
        assert s.transport == POLLING
        # polling resumes: a GET gets data, not a noop
        assert s.begin_get()
        assert s.answer_get() == b"4a"
        # and a new upgrade attempt is allowed
        assert s.can_upgrade() is True
        s.begin_upgrade()
        assert s.probe_received() is True

    def test_upgrade_failed_after_done_changes_nothing(self) -> None:
        s = probed()
        assert s.upgrade_received()
        s.upgrade_failed()
        assert s.upgrade is UpgradeState.DONE
        assert s.transport == WEBSOCKET

    def test_upgrade_failed_without_upgrade_changes_nothing(self) -> None:
        s = polling()
        s.upgrade_failed()
        assert s.upgrade is UpgradeState.NONE
        assert s.can_upgrade() is True


# -- closing -------------------------------------------------------------------------


class TestClosing:
    def test_close_polling_sends_pending_packets_then_close(self) -> None:
        s = polling()
        s.enqueue(b"4a")
        s.enqueue(BUF, binary=True)
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.ready_state is ReadyState.CLOSING
        assert s.close_reason == "forced server close"
        assert s.begin_get()
        body = s.answer_get()
        assert body == b"4a\x1ebAQIDBA==\x1e1"
        assert body is not None
        assert [p[0] for p in decode_payload(body)] == [
            EnginePacketType.MESSAGE,
            EnginePacketType.MESSAGE,
            EnginePacketType.CLOSE,
        ]
        # after that GET the session is closed (mypy keeps an earlier narrowing)
        assert s.ready_state is ReadyState.CLOSED  # type: ignore[comparison-overlap]
        assert s.get_waiting is False
        assert not s.buffer
        assert s.close_reason == "forced server close"

    def test_close_polling_with_a_parked_get(self) -> None:
        s = polling()
        s.enqueue(b"4a")
        assert s.begin_get()
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.answer_get() == b"4a\x1e1"
        assert s.ready_state is ReadyState.CLOSED

    def test_close_polling_with_empty_buffer(self) -> None:
        s = polling()
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.begin_get()
        assert s.answer_get() == b"1"
        assert s.ready_state is ReadyState.CLOSED

    def test_state_after_close_polling_get(self) -> None:
        s = polling()
        s.schedule_ping(25.0)
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.begin_get()
        assert s.answer_get() == b"1"
        assert not s.is_current(25.0)
        assert not s.can_upgrade()
        # a late GET is told "close" right away
        assert s.begin_get() is True
        assert s.answer_get() == b"1"
        assert s.get_waiting is False
        # already closed: close() reports nothing new and keeps the reason
        assert s.close(DisconnectReason.TRANSPORT_CLOSE) is False
        assert s.close_reason == "forced server close"

    def test_enqueue_ignored_while_closing(self) -> None:
        s = polling()
        s.enqueue(b"4a")
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        s.enqueue(b"4after")
        assert s.begin_get()
        # nothing after the close packet
        assert s.answer_get() == b"4a\x1e1"

    def test_close_polling_twice(self) -> None:
        s = polling()
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        s.close_polling(DisconnectReason.FORCED_CLOSE)
        assert s.close_reason == "forced server close"
        assert s.buffer == [(b"1", False)]
        assert s.begin_get()
        assert s.answer_get() == b"1"

    def test_close_polling_after_close_changes_nothing(self) -> None:
        s = polling()
        s.close(DisconnectReason.TRANSPORT_CLOSE)
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.ready_state is ReadyState.CLOSED
        assert not s.buffer
        assert s.close_reason == "transport close"

    def test_close(self) -> None:
        s = polling()
        s.enqueue(b"4dropped")
        assert s.close(DisconnectReason.TRANSPORT_CLOSE) is True
        assert s.ready_state is ReadyState.CLOSED
        assert s.close_reason == "transport close"
        assert not s.buffer

    def test_close_twice_keeps_first_reason(self) -> None:
        s = polling()
        assert s.close(DisconnectReason.PING_TIMEOUT) is True
        assert s.close(DisconnectReason.TRANSPORT_CLOSE) is False
        assert s.ready_state is ReadyState.CLOSED
        assert s.close_reason == "ping timeout"

    def test_close_while_closing_keeps_close_polling_reason(self) -> None:
        s = polling()
        s.close_polling(DisconnectReason.FORCED_SERVER_CLOSE)
        assert s.close(DisconnectReason.TRANSPORT_CLOSE) is True
        assert s.ready_state is ReadyState.CLOSED
        assert s.close_reason == "forced server close"
        assert s.close(DisconnectReason.PING_TIMEOUT) is False

    def test_enqueue_ignored_once_closed(self) -> None:
        s = polling()
        s.close(DisconnectReason.TRANSPORT_CLOSE)
        s.enqueue(b"4a")
        s.enqueue(BUF, binary=True)
        assert not s.buffer
        assert not s.take_frames()

    def test_parked_get_after_close_gets_close(self) -> None:
        s = polling()
        assert s.begin_get()
        assert s.close(DisconnectReason.TRANSPORT_CLOSE)
        assert s.answer_get() == b"1"
        assert s.get_waiting is False

    def test_parked_get_after_close_by_peer_gets_noop(self) -> None:
        # The client sent a close packet: its parked GET is answered with a noop
        # (Node's polling transport), not with a close back.
        s = polling()
        assert s.begin_get()
        s.enqueue(b"4dropped")
        assert s.close(DisconnectReason.TRANSPORT_CLOSE, by_peer=True)
        assert s.answer_get() == b"6"
        assert s.get_waiting is False
        assert s.answer_get() is None
        # A later close (already closed) does not change the answer.
        assert not s.close(DisconnectReason.TRANSPORT_CLOSE)
        assert s.farewell == b"6"

    def test_close_during_upgrade(self) -> None:
        s = polling()
        assert s.begin_get()
        s.begin_upgrade()
        s.enqueue(b"4a")
        assert s.close(DisconnectReason.TRANSPORT_CLOSE)
        assert not s.buffer
        # closed wins over the upgrade: the parked GET gets "close", not "noop"
        assert s.answer_get() == b"1"
        assert s.ready_state is ReadyState.CLOSED
        assert not s.can_upgrade()
