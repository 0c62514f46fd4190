"""Ping storm: a broadcast storm to many clients must not make healthy clients time out.

Not part of the test suite. Two processes on loopback:

* the server: this file with ``--serve``, a socketwire server on uvloop with
  short heartbeats (``--ping-interval`` 2 s, ``--ping-timeout`` 3 s) that, once
  told to start, broadcasts a ``tick`` event {n, t, d} to every client of the
  main namespace for ``--seconds``, as fast as it can while staying at most
  ``--window`` broadcasts ahead of the slowest client (and under ``--rate``
  broadcasts/s if given); it prints one JSON line of counters every second;
* the load generator: ``soak/ping_storm.js`` on Node with the ``ws`` package
  from ``tests/js/node_modules``: ``--clients`` WebSocket clients that answer
  every Engine.IO ping and count the ticks they receive, and a control client
  on ``/control`` that starts the storm and reports the slowest client's count.

The orchestrator (this file without ``--serve``) raises ``RLIMIT_NOFILE`` to its
hard limit, starts both, samples RSS and CPU from ``/proc`` every ``--sample``
seconds, prints one table row per sample and ends with a summary. It exits
with 1 when any client timed out, disconnected or missed a tick (see
``soak/README.md``), and everything is over within ``--seconds`` plus a fixed
margin (``clients / ramp`` + 120 s), killed if need be.

    .venv/bin/python soak/ping_storm.py --clients 10000 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from soak import NODE_MODULES, ROOT, Reader, proc_status, raise_fd_limit, stop, wait_for_port

STORM_JS = Path(__file__).resolve().parent / "ping_storm.js"

# Upper bounds (ms) of the latency histograms (the same as ping_storm.js).
BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 3000, 5000)
# Phases of a run, as the server sees them: disconnects before "closing" are failures.
PHASES = ("ramp", "storm", "drain", "closing")


# -- the server -----------------------------------------------------------------------------


class Histogram:
    """Counts per latency bucket (ms), with the maximum overall and since the last read."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.max = 0.0
        self.interval_max = 0.0

    def record(self, ms: float) -> None:
        i = 0
        while i < len(BOUNDS) and ms > BOUNDS[i]:
            i += 1
        self.counts[i] += 1
        self.max = max(self.max, ms)
        self.interval_max = max(self.interval_max, ms)

    def take_interval_max(self) -> float:
        value, self.interval_max = self.interval_max, 0.0
        return round(value, 1)

    def as_dict(self) -> dict[str, int]:
        labels = [f"<={b}" for b in BOUNDS] + [f">{BOUNDS[-1]}"]
        return {label: n for label, n in zip(labels, self.counts, strict=True) if n}


class StormServer:
    """The server side: counters, the heartbeat probe, the storm and the control namespace."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counters: Counter[str] = Counter()
        self.reasons: dict[str, Counter[str]] = {p: Counter() for p in PHASES}
        self.control_reasons: Counter[str] = Counter()
        self.phase = "ramp"
        self.rtt = Histogram()  # ping sent -> pong received, as the server sees it
        self.lag = Histogram()  # event loop lateness
        self.sent = 0
        self.progress_min = 0
        self.progress_max = 0
        self.waited = 0.0  # seconds the storm waited for the slowest client
        self.emitting = 0.0  # seconds spent inside emit()
        self.storm_started = 0.0
        self.storm_seconds = 0.0
        self.clients_at_start = 0
        self._progress = asyncio.Event()
        self._storm_task: asyncio.Future[None] | None = None
        self._t0 = time.monotonic()
        self.probe = self._install_heartbeat_probe()
        self.sio = self._create()

    def _install_heartbeat_probe(self) -> bool:
        """Count the pings the engine sends and time their pongs.

        Wraps two ``EngineSocket`` methods (the heartbeat deadline and the
        handling of non-message Engine.IO packets) before the server exists, as
        the engine's heartbeat queue keeps a reference to the first one. Without
        those internals the run goes on with pings sent and pong times unknown.
        """
        try:
            from socketwire.core.engineio.session import EnginePacketType, Heartbeat
            from socketwire.engine.socket import EngineSocket

            original_due = EngineSocket.heartbeat_due
            original_packet = EngineSocket._on_packet
        except (ImportError, AttributeError):
            return False
        counters = self.counters
        rtt = self.rtt
        ping_at: dict[str, float] = {}
        pong = EnginePacketType.PONG

        def heartbeat_due(sock: Any, deadline: float) -> None:
            s = sock.session
            if s.is_current(deadline):
                if s.heartbeat is Heartbeat.WAIT_PING:
                    counters["pings_sent"] += 1
                    ping_at[sock.id] = time.monotonic()
                else:
                    counters["pong_timeouts"] += 1
                    ping_at.pop(sock.id, None)
            original_due(sock, deadline)

        def on_packet(sock: Any, ptype: int, data: bytes, binary: bool) -> None:
            if ptype == pong:
                counters["pongs"] += 1
                sent_at = ping_at.pop(sock.id, None)
                if sent_at is not None:
                    rtt.record((time.monotonic() - sent_at) * 1000)
            original_packet(sock, ptype, data, binary)

        EngineSocket.heartbeat_due = heartbeat_due  # type: ignore[method-assign, assignment]
        EngineSocket._on_packet = on_packet  # type: ignore[method-assign, assignment]
        return True

    def _create(self) -> Any:
        import socketwire

        args = self.args
        sio = socketwire.Server(ping_interval=args.ping_interval, ping_timeout=args.ping_timeout)
        nsp = sio.sockets
        ctl = sio.of("/control")
        self.nsp = nsp
        self.ctl = ctl

        @nsp.on("connection")
        def connection(socket: socketwire.Socket) -> None:
            self.counters["connections"] += 1

        @nsp.on("disconnect")
        def disconnect(socket: socketwire.Socket, reason: str) -> None:
            self.reasons[self.phase][reason] += 1

        @ctl.on("disconnect")
        def control_disconnect(socket: socketwire.Socket, reason: str) -> None:
            self.control_reasons[reason] += 1

        @ctl.on("start")
        def start(socket: socketwire.Socket, info: Any = None) -> None:
            if self.phase != "ramp":
                return
            self.phase = "storm"
            self.clients_at_start = len(nsp.sockets)
            self._storm_task = asyncio.ensure_future(self.storm())

        @ctl.on("progress")
        def progress(socket: socketwire.Socket, info: Any) -> None:
            try:
                self.progress_min = int(info["min"])
                self.progress_max = int(info["max"])
            except (TypeError, KeyError, ValueError):
                return
            self._progress.set()

        @ctl.on("closing")
        def closing(socket: socketwire.Socket) -> None:
            self.phase = "closing"

        return sio

    async def storm(self) -> None:
        """Broadcast ticks for ``--seconds``: window-bound, rate-bound, else flat out."""
        args = self.args
        loop = asyncio.get_running_loop()
        emit = self.nsp.emit
        pad = "x" * args.size
        window = args.window
        rate = args.rate
        start = loop.time()
        end = start + args.seconds
        self.storm_started = time.monotonic()
        while True:
            now = loop.time()
            if now >= end:
                break
            if window and self.sent - self.progress_min >= window:
                self._progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), min(1.0, end - now))
                self.waited += loop.time() - now
                continue
            if rate:
                due = start + self.sent / rate
                if now < due:
                    await asyncio.sleep(due - now)
                    continue
            t = time.perf_counter()
            self.sent += 1
            emit("tick", {"n": self.sent, "t": int(time.time() * 1000), "d": pad})
            self.emitting += time.perf_counter() - t
            await asyncio.sleep(0)
        self.storm_seconds = time.monotonic() - self.storm_started
        self.phase = "drain"
        self.ctl.emit("done", {"sent": self.sent, "seconds": round(self.storm_seconds, 3)})

    async def watch_loop(self) -> None:
        """Measure how late the event loop wakes up from a 20 ms sleep."""
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.02)
            self.lag.record(max(0.0, (loop.time() - t - 0.02) * 1000))

    def stats(self, final: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": round(time.monotonic() - self._t0, 1),
            "phase": self.phase,
            "sockets": len(self.nsp.sockets),
            "engine_clients": len(self.sio.engine.clients),
            "clients_at_start": self.clients_at_start,
            "sent": self.sent,
            "min": self.progress_min,
            "max": self.progress_max,
            "waited_s": round(self.waited, 3),
            "emit_s": round(self.emitting, 3),
            "storm_s": round(
                self.storm_seconds
                or (time.monotonic() - self.storm_started if self.storm_started else 0.0),
                3,
            ),
            "probe": self.probe,
            "pings_sent": self.counters["pings_sent"],
            "pongs": self.counters["pongs"],
            "pong_timeouts": self.counters["pong_timeouts"],
            "connections": self.counters["connections"],
            "rtt_max_ms": self.rtt.take_interval_max(),
            "lag_max_ms": self.lag.take_interval_max(),
            "reasons": {p: dict(c) for p, c in self.reasons.items() if c},
            "control_reasons": dict(self.control_reasons),
        }
        if final:
            out["final"] = True
            out["rtt_max_total_ms"] = round(self.rtt.max, 1)
            out["rtt"] = self.rtt.as_dict()
            out["lag_max_total_ms"] = round(self.lag.max, 1)
            out["lag"] = self.lag.as_dict()
        return out


def serve(args: argparse.Namespace) -> None:
    """Listen on 127.0.0.1, print ``PORT <n>`` then a JSON line a second, until SIGTERM/SIGINT."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None

    async def main() -> None:
        storm = StormServer(args)
        bound = await storm.sio.listen(args.port, "127.0.0.1", backlog=4096)
        print(f"PORT {bound}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        if args.lifetime:
            # In case the orchestrator is gone without stopping this process.
            loop.call_later(args.lifetime, stopping.set)
        watcher = asyncio.ensure_future(storm.watch_loop())
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
            print(json.dumps(storm.stats(final=stopping.is_set())), flush=True)
        watcher.cancel()
        await storm.sio.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


# -- the orchestrator -------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs together."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


class CpuMeter:
    """CPU use of a process between two reads, in % of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hz = os.sysconf("SC_CLK_TCK")
        self.last = (time.monotonic(), cpu_ticks(pid) or 0)

    def read(self) -> float:
        now, ticks = time.monotonic(), cpu_ticks(self.pid)
        if ticks is None:
            return 0.0
        t0, k0 = self.last
        self.last = (now, ticks)
        return 100.0 * (ticks - k0) / self.hz / max(now - t0, 1e-6)


def last(lines: list[Any], key: str) -> dict[str, Any]:
    return next((x for x in reversed(lines) if isinstance(x, dict) and key in x), {})


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(f"# stopped by signal {signum}")


def orchestrate(args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C, so that the children are stopped on the way out.
    signal.signal(signal.SIGTERM, _terminated)
    nofile = raise_fd_limit()
    need = args.clients + 200
    if nofile < need:
        print(f"RLIMIT_NOFILE is {nofile}, {need} needed: lower --clients", file=sys.stderr)
        return 2
    connect_budget = args.clients / args.ramp + 30
    budget = connect_budget + args.seconds + args.drain + args.tail
    node_deadline = budget + 30
    hard_deadline_s = budget + 60
    print(
        f"# ping storm: {args.clients} clients, {args.seconds} s of broadcasts "
        f"({args.size} B of padding, window {args.window}, rate {args.rate or 'unbounded'}), "
        f"heartbeat {args.ping_interval} s / {args.ping_timeout} s, RLIMIT_NOFILE {nofile}, "
        f"everything killed after {hard_deadline_s:.0f} s",
        flush=True,
    )
    t0 = time.monotonic()
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--port",
            str(args.port),
            "--seconds",
            str(args.seconds),
            "--ping-interval",
            str(args.ping_interval),
            "--ping-timeout",
            str(args.ping_timeout),
            "--window",
            str(args.window),
            "--rate",
            str(args.rate),
            "--size",
            str(args.size),
            "--lifetime",
            str(round(hard_deadline_s + 15)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    node: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None and server.stderr is not None
        port = wait_for_port(server)
        if port is None:
            return 2
        server_out = Reader(server.stdout, parse_json=True)
        server_err = Reader(server.stderr, parse_json=False)
        server_out.start()
        server_err.start()
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        node = subprocess.Popen(
            [
                "node",
                "--max-old-space-size=4096",
                str(STORM_JS),
                "--url",
                f"http://127.0.0.1:{port}",
                "--clients",
                str(args.clients),
                "--ramp",
                str(args.ramp),
                "--progress",
                str(args.progress),
                "--drain",
                str(args.drain),
                "--tail",
                str(args.tail),
                "--deadline",
                str(round(node_deadline)),
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
        rows = sample(args, t0 + hard_deadline_s, server, node, server_out, load_out)
        overran = node.poll() is None
        if overran:
            print("# load generator overran its time: stopping it", flush=True)
            stop(node)
        load_out.join(5)
        load_err.join(5)
        # The server's view once the clients are gone (up to 15 s to see the closes).
        settle = time.monotonic() + 15
        while time.monotonic() < settle and last(server_out.snapshot(), "sockets").get(
            "sockets", 0
        ):
            time.sleep(0.5)
        after = proc_status(server.pid)
        stop(server, signal.SIGINT)
        server_out.join(5)
        server_err.join(5)
        return summarize(
            args,
            rows,
            after,
            overran,
            server_out.snapshot(),
            server_err.snapshot(),
            load_out.snapshot(),
            load_err.snapshot(),
        )
    finally:
        if node is not None:
            stop(node, signal.SIGKILL, 5)
        stop(server, signal.SIGKILL, 5)


COLUMNS = (
    ("t", "t (s)", 6),
    ("phase", "phase", 7),
    ("rss", "RSS MiB", 8),
    ("hwm", "HWM MiB", 8),
    ("fds", "fds", 6),
    ("srv_cpu", "srv %", 6),
    ("node_cpu", "node %", 6),
    ("busy", "host %", 6),
    ("open", "open", 6),
    ("sockets", "sockets", 7),
    ("sent", "sent", 7),
    ("bps", "bc/s", 6),
    ("mps", "msgs/s", 8),
    ("behind", "behind", 6),
    ("wait", "wait %", 6),
    ("emit_ms", "emit ms", 7),
    ("lag", "lag ms", 7),
    ("rtt", "rtt ms", 7),
    ("gap", "gap ms", 7),
    ("tick_ms", "tick ms", 7),
    ("nlag", "nlag ms", 7),
    ("disc", "disc", 5),
)


def fmt(value: Any, width: int) -> str:
    if isinstance(value, float):
        text = f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    else:
        text = str(value)
    return text.rjust(width)


def sample(
    args: argparse.Namespace,
    deadline: float,
    server: subprocess.Popen[bytes],
    node: subprocess.Popen[bytes],
    server_out: Reader,
    load_out: Reader,
) -> list[dict[str, Any]]:
    """Print one row every ``--sample`` s until the generator exits (or the deadline)."""
    print(" ".join(title.rjust(w) for _, title, w in COLUMNS), flush=True)
    srv_cpu, node_cpu = CpuMeter(server.pid), CpuMeter(node.pid)
    host = machine_ticks()
    t0 = time.monotonic()
    # Rates come from the children's own per-second lines and clocks (not the
    # sampling times), so that they do not alias with the 1 s reports.
    prev_srv: dict[str, Any] = {}
    prev_gen: dict[str, Any] = {}
    since = 0.0
    rows: list[dict[str, Any]] = []
    next_at = t0 + args.sample
    while node.poll() is None and time.monotonic() < deadline:
        now = time.monotonic()
        if now < next_at:
            time.sleep(min(0.25, next_at - now))
            continue
        next_at += args.sample
        st = proc_status(server.pid)
        if not st:
            print("# server process is gone", flush=True)
            break
        server_lines = server_out.snapshot()
        load_lines = load_out.snapshot()
        srv = last(server_lines, "sockets")
        gen = last(load_lines, "ticks")
        busy, total = machine_ticks()
        cpus = os.cpu_count() or 1
        host_busy = 100.0 * cpus * (busy - host[0]) / max(total - host[1], 1)
        host = (busy, total)
        srv_dt = srv.get("t", 0) - prev_srv.get("t", 0) or 1e9
        gen_dt = gen.get("t", 0) - prev_gen.get("t", 0) or 1e9
        sent = srv.get("sent", 0)
        sent_delta = sent - prev_srv.get("sent", 0)
        emit_delta = srv.get("emit_s", 0.0) - prev_srv.get("emit_s", 0.0)
        disconnects = sum(
            n for p, c in (srv.get("reasons") or {}).items() if p != "closing" for n in c.values()
        )
        row = {
            "t": round(now - t0),
            "phase": srv.get("phase", "-"),
            "rss": st["VmRSS"] / 1024,
            "hwm": st["VmHWM"] / 1024,
            "fds": st["fds"],
            "srv_cpu": srv_cpu.read(),
            "node_cpu": node_cpu.read(),
            "busy": host_busy,
            "open": gen.get("open", 0),
            "sockets": srv.get("sockets", 0),
            "sent": sent,
            "bps": sent_delta / srv_dt,
            "mps": (gen.get("ticks", 0) - prev_gen.get("ticks", 0)) / gen_dt,
            "behind": sent - srv.get("min", 0),
            "wait": 100.0 * (srv.get("waited_s", 0.0) - prev_srv.get("waited_s", 0.0)) / srv_dt,
            "emit_ms": 1000.0 * emit_delta / sent_delta if sent_delta > 0 else 0.0,
            "lag": max_of(server_lines, "lag_max_ms", since),
            "rtt": max_of(server_lines, "rtt_max_ms", since),
            "gap": max_of(load_lines, "pingGapMaxMs", since),
            "tick_ms": max_of(load_lines, "tickLatencyMaxMs", since),
            "nlag": max_of(load_lines, "loopDelayMaxMs", since),
            "disc": disconnects,
            "node_rss": proc_status(node.pid).get("VmRSS", 0) / 1024,
        }
        prev_srv, prev_gen, since = srv, gen, now - t0
        rows.append(row)
        print(" ".join(fmt(row[key], w) for key, _, w in COLUMNS), flush=True)
    return rows


def max_of(lines: list[Any], key: str, since: float) -> float:
    """The largest ``key`` among the per-second lines of the last sample period.

    Both children report maxima per second; ``since`` is the start of the period
    in seconds from the orchestrator's start, compared with the lines' own ``t``
    (close enough: both children start within a second of the orchestrator).
    """
    best = 0.0
    for x in reversed(lines):
        if not isinstance(x, dict) or key not in x:
            continue
        if x.get("t", 0) <= since - 1:
            break
        best = max(best, float(x[key] or 0))
    return best


def summarize(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    after: dict[str, int],
    overran: bool,
    server_lines: list[Any],
    server_log: list[str],
    load_lines: list[Any],
    load_log: list[str],
) -> int:
    print("\n# summary", flush=True)
    final = next((x for x in load_lines if isinstance(x, dict) and x.get("final")), None)
    closed = next((x for x in load_lines if isinstance(x, dict) and x.get("closed")), {})
    start = next((x for x in load_lines if isinstance(x, dict) and x.get("start")), {})
    srv = next((x for x in reversed(server_lines) if isinstance(x, dict) and x.get("final")), None)
    if srv is None:
        srv = last(server_lines, "sockets")
    problems: list[str] = []
    if final is None:
        problems.append("no final report from the load generator")
        print("\n".join(load_log[-20:]), flush=True)
        final = last(load_lines, "ticks")
    if overran:
        problems.append("the load generator overran its time")
    reasons: dict[str, dict[str, int]] = srv.get("reasons") or {}
    during = {p: c for p, c in reasons.items() if p != "closing"}
    ping_timeouts = sum(c.get("ping timeout", 0) for c in reasons.values())
    sent = srv.get("sent", 0)
    storm_s = srv.get("storm_s", 0.0) or 1e-9
    delivered = final.get("ticks", 0)
    server_errors = [line for line in server_log if line.startswith(("ERROR", "CRITICAL"))]
    tracebacks = sum(1 for line in server_log if line.startswith("Traceback"))
    report = {
        "clients": args.clients,
        "connected at the start of the storm": final.get(
            "connectedAtStart", start.get("connected")
        ),
        "heartbeat (s)": {"ping_interval": args.ping_interval, "ping_timeout": args.ping_timeout},
        "storm": {
            "seconds": round(storm_s, 1),
            "broadcasts sent": sent,
            "broadcasts/s": round(sent / storm_s, 1),
            "tick messages delivered": delivered,
            "messages delivered/s": round(delivered / storm_s),
            "payload (bytes of padding)": args.size,
            "window (broadcasts ahead of the slowest client)": args.window,
            "fixed rate": args.rate or None,
            "time the server waited for the slowest client (%)": round(
                100 * srv.get("waited_s", 0.0) / storm_s, 1
            ),
            "server time inside emit (ms per broadcast)": round(
                1000 * srv.get("emit_s", 0.0) / max(sent, 1), 2
            ),
            "ticks per client (min / max)": [
                final.get("ticksMinPerClient"),
                final.get("ticksMaxPerClient"),
            ],
            "clients with a tick count != broadcasts sent": final.get("clientsMissingTicks"),
            "ticks out of order": final.get("orderErrors"),
            "tick latency (server send -> client receipt, ms)": final.get("tickLatency"),
            "tick latency max (ms)": final.get("tickLatencyMaxMs"),
        },
        "heartbeat": {
            "pings sent by the server": srv.get("pings_sent") if srv.get("probe") else "n/a",
            "pongs received by the server": srv.get("pongs") if srv.get("probe") else "n/a",
            "pong deadlines missed (server)": srv.get("pong_timeouts")
            if srv.get("probe")
            else "n/a",
            "pings answered by the clients": final.get("pings"),
            "pings answered by the control client": final.get("controlPings"),
            "pings per client (min)": final.get("pingsMinPerClient"),
            "clients never pinged": final.get("clientsNeverPinged"),
            "ping -> pong round trip at the server (ms)": srv.get("rtt"),
            "round trip max (ms)": srv.get("rtt_max_total_ms"),
            "ping gap at the clients minus ping_interval (ms)": final.get("pingGap"),
            "ping gap excess max (ms)": final.get("pingGapMaxMs"),
        },
        "disconnects (server, by phase and reason)": reasons,
        "control namespace disconnects": srv.get("control_reasons"),
        "load generator": {
            k: final.get(k)
            for k in (
                "unexpectedCloses",
                "serverDisconnects",
                "wsErrors",
                "protocolErrors",
                "connectFailures",
                "loopDelayMaxMs",
            )
        },
        "clients still open after closing": closed.get("stillOpen"),
        "error samples": final.get("errorSamples", []),
        "server": {
            "event loop lag max (ms)": srv.get("lag_max_total_ms"),
            "event loop lag (ms)": srv.get("lag"),
            "ERROR log lines": len(server_errors),
            "tracebacks": tracebacks,
            "first log lines": server_log[:10],
            "RSS at the first sample (MiB)": round(rows[0]["rss"], 1) if rows else None,
            "RSS at the end of the storm (MiB)": rss_at_end_of_storm(rows),
            "peak RSS (MiB)": round(after.get("VmHWM", 0) / 1024, 1),
            "RSS after the clients left (MiB)": round(after.get("VmRSS", 0) / 1024, 1),
            "fds after the clients left": after.get("fds"),
            "sockets after the clients left": srv.get("sockets"),
        },
        "load generator peak RSS (MiB)": round(max((r["node_rss"] for r in rows), default=0), 1),
    }
    print(json.dumps(report, indent=2), flush=True)

    if ping_timeouts or srv.get("pong_timeouts"):
        problems.append(f"{ping_timeouts} ping timeouts")
    n_during = sum(n for c in during.values() for n in c.values())
    if n_during:
        problems.append(f"{n_during} disconnects before the end: {during}")
    if srv.get("control_reasons") and srv.get("phase") != "closing":
        problems.append(f"control client disconnected: {srv.get('control_reasons')}")
    for key in ("unexpectedCloses", "serverDisconnects", "wsErrors", "protocolErrors"):
        if final.get(key):
            problems.append(f"load generator: {final[key]} {key}")
    if final.get("connectedAtStart", 0) < args.clients:
        problems.append(f"only {final.get('connectedAtStart')} clients connected at the start")
    if srv.get("clients_at_start", 0) < args.clients:
        problems.append(f"the server had {srv.get('clients_at_start')} sockets at the start")
    if not sent:
        problems.append("no broadcast sent")
    if final.get("sent") != sent:
        problems.append(f"the generator saw {final.get('sent')} broadcasts announced, not {sent}")
    if final.get("clientsMissingTicks") or final.get("orderErrors"):
        problems.append(
            f"{final.get('clientsMissingTicks')} clients missed ticks, "
            f"{final.get('orderErrors')} out of order"
        )
    if server_errors or tracebacks:
        problems.append(
            f"{len(server_errors)} ERROR lines, {tracebacks} tracebacks in the server log"
        )
    print(
        "\n# result: "
        + ("OK, no client timed out or disconnected" if not problems else "FAILED")
        + "".join(f"\n#   {p}" for p in problems),
        flush=True,
    )
    return 1 if problems else 0


def rss_at_end_of_storm(rows: list[dict[str, Any]]) -> float | None:
    storm = [r for r in rows if r["phase"] == "storm"]
    return round(storm[-1]["rss"], 1) if storm else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the storm")
    parser.add_argument("--ping-interval", type=float, default=2.0)
    parser.add_argument("--ping-timeout", type=float, default=3.0)
    parser.add_argument(
        "--window", type=int, default=10, help="broadcasts ahead of the slowest client (0: none)"
    )
    parser.add_argument("--rate", type=float, default=0.0, help="broadcasts/s cap (0: none)")
    parser.add_argument("--size", type=int, default=150, help="bytes of padding in a tick")
    parser.add_argument("--ramp", type=float, default=1000.0, help="connections per second")
    parser.add_argument("--progress", type=float, default=20.0, help="ms between progress reports")
    parser.add_argument("--drain", type=float, default=15.0, help="s for the last ticks to arrive")
    parser.add_argument("--tail", type=float, default=6.0, help="s of heartbeats only at the end")
    parser.add_argument("--sample", type=float, default=5.0, help="s between table rows")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
