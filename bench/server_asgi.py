"""socketwire served as an ASGI app, for the shared benchmark rig (../shared/bench).

Usage: python bench/server_asgi.py PORT [--server uvicorn|granian] [--ws IMPL]

The handlers are bench/server.py's (``create_server``), wrapped in
``socketwire.asgi.ASGIApp`` and served on 127.0.0.1:PORT by uvicorn (uvloop,
httptools; ``--ws`` picks its WebSocket implementation, default
``websockets-sansio``) or by granian (one worker, uvloop). The ASGI servers'
own WebSocket keepalive pings are pushed out like the Engine.IO ping, so that
they stay out of the measurements.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from server import create_server  # noqa: E402  (bench/server.py)
from socketwire.asgi import ASGIApp  # noqa: E402


def create_app() -> ASGIApp:
    """The rig's handlers as an ASGI app (granian's ``--factory`` target too)."""
    logging.getLogger("socketwire").setLevel(logging.WARNING)
    return ASGIApp(create_server())


def serve_uvicorn(port: int, ws: str) -> None:
    import uvicorn

    print(
        f"socketwire ASGI on uvicorn {uvicorn.__version__} ws={ws} loop=uvloop on 127.0.0.1:{port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws=ws,
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws_ping_interval=300.0,
        ws_ping_timeout=200.0,
        ws_per_message_deflate=False,
    )


def serve_granian(port: int) -> None:
    from granian import Granian, __version__
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    print(
        f"socketwire ASGI on granian {__version__} loop=uvloop on 127.0.0.1:{port}",
        file=sys.stderr,
        flush=True,
    )
    Granian(
        "server_asgi:create_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        factory=True,
        working_dir=HERE,
        log_level=LogLevels.warning,
    ).serve()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    ap.add_argument("--ws", default="websockets-sansio", help="uvicorn's WebSocket implementation")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.server == "granian":
        serve_granian(args.port)
    else:
        serve_uvicorn(args.port, args.ws)


if __name__ == "__main__":
    main()
