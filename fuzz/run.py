#!/usr/bin/env python3
"""Long fuzzing runs of socketwire's network parsers (outside the CI suite).

    .venv/bin/python fuzz/run.py --list
    .venv/bin/python fuzz/run.py sio msgpack --inputs 200000 --seconds 120
    .venv/bin/python fuzz/run.py --replay fuzz/crashes/sio-1a2b3c4d.bin

Each target runs in its own worker process, one after another, with atheris
(coverage-guided libFuzzer) when it is installed, else a plain randomized
mutation loop (``--engine random``).  A worker stops after ``--inputs`` inputs or
``--seconds`` seconds, whichever comes first.  An exception other than the
target's documented protocol errors, or a broken invariant, is a crash: the
shortest input of each distinct crash (same exception type at the same place) is
saved as ``fuzz/crashes/<target>-<signature>.bin`` with its traceback in a
``.txt`` beside it.  The exit status is 1 when any crash was found (or a worker
died), else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CRASH_DIR = HERE / "crashes"
CORPUS_DIR = HERE / "corpus"
LOG_DIR = HERE / "logs"

sys.path.insert(0, str(HERE))
if str(ROOT / "src") not in sys.path:
    sys.path.insert(1, str(ROOT / "src"))


# Every input runs this many Python frames deep, in a worker (atheris or not) and
# in --replay alike: how deep nesting has to go before a RecursionError depends
# on the stack already in use, so a saved input reproduces only at the same depth.
STACK_DEPTH = 100


def _depth() -> int:
    frame = sys._getframe(1)
    n = 0
    while frame is not None:
        n += 1
        frame = frame.f_back  # type: ignore[assignment]
    return n


def _descend(levels: int, fn: Any, data: bytes) -> None:
    if levels > 0:
        _descend(levels - 1, fn, data)
        return
    fn(data)


def call_at_depth(fn: Any, data: bytes) -> None:
    """``fn(data)`` run with exactly ``STACK_DEPTH`` frames below it."""
    _descend(max(0, STACK_DEPTH - _depth() - 1), fn, data)


def have_atheris() -> bool:
    try:
        import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------
# Crash bookkeeping (worker side)
# ---------------------------------------------------------------------------

_FRAME_RE = re.compile(r'File "([^"]*socketwire[^"]*)", line (\d+)')
_EXC_RE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ", re.M)


def signature(exc: BaseException) -> str:
    """The same bug gives the same signature: exception type and where it was raised."""
    name = type(exc).__name__
    if name == "ServerError":
        text = str(exc)
        frames = _FRAME_RE.findall(text)
        kinds = _EXC_RE.findall(text)
        where = f"{Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else text[:60]
        return f"ServerError[{kinds[-1] if kinds else '?'}]@{where}"
    frames = traceback.extract_tb(exc.__traceback__)
    if name == "OracleError" and len(frames) >= 2:
        # The check() call site names the invariant.
        last = frames[-2]
        return f"OracleError@{Path(last.filename).name}:{last.lineno}"
    inner = [f for f in frames if "socketwire" in f.filename] or list(frames)
    if not inner:
        return name
    last = inner[-1]
    return f"{name}@{Path(last.filename).name}:{last.lineno}"


class Stats:
    def __init__(self, target: str, engine: str, stats_path: Path, inputs: int, seconds: float):
        self.target = target
        self.engine = engine
        self.stats_path = stats_path
        self.limit = inputs
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.inputs = 0
        self.crash_inputs = 0
        self.unique: dict[str, dict[str, Any]] = {}
        self.next_write = self.start + 2.0

    def record(self, data: bytes, exc: BaseException) -> None:
        self.crash_inputs += 1
        sig = signature(exc)
        known = self.unique.get(sig)
        if known is not None:
            known["count"] += 1
            if len(data) >= known["length"]:
                return
        digest = hashlib.sha1(sig.encode()).hexdigest()[:10]
        CRASH_DIR.mkdir(parents=True, exist_ok=True)
        base = CRASH_DIR / f"{self.target}-{digest}"
        old = base.with_suffix(".bin")
        if known is None and old.exists() and old.stat().st_size <= len(data):
            # Kept from an earlier run, and no longer: count it, keep that file.
            self.unique[sig] = {
                "signature": sig,
                "file": str(old.relative_to(ROOT)),
                "length": old.stat().st_size,
                "count": 1,
                "exception": f"{type(exc).__name__}: {str(exc)[:300]}",
            }
            print(f"[{self.target}] NEW CRASH {sig} (shorter input kept: {old.name})", flush=True)
            self.write()
            return
        base.with_suffix(".bin").write_bytes(data)
        tb = "".join(traceback.format_exception(exc))
        base.with_suffix(".txt").write_text(
            f"target: {self.target}\nsignature: {sig}\nlength: {len(data)}\n"
            f"input: {data[:2000]!r}\n\n{tb}",
            encoding="utf-8",
        )
        count = known["count"] if known is not None else 1
        self.unique[sig] = {
            "signature": sig,
            "file": str(base.with_suffix(".bin").relative_to(ROOT)),
            "length": len(data),
            "count": count,
            "exception": f"{type(exc).__name__}: {str(exc)[:300]}",
        }
        if known is None:
            print(f"[{self.target}] NEW CRASH {sig} -> {base.name}.bin", flush=True)
        self.write()

    def write(self, done: bool = False) -> None:
        elapsed = time.monotonic() - self.start
        payload = {
            "target": self.target,
            "engine": self.engine,
            "inputs": self.inputs,
            "seconds": round(elapsed, 1),
            "crash_inputs": self.crash_inputs,
            "unique": list(self.unique.values()),
            "done": done,
        }
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        tmp.replace(self.stats_path)

    def tick(self) -> bool:
        """Count one input; True when the budget is spent."""
        self.inputs += 1
        now = time.monotonic()
        if now >= self.next_write:
            self.next_write = now + 2.0
            self.write()
            print(
                f"[{self.target}] {self.inputs} inputs, {now - self.start:.0f}s, "
                f"{len(self.unique)} unique crash(es)",
                flush=True,
            )
        return self.inputs >= self.limit or now >= self.deadline


def seed_corpus(target: Any, rng: random.Random, count: int) -> list[bytes]:
    return [target.generate(rng)[: target.max_len] for _ in range(count)]


def worker(args: argparse.Namespace) -> None:
    engine = args.engine
    if engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["socketwire"]):
            import targets
    else:
        import targets

    target = targets.TARGETS[args.worker]
    stats = Stats(target.name, engine, Path(args.stats), args.inputs, args.seconds)
    if target.setup is not None:
        target.setup()
    run = target.run
    allowed = target.allowed

    def one(data: bytes) -> None:
        try:
            call_at_depth(run, data)
        except allowed:
            pass
        except Exception as exc:
            stats.record(data, exc)
        if stats.tick():
            stats.write(done=True)
            print(
                f"[{target.name}] done: {stats.inputs} inputs in "
                f"{time.monotonic() - stats.start:.1f}s, {len(stats.unique)} unique crash(es)",
                flush=True,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    rng = random.Random(args.seed)
    if engine == "atheris":
        corpus = CORPUS_DIR / target.name
        corpus.mkdir(parents=True, exist_ok=True)
        if not any(corpus.iterdir()):
            for i, data in enumerate(seed_corpus(target, rng, 300)):
                (corpus / f"seed-{i:04d}").write_bytes(data)
        dict_path = CORPUS_DIR / f"{target.name}.dict"
        dict_path.write_text(
            "".join(
                '"' + "".join(f"\\x{b:02x}" for b in tok) + '"\n' for tok in target.tokens if tok
            ),
            encoding="ascii",
        )

        def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
            r = random.Random(seed)
            if r.random() < 0.5:
                out: bytes = atheris.Mutate(data, max_size)
                return out
            return targets.mutate(target, data, r, max_size)

        CRASH_DIR.mkdir(parents=True, exist_ok=True)
        libfuzzer_args = [
            sys.argv[0],
            str(corpus),
            f"-max_len={target.max_len}",
            f"-dict={dict_path}",
            f"-seed={args.seed}",
            f"-max_total_time={int(args.seconds) + 60}",
            "-timeout=30",
            "-rss_limit_mb=8192",
            "-print_final_stats=1",
            f"-artifact_prefix={CRASH_DIR}/{target.name}-libfuzzer-",
        ]
        atheris.Setup(libfuzzer_args, one, custom_mutator=custom_mutator)
        atheris.Fuzz()
        stats.write(done=True)  # libFuzzer's own limits ended the run
        return

    pool = seed_corpus(target, rng, 300)
    while True:
        r = rng.random()
        data = target.generate(rng) if r < 0.3 else targets.mutate(target, rng.choice(pool), rng)
        if rng.random() < 0.01:
            if len(pool) >= 5000:
                pool[rng.randrange(len(pool))] = data
            else:
                pool.append(data)
        one(data)


# ---------------------------------------------------------------------------
# Orchestration (parent side)
# ---------------------------------------------------------------------------


def run_target(name: str, args: argparse.Namespace, engine: str, seed: int) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    stats_path = LOG_DIR / f"{name}.stats.json"
    stats_path.unlink(missing_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--engine",
        engine,
        "--inputs",
        str(args.inputs),
        "--seconds",
        str(args.seconds),
        "--seed",
        str(seed),
        "--stats",
        str(stats_path),
    ]
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.seconds + 180, check=False
            )
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.monotonic() - started
    try:
        stats: dict[str, Any] = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stats = {"target": name, "engine": engine, "inputs": 0, "unique": [], "crash_inputs": 0}
    stats["exit"] = code
    stats["wall"] = round(wall, 1)
    stats["died"] = code != 0 or not stats.get("done")
    stats["log"] = str(log_path.relative_to(ROOT))
    return stats


def append_results(path: Path, results: list[dict[str, Any]], command: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        f"\n### Run of {stamp}\n",
        f"Command: `{command}`\n",
        "| target | engine | inputs | seconds | crash inputs | unique crashes | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in results:
        result = "died" if s["died"] else ("CRASH" if s["unique"] else "ok")
        lines.append(
            f"| {s['target']} | {s['engine']} | {s['inputs']} | {s.get('seconds', '?')} | "
            f"{s['crash_inputs']} | {len(s['unique'])} | {result} |"
        )
    total = sum(s["inputs"] for s in results)
    lines.append(f"\nTotal: {total} inputs.\n")
    for s in results:
        for u in s["unique"]:
            lines.append(f"- {s['target']}: `{u['signature']}` ({u['count']}x), `{u['file']}`")
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def replay(files: list[str], target_name: str | None) -> int:
    import targets

    status = 0
    for name in files:
        path = Path(name)
        tname = target_name
        if tname is None:
            tname = next(
                (
                    t
                    for t in sorted(targets.TARGETS, key=len, reverse=True)
                    if path.name.startswith(t + "-")
                ),
                None,
            )
        if tname is None:
            print(f"{path}: cannot tell the target (use --target)")
            return 2
        target = targets.TARGETS[tname]
        data = path.read_bytes()
        print(f"== {path} ({tname}, {len(data)} bytes)")
        try:
            call_at_depth(target.run, data)
        except target.allowed as exc:
            print(f"allowed: {type(exc).__name__}: {exc}")
        except Exception:
            traceback.print_exc()
            status = 1
        else:
            print("no error")
        if target.teardown is not None:
            target.teardown()
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--inputs", type=int, default=200_000, help="inputs per target")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--results", type=Path, help="append a summary table to this file")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run saved inputs")
    parser.add_argument("--target", help="the target of --replay files")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(args)
        return 0
    if args.replay:
        return replay(args.replay, args.target)

    import targets

    if args.list:
        for t in targets.TARGETS.values():
            print(f"{t.name:12} {t.doc}")
        return 0
    names = args.targets or list(targets.TARGETS)
    unknown = [n for n in names if n not in targets.TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; see --list")
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if have_atheris() else "random"
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"engine {engine}, seed {seed}, {len(names)} target(s)", flush=True)

    results = []
    for name in names:
        print(f"--- {name}: up to {args.inputs} inputs / {args.seconds:.0f}s", flush=True)
        stats = run_target(name, args, engine, seed)
        results.append(stats)
        state = "DIED" if stats["died"] else "ok"
        print(
            f"{name:12} {stats['inputs']:>10} inputs {stats.get('seconds', '?'):>7}s  "
            f"crash inputs {stats['crash_inputs']:>6}  unique crashes {len(stats['unique'])}  "
            f"worker {state} (exit {stats['exit']}, log {stats['log']})",
            flush=True,
        )
        for u in stats["unique"]:
            print(f"    CRASH {u['signature']} x{u['count']}: {u['file']}\n      {u['exception']}")
    total = sum(s["inputs"] for s in results)
    unique = sum(len(s["unique"]) for s in results)
    print(f"TOTAL {total} inputs, {unique} unique crash(es)", flush=True)
    if args.results:
        append_results(args.results, results, command)
    return 1 if unique or any(s["died"] for s in results) else 0


if __name__ == "__main__":
    sys.exit(main())
