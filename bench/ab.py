"""Two trees of socketwire, A/B, with the shared rig's load generator.

A benchmark, not a test. Starts ``bench/server.py`` from each tree (``PYTHONPATH``
set to the tree's ``src``) and drives it with the rig's ``loadgen.js`` on Bun, in
interleaved rounds (A, B, then B, A...), so drift hits both trees alike; prints
the median server CPU per operation (and its user, system and scheduler parts)
of each phase: connect, broadcast and rooms at 1,000 clients, connect and
broadcast at 10,000; for the connect phases also the server's resident memory
per connection once they settled (the rig's idle RSS figure).

    .venv/bin/python bench/ab.py BEFORE_SRC AFTER_SRC [--rounds 3]

``BEFORE_SRC`` is the ``src`` folder of another checkout, e.g. one made with
``git worktree add /tmp/base <commit>`` (copy the compiled modules of this tree
into it when it has none). The rig lives in ``../shared/bench`` (``--rig``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

SESSIONS: dict[str, dict[str, Any]] = {
    "1k": {
        "kind": "conns",
        "n": 1000,
        "conc": 100,
        "settle_s": 1,
        "broadcast": [{"m": 500, "s": 100, "timeout_s": 60}],
        "rooms": {"rooms": 100, "m": 20, "s": 100, "join_conc": 200, "timeout_s": 60},
        "hard_timeout_s": 180,
        "warmup": {"conns": 200, "echoes": 5, "pause_ms": 500},
    },
    "10k": {
        "kind": "conns",
        "n": 10000,
        "conc": 100,
        "settle_s": 2,
        "broadcast": [{"m": 50, "s": 100, "timeout_s": 60}],
        "rooms": None,
        "hard_timeout_s": 240,
        "warmup": {"conns": 200, "echoes": 5, "pause_ms": 500},
    },
}
PHASES = ("connect", "broadcast", "rooms")


def run_session(src: str, rig: Path, port: int, spec: dict[str, Any]) -> list[dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=src)
    server = subprocess.Popen([sys.executable, str(HERE / "server.py"), str(port)], env=env)
    try:
        time.sleep(1.5)  # the server's start-up, outside every measured phase
        out = subprocess.run(
            [
                str(rig / "node_modules" / ".bin" / "bun"),
                "loadgen.js",
                "--port",
                str(port),
                "--pid",
                str(server.pid),
                "--server",
                "ab",
                "--spec",
                json.dumps(spec),
            ],
            cwd=rig,
            capture_output=True,
            text=True,
            timeout=spec["hard_timeout_s"] + 60,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the src folder of the tree before the change")
    parser.add_argument("after", help="the src folder of the tree after it")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rig", type=Path, default=HERE.parent.parent / "shared" / "bench")
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    samples: dict[tuple[str, str, str], list[tuple[float, float, float, float, float]]] = {}
    port = 19600
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(trees)[::-1]
        for name in order:
            for session, spec in SESSIONS.items():
                port += 1
                for rec in run_session(trees[name], args.rig, port, spec):
                    if rec.get("scenario") not in PHASES or not rec.get("ops"):
                        continue
                    ops = rec["ops"]
                    samples.setdefault((session, rec["scenario"], name), []).append(
                        (
                            rec["srv_cpu_us_per_op"],
                            rec["srv_cpu_user_s"] / ops * 1e6,
                            rec["srv_cpu_sys_s"] / ops * 1e6,
                            rec.get("srv_cpu_sched_s", 0.0) / ops * 1e6,
                            rec.get("rss_per_conn_kb") or 0.0,
                        )
                    )
    print(f"medians of {args.rounds} rounds, µs of server CPU per operation")
    print(f"{'phase':<16}{'tree':<8}{'total':>8}{'user':>8}{'system':>8}{'sched':>8}{'KB/conn':>9}")
    for (session, phase, name), values in sorted(samples.items()):
        med = [statistics.median(v[i] for v in values) for i in range(5)]
        rss = f"{med[4]:>9.2f}" if med[4] else ""
        print(
            f"{session + ' ' + phase:<16}{name:<8}" + "".join(f"{m:>8.2f}" for m in med[:4]) + rss
        )


if __name__ == "__main__":
    main()
