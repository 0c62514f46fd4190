"""Mistakes caught when they are made: handler signatures, options, durations.

Each error carried from python-socketio or Node habits is refused at
registration (or construction) with a message naming the socketwire way; the
messages are part of the contract, so they are asserted word for word.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import socketwire
from socketwire.durations import SecondsWarning
from socketwire.server.server import AddressInUse
from socketwire.signatures import arity, check_call

CATCH_ALL = (
    '"*" is an ordinary event name in socketwire, not a catch-all: use socket.on_any(fn) '
    "in a connection handler, fn(event, *args) then sees every event of that socket"
)


def test_python_socketio_connect_signature_is_refused() -> None:
    sio = socketwire.Server()

    def connect(sid: str, environ: dict[str, Any], auth: Any) -> None: ...

    with pytest.raises(TypeError) as info:
        sio.on("connect", connect)
    assert str(info.value) == (
        "test_python_socketio_connect_signature_is_refused.<locals>.connect"
        "(sid: 'str', environ: 'dict[str, Any]', auth: 'Any') -> 'None' cannot be the "
        '"connect" handler of namespace "/": it is called as fn(socket). socketwire passes '
        "the Socket alone: socket.id is its id, socket.handshake holds the headers, query "
        "and auth (python-socketio's (sid, environ, auth) does not apply); raise "
        "socketwire.ConnectionRefused(message, data) to refuse"
    )
    # Nothing was registered.
    assert sio.sockets.listeners("connect") == []


def test_connection_handler_with_a_default_for_extra_parameters_is_accepted() -> None:
    sio = socketwire.Server()

    def connect(socket: socketwire.Socket, environ: Any = None) -> None: ...

    sio.on("connection", connect)
    assert sio.sockets.listeners("connection") == [connect]


def test_event_handler_must_take_the_socket() -> None:
    sio = socketwire.Server()

    def ping() -> str:
        return "pong"

    with pytest.raises(TypeError) as info:
        sio.on("ping", ping)
    assert str(info.value) == (
        "test_event_handler_must_take_the_socket.<locals>.ping() -> 'str' cannot be the "
        '"ping" handler of namespace "/": it is called as fn(socket, *args). its first '
        "argument is the Socket that sent the event"
    )


def test_event_handler_with_a_required_keyword_only_parameter_is_refused() -> None:
    sio = socketwire.Server()

    def chat(socket: socketwire.Socket, *, room: str) -> None: ...

    with pytest.raises(TypeError, match="keyword-only parameter room would never be given"):
        sio.on("chat", chat)
    # ``ack`` is the one keyword a handler may require: it is always given.

    def answer(socket: socketwire.Socket, data: Any, *, ack: Any) -> None: ...

    sio.on("answer", answer)


def test_catch_all_event_name_is_refused_everywhere() -> None:
    sio = socketwire.Server()
    with pytest.raises(ValueError) as info:
        sio.on("*", lambda socket, event, *args: None)
    assert str(info.value) == CATCH_ALL
    with pytest.raises(ValueError, match="not a catch-all"):
        sio.of("/chat").once("*", lambda socket, *args: None)
    client = socketwire.Client()
    with pytest.raises(ValueError) as info:
        client.on("*", lambda *args: None)
    assert str(info.value) == (
        '"*" is an ordinary event name in socketwire, not a catch-all: use '
        "client.on_any(fn), fn(event, *args) then sees every event"
    )


def test_node_style_middleware_is_refused() -> None:
    sio = socketwire.Server()

    def auth(socket: socketwire.Socket, next: Any) -> None:
        next()

    with pytest.raises(TypeError) as info:
        sio.use(auth)
    assert str(info.value) == (
        "test_node_style_middleware_is_refused.<locals>.auth(socket: 'socketwire.Socket', "
        "next: 'Any') -> 'None' cannot be the middleware of namespace \"/\": it is called "
        "as fn(socket). a middleware gets the Socket alone, without Node's next: return (or "
        "finish the coroutine) to accept, raise socketwire.ConnectionRefused(message, data) "
        "to refuse"
    )


def test_disconnect_handlers_may_leave_out_the_reason() -> None:
    sio = socketwire.Server()

    def old_style(socket: socketwire.Socket) -> None: ...

    def new_style(socket: socketwire.Socket, reason: str) -> None: ...

    sio.on("disconnect", old_style)
    sio.on("disconnect", new_style)
    # ``listeners`` and ``off`` see the handlers as registered, not their wrappers.
    assert sio.sockets.listeners("disconnect") == [old_style, new_style]
    sio.off("disconnect", old_style)
    assert sio.sockets.listeners("disconnect") == [new_style]

    def too_many(socket: socketwire.Socket, reason: str, details: Any) -> None: ...

    with pytest.raises(TypeError, match=r"it is called as fn\(socket, reason\)"):
        sio.on("disconnect", too_many)


def test_event_decorator_names_the_event_after_the_function() -> None:
    sio = socketwire.Server()

    @sio.event
    def chat_message(socket: socketwire.Socket, text: str) -> None: ...

    @sio.event(namespace="/admin")
    def connect(socket: socketwire.Socket) -> None: ...

    assert sio.sockets.listeners("chat_message") == [chat_message]
    assert sio.of("/admin").listeners("connect") == [connect]

    def python_socketio_style() -> None:
        @sio.event
        def connect(sid: str, environ: Any) -> None: ...

    with pytest.raises(TypeError, match='cannot be the "connect" handler'):
        python_socketio_style()


def test_unknown_options_name_the_nearest_one() -> None:
    camel: dict[str, Any] = {"pingInterval": 25}
    with pytest.raises(TypeError) as info:
        socketwire.Server(**camel)
    assert str(info.value) == (
        "Server() got an unknown option 'pingInterval' (did you mean ping_interval?)"
    )
    typo: dict[str, Any] = {"max_http_bufer_size": 10}
    with pytest.raises(TypeError) as info:
        socketwire.EngineServer(**typo)
    assert str(info.value) == (
        "EngineServer() got an unknown option 'max_http_bufer_size' "
        "(did you mean max_http_buffer_size?)"
    )
    recovery: dict[str, Any] = {"maxDisconnectionDuration": 60}
    with pytest.raises(TypeError, match=r"did you mean max_disconnection_duration\?"):
        socketwire.Server(connection_state_recovery=recovery)  # type: ignore[arg-type]
    nothing_close: dict[str, Any] = {"zzz": 1}
    with pytest.raises(TypeError, match=r"unknown option 'zzz'; options: adapter, "):
        socketwire.Server(**nothing_close)


def test_durations_over_an_hour_warn_that_they_are_seconds() -> None:
    with pytest.warns(SecondsWarning) as record:
        socketwire.Server(ping_interval=25000)
    assert str(record[0].message) == (
        "ping_interval=25000 waits 6 h 56 min: socketwire counts seconds, not milliseconds "
        "as Node does (did you mean ping_interval=25?)"
    )
    # The warning points at the caller's line, not into socketwire.
    assert record[0].filename == __file__
    sio = socketwire.Server()
    with pytest.warns(SecondsWarning) as record:
        sio.timeout(5000)
    assert str(record[0].message) == (
        "timeout(5000) waits 1 h 23 min: socketwire counts seconds, not milliseconds as "
        "Node does (did you mean timeout(5)?)"
    )
    with pytest.warns(SecondsWarning, match=r"did you mean ack_timeout=10\?"):
        socketwire.Client(ack_timeout=10000)
    with pytest.warns(SecondsWarning, match=r"did you mean connect_timeout=45\?"):
        socketwire.Server(connect_timeout=45000)
    # An hour or less is left alone.
    sio.timeout(3600)


async def test_run_inside_a_running_loop_points_to_listen() -> None:
    sio = socketwire.Server()
    with pytest.raises(RuntimeError) as info:
        sio.run(3000)
    assert str(info.value) == (
        "Server.run() starts and owns an event loop, and one is already running here: "
        "use `await sio.listen(3000)` inside it instead"
    )
    assert asyncio.get_running_loop().is_running()


async def test_listen_on_a_busy_port_says_so() -> None:
    first = socketwire.Server()
    port = await first.listen(0, "127.0.0.1")
    second = socketwire.Server()
    try:
        with pytest.raises(AddressInUse) as info:
            await second.listen(port, "127.0.0.1")
        assert str(info.value) == (
            f"cannot listen on 127.0.0.1:{port}: the address is already in use (another "
            "server runs there; stop it or choose another port, port=0 picks a free one)"
        )
        assert isinstance(info.value, OSError)
    finally:
        await first.close()
        await second.close()


def test_arity_of_callables() -> None:
    def f(a: int, b: int = 0, *args: int, c: int, d: int = 1) -> None: ...

    a = arity(f)
    assert a is not None and (a.required, a.most, a.keyword_only) == (1, None, ("c",))

    class Recorder:
        def __call__(self, socket: Any, data: Any) -> None: ...

    # Callable objects are read through ``__call__``; the largest fitting count is returned.
    assert check_call(Recorder(), "handler", "fn(socket, *args)", range(1, 4)) == 2
