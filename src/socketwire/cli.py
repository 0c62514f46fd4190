"""The command line: ``socketwire MODULE:ATTR`` and ``python -m socketwire`` (layer 3).

Serves a ``socketwire.Server`` with the built-in HTTP/1.1 + WebSocket server, as
uvicorn serves an ASGI app, with uvicorn's option names where they mean the same
thing: where to listen (``--host``/``--port``, ``--uds``, ``--fd``), TLS, proxy
headers, the server's time limits, an ASGI app on the same port (``--app``),
and a graceful shutdown on SIGINT/SIGTERM. ``--reload`` restarts the server when
a ``.py`` file changes (``socketwire.reload``). A target that cannot be loaded is
reported in one line, with what to do, and exit status 1 (2 for a malformed
command line).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from socketwire.errors import StartupFailed
from socketwire.serve.connection import HTTP_BODY_TIMEOUT, HTTP_HEAD_TIMEOUT, KEEP_ALIVE_TIMEOUT
from socketwire.serve.proxy import DEFAULT_FORWARDED_ALLOW_IPS
from socketwire.server.server import GRACEFUL_SHUTDOWN_TIMEOUT, Server

__all__ = [
    "LoadError",
    "build_parser",
    "describe_address",
    "load_asgi_app",
    "load_server",
    "main",
    "ssl_context",
]

log = logging.getLogger("socketwire.cli")

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,  # uvicorn's extra level; the same as debug here
}

# Exit statuses: a target that cannot be loaded, a malformed command line (as
# argparse), an ASGI app whose lifespan startup failed (as uvicorn).
EXIT_LOAD = 1
EXIT_USAGE = 2
EXIT_STARTUP = 3

DESCRIPTION = """\
Serve a socketwire.Server with the built-in HTTP/1.1 + WebSocket server.

TARGET is MODULE:ATTR, the module's import path and the name of a
socketwire.Server in it (e.g. chat.main:sio), or with --factory a function
that returns one. SIGINT or SIGTERM stops gracefully: the server stops
accepting, the handlers in flight send their acknowledgements, clients are told
to reconnect ("server shutting down"), the ASGI app's lifespan shutdown runs.
"""

EPILOG = """\
examples:
  socketwire chat:sio --port 3000
  socketwire chat:sio --app web:app          # a FastAPI/Starlette app on the same port
  socketwire chat:sio --uds /run/chat.sock --proxy-headers
  socketwire chat:create_server --factory --reload

  socketwire chat:sio --workers 4           # 4 processes, one port, no sticky sessions
"""


class LoadError(Exception):
    """A target that cannot be loaded; the message says what to do."""

    def __init__(self, message: str, status: int = EXIT_LOAD) -> None:
        super().__init__(message)
        self.status = status


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines and shows the defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, "", argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``socketwire``'s command line."""
    parser = argparse.ArgumentParser(
        prog="socketwire",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.add_argument("target", metavar="TARGET", help="MODULE:ATTR of a socketwire.Server")
    parser.add_argument("--version", action="version", version=f"socketwire {_version()}")

    where = parser.add_argument_group("where to listen")
    where.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all IPv4)")
    where.add_argument("--port", type=int, default=8000, help="port to bind (0: any free port)")
    where.add_argument("--uds", metavar="PATH", help="bind this Unix socket instead")
    where.add_argument("--fd", type=int, help="serve the bound socket of this file descriptor")
    where.add_argument(
        "--backlog", type=int, metavar="N", default=4096, help="pending connections queued"
    )

    app = parser.add_argument_group("application")
    app.add_argument(
        "--factory", action="store_true", help="TARGET is a function that returns the Server"
    )
    app.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="an ASGI 3 app served on the same port for every path outside the Server's",
    )
    app.add_argument(
        "--root-path",
        default="",
        metavar="PATH",
        help="sub-path the ASGI app is mounted at (ASGI root_path)",
    )
    app.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory put first on sys.path to import the targets",
    )
    app.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop: auto takes uvloop when it is installed",
    )

    workers = parser.add_argument_group("workers")
    workers.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes on one port, as one Socket.IO cluster with no "
        "Redis and no sticky sessions; SIGHUP replaces them one at a time",
    )
    # A worker's own options, set by the supervisor (socketwire.workers).
    workers.add_argument("--worker-id", type=int, help=argparse.SUPPRESS)
    workers.add_argument("--worker-channel", type=int, help=argparse.SUPPRESS)
    workers.add_argument("--worker-dir", help=argparse.SUPPRESS)

    nodes = parser.add_argument_group(
        "nodes (several servers on one Redis behind a load balancer, no sticky sessions)"
    )
    nodes.add_argument(
        "--session-routing",
        metavar="REDIS_URL",
        help="route the sessions of the cluster's other nodes through this Redis "
        "(socketwire.nodes.RedisSessionRouter), unless the app sets session_routing",
    )
    nodes.add_argument(
        "--routing-key",
        metavar="KEY",
        default="socket.io",
        help="the Redis adapter's key, under which the nodes are announced",
    )
    nodes.add_argument(
        "--node-id", metavar="ID", help="this node's id (default: random at each start)"
    )
    nodes.add_argument(
        "--advertise-url",
        metavar="URL",
        help="where the other nodes reach this one, http://HOST:PORT (default: the bound address)",
    )

    dev = parser.add_argument_group("development")
    dev.add_argument(
        "--reload", action="store_true", help="restart when a .py file changes (not for production)"
    )
    dev.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="directory watched by --reload (repeatable; default: the current directory)",
    )
    dev.add_argument(
        "--reload-delay",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="seconds between two looks for changes",
    )

    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-level", choices=tuple(LOG_LEVELS), default="info", help="log level")

    tls = parser.add_argument_group("TLS (HTTPS and WSS)")
    tls.add_argument("--ssl-certfile", metavar="FILE", help="certificate chain (PEM)")
    tls.add_argument("--ssl-keyfile", metavar="FILE", help="private key (PEM)")
    tls.add_argument("--ssl-keyfile-password", metavar="PASSWORD", help="the key's password")

    proxy = parser.add_argument_group("behind a reverse proxy")
    proxy.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="take the client's address and scheme from X-Forwarded-For and "
        "X-Forwarded-Proto, sent by the peers of --forwarded-allow-ips (default: off)",
    )
    proxy.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        default=os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS),
        help="comma-separated addresses or networks of trusted proxies, or '*' "
        f"(default: $FORWARDED_ALLOW_IPS, else {DEFAULT_FORWARDED_ALLOW_IPS})",
    )

    limits = parser.add_argument_group("time limits (seconds)")
    limits.add_argument(
        "--http-head-timeout",
        type=float,
        metavar="SECONDS",
        default=HTTP_HEAD_TIMEOUT,
        help="wait for a request head, then 408",
    )
    limits.add_argument(
        "--http-body-timeout",
        type=float,
        metavar="SECONDS",
        default=HTTP_BODY_TIMEOUT,
        help="wait for a request body, then 408",
    )
    limits.add_argument(
        "--keep-alive-timeout",
        type=float,
        metavar="SECONDS",
        default=KEEP_ALIVE_TIMEOUT,
        help="close an idle keep-alive connection",
    )
    limits.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        metavar="SECONDS",
        default=GRACEFUL_SHUTDOWN_TIMEOUT,
        help="exit at most this long after SIGINT/SIGTERM",
    )
    return parser


def _version() -> str:
    import socketwire

    return socketwire.__version__


# -- loading the targets ---------------------------------------------------------------------


def _import_target(target: str, what: str) -> Any:
    """The object named by ``MODULE:ATTR`` (``ATTR`` may be dotted)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError(
            f"{what} must be MODULE:ATTR, like chat.main:sio (got {target!r})", EXIT_USAGE
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise LoadError(
                f"cannot import module {module_name!r} ({exc}): run from the directory "
                "that holds it, or name that directory with --app-dir"
            ) from None
        raise  # the module itself imports something missing: its traceback says what
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(
                f"module {module_name!r} has no attribute {attr!r}: name the object "
                f"after the colon, as in {module_name}:sio"
            ) from None
    return obj


def load_server(target: str, factory: bool = False) -> Server:
    """The ``Server`` named by ``target`` (``MODULE:ATTR``); with ``factory``,
    what calling it returns. Raises ``LoadError``."""
    obj = _import_target(target, "TARGET")
    if factory:
        if not callable(obj):
            raise LoadError(f"{target} is not callable, so --factory cannot call it")
        obj = obj()
    if isinstance(obj, Server):
        return obj
    kind = type(obj).__name__
    hint = (
        "; it is callable: if it returns the Server, add --factory"
        if callable(obj) and not factory
        else ""
    )
    if not factory and _looks_like_asgi(obj):
        hint = "; for an ASGI app, pass the Server as TARGET and the app with --app"
    source = f"{target}()" if factory else target
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise LoadError(f"{source} is {article} {kind}, not a socketwire.Server{hint}")


def _looks_like_asgi(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, type) and hasattr(obj, "router")


def load_asgi_app(target: str) -> Any:
    """The ASGI application named by ``target``. Raises ``LoadError``."""
    app = _import_target(target, "--app")
    if not callable(app):
        raise LoadError(f"--app {target} is a {type(app).__name__}, not an ASGI application")
    return app


# -- running -------------------------------------------------------------------------------


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of ``--ssl-certfile``/``--ssl-keyfile``, or None. Raises ``LoadError``."""
    if not args.ssl_certfile and not args.ssl_keyfile:
        return None
    if not args.ssl_certfile:
        raise LoadError("--ssl-keyfile needs --ssl-certfile", EXIT_USAGE)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile, args.ssl_keyfile_password)
    except (OSError, ssl.SSLError) as exc:
        raise LoadError(f"cannot load the TLS certificate or key: {exc}") from None
    return context


def _listen_options(args: argparse.Namespace, context: ssl.SSLContext | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "http_head_timeout": args.http_head_timeout,
        "http_body_timeout": args.http_body_timeout,
        "keep_alive_timeout": args.keep_alive_timeout,
        "backlog": args.backlog,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "root_path": args.root_path,
    }
    if context is not None:
        options["ssl"] = context
    if args.fd is not None:
        options["sock"] = socket.socket(fileno=args.fd)
    elif args.uds:
        options["uds"] = args.uds
    return options


def describe_address(name: Any, secure: bool) -> str:
    """A socket's name as a URL (``http://127.0.0.1:8000``, ``unix:/run/x.sock``)."""
    scheme = "https" if secure else "http"
    if not isinstance(name, tuple):
        return f"unix:{name}"
    host, port = name[0], name[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _route_sessions(sio: Server, args: argparse.Namespace) -> None:
    """Apply ``--session-routing``, ``--node-id`` and ``--advertise-url``."""
    if not (args.session_routing or args.node_id or args.advertise_url):
        return
    from socketwire.nodes import NodeAddress, RedisSessionRouter, valid_node_id

    if args.node_id is not None and not valid_node_id(args.node_id):
        raise LoadError(
            f"--node-id {args.node_id}: letters, digits, '_' and '-', not all digits", EXIT_USAGE
        )
    routing = sio.session_routing
    if routing is None:
        if not args.session_routing:
            raise LoadError(
                "--node-id and --advertise-url need --session-routing (or the app's "
                "session_routing option)",
                EXIT_USAGE,
            )
        routing = sio.session_routing = RedisSessionRouter(
            args.session_routing, key=args.routing_key
        )
    if not isinstance(routing, RedisSessionRouter):
        raise LoadError("--node-id and --advertise-url set a RedisSessionRouter only", EXIT_USAGE)
    if args.node_id:
        routing.node_id = args.node_id
    if args.advertise_url:
        try:
            NodeAddress(args.advertise_url)
        except ValueError as exc:
            raise LoadError(f"--advertise-url: {exc}", EXIT_USAGE) from None
        routing.advertise = args.advertise_url


def serve(args: argparse.Namespace) -> int:
    """Load the targets and serve until a signal; the exit status."""
    from socketwire.engine.process import run_until_signalled

    sys.path.insert(0, os.path.abspath(args.app_dir))
    sio = load_server(args.target, args.factory)
    _route_sessions(sio, args)
    app = load_asgi_app(args.app) if args.app else None
    context = ssl_context(args)
    options = _listen_options(args, context)
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise LoadError("--loop uvloop: uvloop is not installed (pip install 'socketwire[fast]')")

    async def start() -> None:
        port = await sio.listen(args.port, args.host, app=app, **options)
        if "sock" in options:
            name = options["sock"].getsockname()
        elif "uds" in options:
            name = args.uds
        else:
            name = (args.host, port)
        log.info(
            "serving %s on %s (SIGINT or SIGTERM to stop)",
            args.target,
            describe_address(name, context is not None),
        )

    async def stop() -> None:
        log.info("shutting down (at most %.1fs)", args.timeout_graceful_shutdown)
        await sio.shutdown(args.timeout_graceful_shutdown)
        log.info("stopped")

    try:
        run_until_signalled(
            start,
            stop,
            use_uvloop=args.loop != "asyncio",
            stop_timeout=args.timeout_graceful_shutdown,
        )
    except StartupFailed as exc:
        log.error("%s", exc)
        return EXIT_STARTUP
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return EXIT_LOAD
    return 0


def _fail(message: str, status: int) -> NoReturn:
    print(f"socketwire: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``); the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    logging.basicConfig(
        level=LOG_LEVELS[args.log_level],
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.worker_channel is not None:
            from socketwire.workers import serve_worker

            return serve_worker(args)
        if args.workers is not None:
            from socketwire.workers import supervise_workers

            if args.session_routing or args.node_id or args.advertise_url:
                _fail(
                    "--session-routing is for nodes without --workers (the workers "
                    "of one host route their sessions themselves)",
                    EXIT_USAGE,
                )

            return supervise_workers(args, arguments)
        if args.reload:
            from socketwire.reload import supervise

            return supervise(args, arguments)
        return serve(args)
    except LoadError as exc:
        _fail(str(exc), exc.status)
    except KeyboardInterrupt:
        return 130
