"""Soak test: a socketwire server under many clients for minutes, watching its memory.

Not part of the test suite. Two processes on loopback:

* the server: this file with ``--serve`` (socketwire on uvloop, handlers like
  ``bench/server.py`` plus ``bcast``, a broadcast to a room with acks, and
  ``stats``, the server's own counters);
* the load generator: ``soak/load.js`` on Node with the ``ws`` package from
  ``tests/js/node_modules`` (connects, disconnects, joins, broadcasts, acks).

The orchestrator (this file without ``--serve``) raises ``RLIMIT_NOFILE`` to its
hard limit, starts both, samples the server's RSS from ``/proc`` every
``--sample`` seconds, prints one table row per sample, and ends with a summary:
acks requested / received / lost in both directions, errors on each side, and
whether RSS levelled off. Everything is bounded in time: the run stops after
``--minutes`` plus the drain and shutdown margins, whatever happens.

    .venv/bin/python soak/soak.py --minutes 10 --clients 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
LOAD_JS = Path(__file__).resolve().parent / "load.js"
HOSTILE_PY = Path(__file__).resolve().parent / "hostile.py"


# -- the server -----------------------------------------------------------------------------


def _clamp(value: Any, high: int) -> int:
    try:
        return max(0, min(high, int(value or 0)))
    except (TypeError, ValueError):
        return 0


def create_server() -> Any:
    import socketwire
    from socketwire.errors import AckTimeout

    sio = socketwire.Server()  # Node's heartbeat defaults: 25 s / 20 s
    nsp = sio.sockets
    counters: Counter[str] = Counter()
    reasons: Counter[str] = Counter()

    @nsp.on("connection")
    def connection(socket: socketwire.Socket) -> None:
        counters["connections"] += 1

    @nsp.on("disconnect")
    def disconnect(socket: socketwire.Socket, reason: str) -> None:
        reasons[reason] += 1

    @nsp.on("echo")
    def echo(socket: socketwire.Socket, *args: Any) -> tuple[Any, ...]:
        counters["echo"] += 1
        return args

    @nsp.on("join")
    def join(socket: socketwire.Socket, room: Any) -> Any:
        socket.join(str(room))
        return room

    @nsp.on("leave")
    def leave(socket: socketwire.Socket, room: Any) -> Any:
        socket.leave(str(room))
        return room

    @nsp.on("fanout")
    async def fanout(socket: socketwire.Socket, opts: dict[str, Any]) -> dict[str, int]:
        count = _clamp(opts.get("count"), 1000)
        d = "x" * _clamp(opts.get("size"), 100_000)
        for i in range(count):
            sio.emit("tick", {"i": i, "d": d})
            await asyncio.sleep(0)
        counters["fanout"] += count
        return {"sent": count}

    @nsp.on("roomcast")
    async def roomcast(socket: socketwire.Socket, opts: dict[str, Any]) -> dict[str, int]:
        rooms = _clamp(opts.get("rooms"), 1000)
        prefix = str(opts.get("prefix") or "r")
        count = _clamp(opts.get("count"), 1000)
        d = "x" * _clamp(opts.get("size"), 100_000)
        for i in range(count):
            for r in range(rooms):
                sio.to(prefix + str(r)).emit("tick", {"i": i, "d": d})
                await asyncio.sleep(0)
        return {"sent": count * rooms}

    @nsp.on("bcast")
    async def bcast(socket: socketwire.Socket, opts: dict[str, Any]) -> dict[str, Any]:
        room = str(opts.get("room"))
        counters["bcast"] += 1
        n = counters["bcast"]
        timed_out = False
        try:
            responses = await sio.to(room).timeout(10).emit_with_ack("q", {"n": n})
        except AckTimeout as exc:
            responses = list(exc.responses or [])
            timed_out = True
            counters["bcast_timeouts"] += 1
        counters["bcast_responses"] += len(responses)
        return {"responses": len(responses), "timeout": timed_out}

    # The hostile mix sends duplicate CONNECTs here: a middleware that takes a
    # while keeps the first CONNECT pending when the second arrives.
    slow = sio.of("/slow")

    @slow.use
    async def slow_middleware(socket: socketwire.Socket) -> None:
        await asyncio.sleep(0.2)

    @nsp.on("stats")
    def stats(socket: socketwire.Socket) -> dict[str, Any]:
        return {
            "sockets": len(nsp.sockets),
            "slow sockets": len(slow.sockets),
            "engine_clients": len(sio.engine.clients),
            "rooms": len(nsp.adapter.rooms),
            "adapter_sids": len(nsp.adapter.sids),
            "pending_acks": sum(s.pending_acks for s in nsp.sockets.values()),
            # Python objects tracked by the GC: a leak shows here even when the
            # allocator keeps RSS flat (or RSS grows from fragmentation alone).
            "gc_objects": len(gc.get_objects()),
            "tasks": len(asyncio.all_tasks()),
            "counters": dict(counters),
            "disconnect_reasons": dict(reasons),
        }

    return sio


def serve(port: int) -> None:
    """Listen on 127.0.0.1:``port`` (0: any), print ``PORT <n>``, serve until SIGTERM/SIGINT."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None

    async def main() -> None:
        sio = create_server()
        bound = await sio.listen(port, "127.0.0.1", backlog=4096)
        print(f"PORT {bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sio.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


# -- the orchestrator -------------------------------------------------------------------------


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) and the number of open fds of a process; {} once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    out[name] = int(value.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    return out


class Reader(threading.Thread):
    """Collects a child's output lines (stdout JSON lines, or raw stderr lines)."""

    def __init__(self, stream: Any, parse_json: bool) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.parse_json = parse_json
        self.lines: list[Any] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").rstrip("\n")
            item: Any = line
            if self.parse_json:
                try:
                    item = json.loads(line)
                except ValueError:
                    item = {"raw": line}
            with self.lock:
                self.lines.append(item)

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.lines)


def levelled_off(samples: list[tuple[float, int]]) -> tuple[bool, str]:
    """Whether RSS stopped growing: the second half's growth, compared to the peak."""
    if len(samples) < 6:
        return False, "too few samples"
    half = samples[len(samples) // 2 :]
    first, last = half[0][1], half[-1][1]
    peak = max(rss for _, rss in samples)
    growth = last - first
    minutes = (half[-1][0] - half[0][0]) / 60 or 1
    ok = growth <= 0.05 * peak
    return ok, (
        f"second half: {first / 1024:.1f} -> {last / 1024:.1f} MiB "
        f"({growth / 1024:+.1f} MiB, {growth / 1024 / minutes:+.2f} MiB/min); "
        f"peak {peak / 1024:.1f} MiB"
    )


def wait_for_port(server: subprocess.Popen[bytes]) -> int | None:
    """The port a ``--serve`` process prints first (``PORT n``); None if it failed to start."""
    assert server.stdout is not None and server.stderr is not None
    first = server.stdout.readline().decode()
    match = re.match(r"PORT (\d+)", first)
    if not match:
        print(f"server did not start: {first!r} {server.stderr.read().decode()}", flush=True)
        return None
    return int(match.group(1))


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def orchestrate(args: argparse.Namespace) -> int:
    nofile = raise_fd_limit()
    need = args.clients + 200
    if nofile < need:
        print(f"RLIMIT_NOFILE is {nofile}, {need} needed: lower --clients", file=sys.stderr)
        return 2
    print(
        f"# soak: {args.clients} clients, {args.minutes} min, sample every {args.sample} s, "
        f"RLIMIT_NOFILE {nofile}",
        flush=True,
    )
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", "--port", str(args.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    node: subprocess.Popen[bytes] | None = None
    hostile: subprocess.Popen[bytes] | None = None
    hostile_out: Reader | None = None
    try:
        assert server.stdout is not None and server.stderr is not None
        port = wait_for_port(server)
        if port is None:
            return 2
        server_err = Reader(server.stderr, parse_json=False)
        server_err.start()
        seconds = int(args.minutes * 60)
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        node = subprocess.Popen(
            [
                "node",
                "--max-old-space-size=4096",
                str(LOAD_JS),
                "--url",
                f"http://127.0.0.1:{port}",
                "--clients",
                str(args.clients),
                "--seconds",
                str(seconds),
                "--interval",
                str(args.interval),
                "--drain",
                str(args.drain),
                "--report",
                str(args.sample),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert node.stdout is not None and node.stderr is not None
        load_out = Reader(node.stdout, parse_json=True)
        load_err = Reader(node.stderr, parse_json=False)
        load_out.start()
        load_err.start()
        if args.hostile:
            hostile = subprocess.Popen(
                [
                    sys.executable,
                    str(HOSTILE_PY),
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--seconds",
                    str(seconds),
                    "--report",
                    str(args.sample),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
            assert hostile.stdout is not None
            hostile_out = Reader(hostile.stdout, parse_json=True)
            hostile_out.start()

        t0 = time.monotonic()
        hard_deadline = t0 + seconds + args.drain + 60
        rss: list[tuple[float, int]] = []
        header = (
            f"{'t (s)':>6} {'RSS MiB':>8} {'HWM MiB':>8} {'fds':>6} {'open':>6} "
            f"{'sockets':>7} {'acks req':>9} {'acks recv':>9} {'pending':>7} "
            f"{'q acked':>8} {'errors':>6} {'objects':>8} {'node MiB':>8}"
        )
        print(header, flush=True)
        next_sample = t0
        while node.poll() is None and time.monotonic() < hard_deadline:
            now = time.monotonic()
            if now < next_sample:
                time.sleep(min(0.5, next_sample - now))
                continue
            next_sample += args.sample
            st = proc_status(server.pid)
            if not st:
                print("# server process is gone", flush=True)
                break
            t = now - t0
            rss.append((t, st["VmRSS"]))
            lines = load_out.snapshot()
            gen: dict[str, Any] = next((x for x in reversed(lines) if "acksRequested" in x), {})
            srv: dict[str, Any] = next(
                (x["server"] for x in reversed(lines) if x.get("server")), {}
            )
            errors = sum(
                gen.get(k, 0)
                for k in (
                    "connectFailures",
                    "unexpectedCloses",
                    "wsErrors",
                    "protocolErrors",
                    "unknownAcks",
                    "ackMismatches",
                    "serverDisconnects",
                )
            )
            node_rss = proc_status(node.pid).get("VmRSS", 0)
            print(
                f"{t:6.0f} {st['VmRSS'] / 1024:8.1f} {st['VmHWM'] / 1024:8.1f} {st['fds']:6d} "
                f"{gen.get('open', 0):6d} {srv.get('sockets', 0):7d} "
                f"{gen.get('acksRequested', 0):9d} {gen.get('acksReceived', 0):9d} "
                f"{gen.get('pending', 0):7d} {gen.get('qAcked', 0):8d} {errors:6d} "
                f"{srv.get('gc_objects', 0):8d} {node_rss / 1024:8.1f}",
                flush=True,
            )
        if node.poll() is None:
            print("# load generator overran its time: stopping it", flush=True)
            stop(node)
        load_out.join(5)
        load_err.join(5)
        # Memory once every client has gone (up to 15 s for the server to see the closes).
        settle = time.monotonic() + 15
        after = proc_status(server.pid)
        while after and after["fds"] > 50 and time.monotonic() < settle:
            time.sleep(0.5)
            after = proc_status(server.pid)
        print(
            f"# after the clients left: RSS {after.get('VmRSS', 0) / 1024:.1f} MiB, "
            f"{after.get('fds', 0)} fds",
            flush=True,
        )
        final = next((x for x in load_out.snapshot() if x.get("final")), None)
        closed: dict[str, Any] = next((x for x in load_out.snapshot() if x.get("closed")), {})
        if final is not None:
            final["serverAfter"] = closed.get("serverAfter")
            if hostile_out is not None:
                if hostile is not None and hostile.poll() is None:
                    stop(hostile)
                hostile_out.join(5)
                said = [x for x in hostile_out.snapshot() if "hostile" in x]
                final["hostile"] = said[-1]["hostile"] if said else {}
        stop(server, signal.SIGINT)
        server_err.join(5)
        return summarize(args, rss, after, final, server_err.snapshot(), load_err.snapshot())
    finally:
        if hostile is not None:
            stop(hostile, signal.SIGKILL, 5)
        if node is not None:
            stop(node, signal.SIGKILL, 5)
        stop(server, signal.SIGKILL, 5)


def summarize(
    args: argparse.Namespace,
    rss: list[tuple[float, int]],
    after: dict[str, int],
    final: dict[str, Any] | None,
    server_log: list[str],
    load_log: list[str],
) -> int:
    print("\n# summary", flush=True)
    if final is None:
        print("no final report from the load generator", flush=True)
        print("\n".join(load_log[-20:]), flush=True)
        return 1
    server = final.get("server") or {}
    counters = server.get("counters", {})
    server_errors = [line for line in server_log if line.startswith(("ERROR", "CRITICAL"))]
    tracebacks = sum(1 for line in server_log if line.startswith("Traceback"))
    ok, reading = levelled_off(rss)
    report = {
        "clients": args.clients,
        "minutes": args.minutes,
        "acks (client -> server)": {
            "requested": final["acksRequested"],
            "received": final["acksReceived"],
            "lost": final["acksLost"],
            "lost with a closed connection": final["lostOnClose"],
            "late (> 30 s)": final["acksLate"],
            "mismatched": final["ackMismatches"],
        },
        "broadcast acks (server -> clients)": {
            "q received by clients": final["qReceived"],
            "q acked by clients": final["qAcked"],
            "q received while closing (not acked)": final["qWhileClosing"],
            "responses collected by the server": counters.get("bcast_responses"),
            "responses reported to requesters": final["bcastResponses"],
            "broadcasts": counters.get("bcast"),
            "broadcasts timed out": counters.get("bcast_timeouts", 0),
        },
        "traffic": {
            "handshakes": final["handshakes"],
            "connects": final["connects"],
            "clean disconnects": final["cleanDisconnects"],
            "echoes": final["echoes"],
            "room hops": final["hops"],
            "ticks received": final["ticks"],
        },
        "errors (load generator)": {
            k: final[k]
            for k in (
                "connectFailures",
                "unexpectedCloses",
                "wsErrors",
                "protocolErrors",
                "unknownAcks",
                "ackMismatches",
                "serverDisconnects",
            )
        },
        "error samples": final.get("errorSamples", []),
        "server": {
            "ERROR log lines": len(server_errors),
            "tracebacks": tracebacks,
            "first log lines": server_log[:10],
            "sockets before the clients left": server.get("sockets"),
            "/slow sockets before the clients left": server.get("slow sockets"),
            "rooms before the clients left": server.get("rooms"),
            "asyncio tasks": server.get("tasks"),
            "pending acks before the clients left": server.get("pending_acks"),
            "after the clients left (monitor still connected)": final.get("serverAfter"),
            "disconnect reasons": server.get("disconnect_reasons"),
            "RSS after the clients left (MiB)": round(after.get("VmRSS", 0) / 1024, 1),
            "fds after the clients left": after.get("fds"),
            "peak RSS (MiB)": round(after.get("VmHWM", 0) / 1024, 1),
        },
        "hostile mix": final.get("hostile"),
        "RSS levelled off": ok,
        "RSS reading": reading,
    }
    print(json.dumps(report, indent=2), flush=True)
    lost = final["acksLost"] + (final["qAcked"] - (counters.get("bcast_responses") or 0))
    failed = lost != 0 or final["errors"] != 0 or server_errors or tracebacks or not ok
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=20.0, help="mean s between actions")
    parser.add_argument("--sample", type=float, default=10.0, help="s between RSS samples")
    parser.add_argument("--drain", type=float, default=30.0, help="s to wait for late acks")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--hostile", action="store_true", help="run the hostile mix (soak/hostile.py) beside"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
