"""A server whose soft descriptor limit is low, for the accept-failure test.

Run with the venv's python; prints the bound port on stdout, logs to stderr, and
serves until killed. ``argv[1]`` is how many descriptors it may open beyond those
open at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

import socketwire
from socketwire.engine.process import AcceptErrorLogger


async def main(spare: int) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    AcceptErrorLogger().install(asyncio.get_running_loop())
    sio = socketwire.Server()
    port = await sio.listen(0, "127.0.0.1")
    in_use = len(os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + spare, hard))
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
