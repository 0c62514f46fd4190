"""Where each server's CPU per operation went in a run of the shared rig.

A benchmark tool, not a test. Reads a run's results (``~/.cache/sio-bench/
results/RUN.jsonl``) and prints, per scenario and server, the medians over the
repetitions of: server CPU per operation, its user and system (kernel) parts,
the server's and the load generator's CPU utilisation (cores) and the
operations per second. Two things the rig's own table does not put side by
side, and which say what a target can still be met by:

* the system part alone, against a target of ``RATIO`` x the better of the
  ``--against`` servers (the rig's ratio): when a server's kernel time per
  operation is already above the target, no change to its own code meets it;
* utilisation and throughput together: a server that uses a whole core in a
  phase the load generator limits pays, per operation, one core divided by
  the generator's rate, however little its own work is.

    .venv/bin/python bench/cpu_split.py ~/.cache/sio-bench/results/20261206-200831.jsonl
    .venv/bin/python bench/cpu_split.py RUN.jsonl --server socketwire --against node-uws bun
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

# The scenario, the size's name ("w" for echo's window, "n" for clients) and the size.
Key = tuple[str, str, int]
# A server this busy never waits for work: it pays its whole core whatever it does.
BUSY = 0.95


def load(path: Path) -> dict[Key, dict[str, list[dict[str, Any]]]]:
    """The run's result records: scenario and size, then server, then repetitions."""
    out: dict[Key, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    with path.open() as f:
        for line in f:
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec.get("type") != "result" or not rec.get("ops"):
                continue
            params = rec.get("params") or {}
            name = "w" if "w" in params else "n"
            out[(rec["scenario"], name, int(params.get(name) or 0))][rec["server"]].append(rec)
    return out


def split(recs: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over the repetitions (µs per operation, cores, operations/s)."""

    def med(field: str, per_op: bool = False) -> float:
        values = [
            float(r[field]) / float(r["ops"]) * 1e6 if per_op else float(r[field]) for r in recs
        ]
        return statistics.median(values)

    return {
        "cpu": med("srv_cpu_us_per_op"),
        "user": med("srv_cpu_user_s", per_op=True),
        "sys": med("srv_cpu_sys_s", per_op=True),
        "util": med("srv_cpu_util"),
        "lg": med("lg_cpu_util"),
        "rate": med("ops_per_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run's .jsonl from the rig's results folder")
    parser.add_argument("--server", default="socketwire", help="the server held to the target")
    parser.add_argument(
        "--against", nargs="+", default=["node-uws", "bun"], help="the servers of the ratio"
    )
    parser.add_argument("--ratio", type=float, default=0.8, help="the target ratio")
    args = parser.parse_args()

    order = [*args.against, args.server]
    print(
        f"{'scenario':<16} {'server':<11} {'CPU/op':>8} {'user':>7} {'system':>7} "
        f"{'util':>5} {'LG':>5} {'ops/s':>9}"
    )
    for (scenario, name, size), servers in sorted(load(args.run).items()):
        label = f"{scenario} {name}={size}"
        parts = {server: split(recs) for server, recs in servers.items() if server in order}
        for server in order:
            if server in parts:
                p = parts[server]
                print(
                    f"{label:<16} {server:<11} {p['cpu']:>8.2f} {p['user']:>7.2f} "
                    f"{p['sys']:>7.2f} {p['util']:>5.2f} {p['lg']:>5.2f} {p['rate']:>9,.0f}"
                )
        others = [parts[server]["cpu"] for server in args.against if server in parts]
        if others and args.server in parts:
            target = args.ratio * min(others)
            mine = parts[args.server]
            verdict = "met" if mine["cpu"] <= target else "missed"
            if mine["cpu"] > target and mine["sys"] > target:
                verdict += "; its system time alone is above the target"
            elif mine["cpu"] > target and min(p["util"] for p in parts.values()) >= BUSY:
                verdict += "; every server used a whole core: CPU/op is that core over the rate"
            print(f"{'':<16} target {target:.2f}: {verdict}")
        print()


if __name__ == "__main__":
    main()
