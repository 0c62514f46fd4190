"""A broadcast's frames written straight to each WebSocket's descriptor
(``socketwire.engine.fanout``, ``socketwire.server.socket.deliver_all``).

The direct write must change nothing but the cost: every byte reaches every
client, in order, whatever the kernel takes at once; nothing overtakes bytes a
transport still holds; a closing transport, a TLS connection or a polling one
is never written around. The first tests drive ``send_all`` (pure Python,
compiled with one ``send`` each, and compiled through io_uring where the kernel
offers it) on real TCP connections; the others run the built-in server with
real clients, both ways.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import platform
import select
import socket
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import socketwire
import socketwire.server.socket as socket_module
from socketwire.engine import fanout
from tests.certificates import self_signed

WAIT = 10.0

IMPLS: list[Any] = [pytest.param(fanout._send_all_python, id="python")]
# The compiled loop's ways to the kernel (set_uring): one send() each, or
# batches through io_uring, here for batches of any size.
MODES: list[Any] = []
try:
    from socketwire._fanout import send_all as compiled_send_all
    from socketwire._fanout import set_uring
    from socketwire._fanout import uring_state as ring_state
except ImportError:  # pragma: no cover - the accelerator is built in the test set-up
    pass
else:
    IMPLS.append(pytest.param(compiled_send_all, id="compiled"))
    MODES.append(pytest.param(0, id="send"))

SendAll = Callable[[list[Any], bytes], list[int]]
SocketPairs = Callable[[int], list[tuple[socket.socket, socket.socket]]]


class Idle:
    """A transport that is open and holds nothing."""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class Busy(Idle):
    """A transport that still holds a few bytes."""

    def get_write_buffer_size(self) -> int:
        return 5


class Direct:
    """A writer on a bare descriptor (a socketpair's end)."""

    def __init__(self, fd: int) -> None:
        self.direct = fd
        self.transport: Idle = Idle()


def through_the_ring(writers: list[Any], data: bytes) -> list[int]:
    """The compiled loop, through io_uring for a batch of any size where it opens."""
    set_uring(2)
    try:
        return compiled_send_all(writers, data)
    finally:
        set_uring(1)


def _ring_works() -> bool:
    """Whether io_uring can be opened here (Linux 6.1 on, not refused)."""
    if not MODES:  # pragma: no cover - the accelerator is built in the test set-up
        return False
    a, b = socket.socketpair()
    try:
        taken = through_the_ring([Direct(a.fileno())], b"x") == [] and b.recv(1) == b"x"
        return taken and ring_state() == "open"
    finally:
        a.close()
        b.close()


RING = _ring_works()


@pytest.fixture
def socketpairs() -> Iterator[SocketPairs]:
    """``socketpairs(n)``: n connected pairs, all closed after the test."""
    made: list[tuple[socket.socket, socket.socket]] = []

    def make(n: int) -> list[tuple[socket.socket, socket.socket]]:
        new = [socket.socketpair() for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for a, b in made:
        a.close()
        b.close()


if RING:
    MODES.append(pytest.param(2, id="io_uring"))
    IMPLS.append(pytest.param(through_the_ring, id="compiled-io_uring"))


class Writer:
    """What ``send_all`` reads of a WebSocket: its descriptor and transport."""

    def __init__(self, transport: asyncio.Transport, direct: int | None = None) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.direct = sock.fileno() if direct is None else direct


class Held:
    """A transport as seen while it still holds a few bytes."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return 5


class Pairs:
    """TCP connections on 127.0.0.1: the server side as asyncio transports."""

    def __init__(self) -> None:
        self.transports: list[asyncio.Transport] = []
        self.readers: list[asyncio.StreamReader] = []
        self.writers: list[asyncio.StreamWriter] = []
        self._accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()
        self._server: asyncio.AbstractServer | None = None

    async def open(self, count: int, rcvbuf: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        queue = self._accepted

        class Keep(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                queue.put_nowait(transport)  # type: ignore[arg-type]

        self._server = await loop.create_server(Keep, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        for _ in range(count):
            sock = socket.socket()
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
            self.readers.append(reader)
            self.writers.append(writer)
            self.transports.append(await asyncio.wait_for(queue.get(), WAIT))

    async def close(self) -> None:
        for t in self.transports:
            t.abort()
        for w in self.writers:
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def pairs() -> AsyncIterator[Pairs]:
    p = Pairs()
    yield p
    await p.close()


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), WAIT)


@pytest.mark.parametrize("send_all", IMPLS)
async def test_every_eligible_writer_takes_the_whole_frames(
    send_all: SendAll, pairs: Pairs
) -> None:
    await pairs.open(5)
    data = b"\x81\x05hello" * 30
    assert send_all([Writer(t) for t in pairs.transports], data) == []
    for reader in pairs.readers:
        assert await read_exactly(reader, len(data)) == data
    # Nothing went through the transports (nothing else to read).
    for t in pairs.transports:
        assert t.get_write_buffer_size() == 0


@pytest.mark.parametrize("send_all", IMPLS)
async def test_the_writers_it_may_not_write_are_returned_untouched(
    send_all: SendAll, pairs: Pairs
) -> None:
    await pairs.open(5)
    t = pairs.transports
    # Index 3: a transport that still holds bytes (its peer does not read): a
    # direct write would overtake them.
    big = os.urandom(1 << 23)
    t[3].write(big)
    assert t[3].get_write_buffer_size() > 0
    closing = Writer(t[4])
    t[4].close()
    # Index 6: room in the kernel, but the transport says it holds bytes.
    held = Writer(t[2])
    held.transport = Held(t[2])  # type: ignore[assignment]
    writers: list[Any] = [None, object(), Writer(t[1], direct=-1), Writer(t[3]), closing, held]
    writers.insert(2, Writer(t[0]))  # the one eligible writer, at index 2
    assert send_all(writers, b"frames") == [0, 0, 1, 0, 3, 0, 4, 0, 5, 0, 6, 0]
    assert await read_exactly(pairs.readers[0], 6) == b"frames"
    t[2].write(b"end")
    assert await read_exactly(pairs.readers[2], 3) == b"end"
    # The held bytes arrive whole and alone, nothing overtook them.
    t[3].write(b"after")
    assert await read_exactly(pairs.readers[3], len(big) + 5) == big + b"after"
    # The closing transport's peer sees the end, and nothing before it.
    assert await asyncio.wait_for(pairs.readers[4].read(), WAIT) == b""


@pytest.mark.parametrize("send_all", IMPLS)
async def test_a_full_kernel_buffer_takes_part_of_the_frames_or_none(
    send_all: SendAll, pairs: Pairs
) -> None:
    await pairs.open(1, rcvbuf=16384)
    transport = pairs.transports[0]
    sock = transport.get_extra_info("socket")
    fd = sock.fileno()
    os.close(os.dup(fd))  # (the descriptor is real)
    # Fill the kernel's buffers around the transport (its own stays empty).
    filled = 0
    chunk = b"f" * 65536
    while True:
        try:
            filled += os.write(fd, chunk)
        except BlockingIOError:
            break
    writer = Writer(transport)
    data = os.urandom(1 << 22)
    assert send_all([writer], data) == [0, 0]  # nothing taken
    # The peer reads some: room again, but less than the frames need.
    reader = pairs.readers[0]
    taken = b""
    for _ in range(200):
        taken += await asyncio.wait_for(reader.read(65536), WAIT)
        _, ready, _ = await asyncio.to_thread(select.select, [], [fd], [], 0.2)
        if ready:
            break
    else:  # pragma: no cover - the kernel always makes room once the peer reads
        pytest.fail("the socket never became writable")
    rest = send_all([writer], data)
    assert len(rest) == 2 and rest[0] == 0
    sent = rest[1]
    assert 0 < sent < len(data)
    # What the kernel took is exactly the start of the frames, after the filler.
    expected = b"f" * filled + data[:sent]
    assert taken + await read_exactly(reader, len(expected) - len(taken)) == expected


@pytest.mark.parametrize("send_all", IMPLS)
async def test_a_broken_connection_is_left_to_the_transport(
    send_all: SendAll, pairs: Pairs
) -> None:
    await pairs.open(1)
    writer = Writer(pairs.transports[0])
    # The peer resets the connection (RST): the next writes fail.
    client = pairs.writers[0].get_extra_info("socket")
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    pairs.writers[0].transport.abort()
    await asyncio.wait_for(pairs.writers[0].wait_closed(), WAIT)
    for _ in range(3):
        # EPIPE / ECONNRESET, or the transport already saw the end: not written,
        # and no error raised here.
        assert send_all([writer], b"x" * 1000) == [0, 0]


def _kernel_opens_rings() -> bool:
    """Whether this process may open an io_uring at all (asked of the kernel
    directly: a container's seccomp profile or ``io_uring_disabled`` refuse it)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return False  # pragma: no cover
    release = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    if release < (6, 1):
        return False  # pragma: no cover
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, 8, params)  # io_uring_setup, the same number on both
    if fd < 0:
        return False  # pragma: no cover
    os.close(fd)
    return True


def test_the_ring_is_used_where_the_kernel_offers_it() -> None:
    if not MODES:  # pragma: no cover - the accelerator is built in the test set-up
        pytest.skip("not compiled")
    if not _kernel_opens_rings():
        pytest.skip("this process may not open an io_uring here")  # pragma: no cover
    assert RING, ring_state()
    assert ring_state() == "open"


def test_the_engine_reports_the_state_of_the_loop_it_uses() -> None:
    expected = ring_state() if fanout.COMPILED else "unsupported"
    assert fanout.uring_state() == expected


@pytest.mark.skipif(not RING, reason="no io_uring here")
def test_batches_larger_than_the_ring_keep_each_writer_s_result_in_place(
    socketpairs: SocketPairs,
) -> None:
    pairs = socketpairs(600)
    writers: list[Any] = [Direct(a.fileno()) for a, _ in pairs]
    # Full kernel buffers at 100 and 450 (not read by their peers), a writer
    # without a descriptor at 300, one that holds bytes at 599.
    for k in (100, 450):
        pairs[k][0].setblocking(False)
        with pytest.raises(BlockingIOError):
            while True:
                pairs[k][0].send(b"f" * 65536)
    writers[300] = object()
    held = Direct(pairs[599][0].fileno())
    held.transport = Busy()
    writers[599] = held
    # 596 sends, in batches of at most 256.
    assert through_the_ring(writers, b"frames") == [100, 0, 300, 0, 450, 0, 599, 0]
    for k, (_, b) in enumerate(pairs):
        if k not in (100, 300, 450, 599):
            assert b.recv(16) == b"frames", k
    # The ring serves the next broadcast as well.
    assert compiled_send_all(writers[:5], b"next") == []
    assert [pairs[k][1].recv(16) for k in range(5)] == [b"next"] * 5


@pytest.mark.skipif(not RING, reason="no io_uring here")
def test_a_forked_child_opens_its_own_ring_and_leaves_the_parent_s_alone(
    socketpairs: SocketPairs,
) -> None:
    pairs = socketpairs(20)
    writers: list[Any] = [Direct(a.fileno()) for a, _ in pairs]
    assert through_the_ring(writers, b"1") == []
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            ok = through_the_ring(writers, b"2") == [] and ring_state() == "open"
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert through_the_ring(writers, b"3") == []
    for _, b in pairs:
        assert b.recv(16) == b"123"


@pytest.mark.skipif(not MODES, reason="not compiled")
def test_the_ring_can_be_turned_off(socketpairs: SocketPairs) -> None:
    [(a, b)] = socketpairs(1)
    try:
        set_uring(0)
        assert ring_state() == "off"
        assert compiled_send_all([Direct(a.fileno())], b"plain") == []
        assert b.recv(16) == b"plain"
        with pytest.raises(ValueError, match=r"0 \(off\), 1 \(on\) or 2"):
            set_uring(3)
    finally:
        set_uring(1)
    assert ring_state() != "off"


# -- the built-in server --------------------------------------------------------------------


class RawClient:
    """A WebSocket client on a plain socket: the server's frames as they arrive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, rcvbuf: int | None = None) -> RawClient:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        assert (await client.frame()).startswith(b"0{")
        # CONNECT to "/", masked with a zero key.
        writer.write(b"\x81\x82\x00\x00\x00\x0040")
        assert (await client.frame()).startswith(b'40{"sid"')
        return client

    async def frame(self) -> bytes:
        head = await read_exactly(self.reader, 2)
        assert head[0] == 0x81 and not head[1] & 0x80, head
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await read_exactly(self.reader, 2), "big")
        elif n == 127:
            n = int.from_bytes(await read_exactly(self.reader, 8), "big")
        return await read_exactly(self.reader, n)

    def close(self) -> None:
        self.writer.close()


def tick(payload: bytes) -> tuple[int, str]:
    assert payload.startswith(b'42["tick",'), payload[:40]
    data = json.loads(payload[2:])[1]
    return data["i"], data["d"]


@pytest.fixture(params=MODES or [None])
def write_mode(request: pytest.FixtureRequest) -> Iterator[int | None]:
    """The server tests run with each of the compiled loop's ways to the kernel."""
    mode = request.param
    if mode is not None:
        set_uring(mode)
    yield mode
    if mode is not None:
        set_uring(1)
        if mode == 2:
            assert ring_state() == "open"


@pytest.fixture
async def server(write_mode: int | None) -> AsyncIterator[tuple[socketwire.Server, int]]:
    sio = socketwire.Server(ping_interval=300, ping_timeout=200, write_buffer_limit=1 << 25)
    port = await sio.listen(0, "127.0.0.1")
    yield sio, port
    await sio.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[int]]]:
    """Every ``send_all`` of the server: how many writers, and what it returned."""
    seen: list[tuple[int, list[int]]] = []
    real = fanout.send_all

    def spy(writers: list[Any], data: bytes) -> list[int]:
        rest = real(writers, data)
        seen.append((len(writers), list(rest)))
        return rest

    monkeypatch.setattr(socket_module, "send_all", spy)
    return seen


async def test_a_broadcast_reaches_every_client_through_the_fanout(
    server: tuple[socketwire.Server, int], calls: list[tuple[int, list[int]]]
) -> None:
    sio, port = server
    clients = [await RawClient.connect(port) for _ in range(6)]
    try:
        for i in range(3):
            sio.emit("tick", {"i": i, "d": "x" * 50})
        for c in clients:
            assert [tick(await c.frame()) for _ in range(3)] == [(i, "x" * 50) for i in range(3)]
        # The first broadcast looks each descriptor up (the general way); the
        # next ones are written directly: the fan-out returned none of the six.
        assert calls == [(6, [x for i in range(6) for x in (i, 0)]), (6, []), (6, [])]
    finally:
        for c in clients:
            c.close()


async def test_a_slow_client_gets_every_frame_whole_and_in_order(
    server: tuple[socketwire.Server, int], calls: list[tuple[int, list[int]]]
) -> None:
    sio, port = server
    slow = await RawClient.connect(port, rcvbuf=4096)
    others = [await RawClient.connect(port) for _ in range(4)]
    count, size = 120, 30_000
    try:
        received: list[list[tuple[int, str]]] = [[] for _ in others]

        async def read_all(k: int) -> None:
            for _ in range(count):
                received[k].append(tick(await others[k].frame()))

        readers = [asyncio.create_task(read_all(k)) for k in range(len(others))]
        for i in range(count):
            sio.emit("tick", {"i": i, "d": chr(ord("a") + i % 26) * size})
            await asyncio.sleep(0)  # as the rig's handler: a loop turn between emits
        await asyncio.wait_for(asyncio.gather(*readers), WAIT)
        expected = [(i, chr(ord("a") + i % 26) * size) for i in range(count)]
        assert received == [expected] * len(others)
        # The slow client's kernel buffer cut a frame short at least once: the
        # rest followed through its transport, before the next frames.
        assert any(sent > 0 for _, rest in calls for sent in rest[1::2])
        assert [tick(await slow.frame()) for _ in range(count)] == expected
    finally:
        slow.close()
        for c in others:
            c.close()


async def test_tls_connections_are_never_written_around(
    tmp_path: Path, calls: list[tuple[int, list[int]]]
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sio = socketwire.Server(ping_interval=300, ping_timeout=200)
    port = await sio.listen(0, "127.0.0.1", ssl=context)
    trust = ssl.create_default_context(cafile=str(cert))
    clients: list[socketwire.client.Client] = []
    got: list[asyncio.Queue[Any]] = []
    try:
        for _ in range(5):
            c = socketwire.client.Client(
                f"https://127.0.0.1:{port}", transports=["websocket"], ssl=trust,
                reconnection=False, force_new=True,
            )  # fmt: skip
            queue: asyncio.Queue[Any] = asyncio.Queue()
            c.on("tick", queue.put_nowait)
            await asyncio.wait_for(c.connect(), WAIT)
            clients.append(c)
            got.append(queue)
        for i in range(2):
            sio.emit("tick", {"i": i})
            for queue in got:
                assert await asyncio.wait_for(queue.get(), WAIT) == {"i": i}
        for engine in sio.engine.clients.values():
            assert engine.writer is not None and engine.writer.direct == -1  # type: ignore[attr-defined]
        # Looked up at the first broadcast, and never written around.
        assert calls == [(5, [0, 0, 1, 0, 2, 0, 3, 0, 4, 0])] * 2
    finally:
        for c in clients:
            await c.disconnect()
        await sio.close()
