"""``Server.run()`` in a process of its own: what it prints, and how it fails.

A script that calls ``sio.run()`` with no logging configured still says where
it listens and how it runs; a busy port ends the process with one line and
exit status 1, not a traceback.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys

from tests.waits import WAIT


async def test_run_announces_itself_without_logging_configured() -> None:
    code = "import socketwire\nsocketwire.Server().run(0, '127.0.0.1', use_uvloop=False)\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        lines: list[str] = []
        while not any("socketwire running on" in line for line in lines):
            raw = await asyncio.wait_for(proc.stderr.readline(), WAIT)
            assert raw, f"the server exited before announcing itself: {lines}"
            lines.append(raw.decode())
        assert re.fullmatch(r"INFO: listening on 127\.0\.0\.1:\d+/socket\.io/\n", lines[0])
        port = lines[0].split(":")[2].split("/")[0]
        assert re.fullmatch(
            rf"INFO: socketwire running on http://127\.0\.0\.1:{port}/socket\.io/ "
            r"\(asyncio, (compiled speedups|pure-Python speedups fallback); "
            r"press Ctrl-C to stop\)\n",
            lines[1],
        )
        # It answers there.
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), WAIT)).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), WAIT)


async def test_run_on_a_busy_port_exits_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = (
            f"import socketwire\nsocketwire.Server().run({port}, '127.0.0.1', use_uvloop=False)\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 1
    assert err.decode() == (
        f"error: cannot listen on 127.0.0.1:{port}: the address is already in use (another "
        "server runs there; stop it or choose another port, port=0 picks a free one)\n"
    )
