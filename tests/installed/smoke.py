"""Smoke test of the package as users get it, run by ``scripts/wheel-smoke``.

It runs inside a virtualenv outside the source tree, where only the built wheel
(and the runtime dependencies of ``requirements/runtime.txt``) are installed,
with ``python -I`` so that nothing from the working directory or the
environment's ``PYTHON*`` variables can stand in for the installed package.
Checks: the import comes from site-packages with the version of pyproject.toml,
the compiled accelerator or its fallback loads, a server starts, the
package's own client makes an acknowledged round trip over WebSocket and over
polling, and ``GET /socket.io/socket.io.js`` gets what an installed package
serves there.

Usage: ``python -I smoke.py EXPECTED_VERSION``; exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import sysconfig
from pathlib import Path

import socketwire
import socketwire.client

WAIT = 10.0


class Captured(logging.Handler):
    """Keeps every log record of the server, to check what it says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_installation(expected_version: str) -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(socketwire.__file__).resolve()
    assert site in where.parents, f"socketwire imported from {where}, not from {site}"
    assert socketwire.__version__ == expected_version, (
        f"socketwire.__version__ is {socketwire.__version__!r}, pyproject.toml says "
        f"{expected_version!r}"
    )
    package = where.parent
    for name in ("py.typed", "_speedups.pyi"):
        assert (package / name).is_file(), f"{name} is missing from the installed package"
    from socketwire.core.websocket import frames

    # The wheel built by the set-up carries the compiled accelerator (a C
    # compiler is there); the masking must agree with the pure-Python XOR.
    assert frames.SPEEDUPS, "socketwire._speedups is missing from the wheel"
    mask = b"\x01\x02\x03\x04"
    assert frames.apply_mask(frames.apply_mask(b"hello world", mask), mask) == b"hello world"


async def round_trip(url: str, transport: str) -> None:
    client = await asyncio.wait_for(
        socketwire.client.connect(url, transports=[transport], reconnection=False), WAIT
    )
    try:
        assert client.transport == transport, client.transport
        answer = await client.emit_with_ack("echo", {"n": 1}, b"\x00\xff", timeout=WAIT)
        assert answer == ({"n": 1}, b"\x00\xff"), answer
    finally:
        await client.disconnect()


async def http_get(port: int, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


async def main(expected_version: str) -> None:
    check_installation(expected_version)
    captured = Captured()
    logging.getLogger("socketwire").addHandler(captured)
    logging.getLogger("socketwire").setLevel(logging.INFO)

    sio = socketwire.Server()

    @sio.on("echo")
    def echo(socket: socketwire.Socket, *args: object) -> tuple[object, ...]:
        return args

    port = await sio.listen(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        await round_trip(url, "websocket")
        await round_trip(url, "polling")

        # The browser client is not in the package yet: the installed server
        # answers 404 and says why, once, in one log line.
        for _ in range(2):
            status, body = await http_get(port, "/socket.io/socket.io.js")
            assert status == 404, status
            assert b"not installed" in body, body
        said = [r.getMessage() for r in captured.records if "socket.io.js" in r.getMessage()]
        assert len(said) == 1, said
        assert "\n" not in said[0] and "SOCKETWIRE_CLIENT_DIST" in said[0], said[0]
    finally:
        await sio.close()
    print(f"smoke: socketwire {socketwire.__version__} from {Path(socketwire.__file__).parent}: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
