#!/usr/bin/env bash
# System calls a server enters per echo, counted with the kernel's tracepoints.
#
#   bench/echo_syscalls.sh PORT WINDOW COMMAND...
#   bench/echo_syscalls.sh 19901 10 env PYTHONPATH=$PWD/src $PWD/.venv/bin/python $PWD/bench/server.py 19901
#   bench/echo_syscalls.sh 19902 10 node servers/node_uws.js 19902     # run in ../shared/bench's folder
#
# Starts COMMAND (a server on 127.0.0.1:PORT, run from the shared rig's folder),
# drives a 6 s echo session of the rig's load generator on Bun (50 clients,
# WINDOW emits in flight each), counts the server's read/write/recvfrom/sendto/
# epoll/futex system calls for 3 s in its middle with `perf stat`, and prints
# them per echo. A benchmark, not a test; needs perf with tracepoints (root).
set -euo pipefail
port=$1 window=$2
shift 2
rig="${RIG:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)}"
cd "$rig"
out=$(mktemp -d)
"$@" >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; pkill -P "$server" 2>/dev/null; rm -rf "$out"' EXIT
sleep 2
events=$(printf 'syscalls:sys_enter_%s,' read write recvfrom sendto writev epoll_wait epoll_pwait epoll_pwait2 futex)
node_modules/.bin/bun loadgen.js --port "$port" --pid "$server" --server probe \
  --spec "{\"kind\":\"echo\",\"c\":50,\"w\":[$window],\"warmup_s\":1,\"duration_s\":6}" \
  >"$out/lg.jsonl" 2>/dev/null &
lg=$!
sleep 3.5
perf stat -e "${events%,}" -p "$server" -x, -o "$out/perf.csv" -- sleep 3
wait "$lg"
python3 - "$out/lg.jsonl" "$out/perf.csv" <<'PY'
import json, sys
rec = next(r for r in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{")))
           if r.get("scenario") == "echo")
echoes = rec["ops_per_s"] * 3  # perf counted for 3 s
parts = []
for line in open(sys.argv[2]):
    f = line.strip().split(",")
    if len(f) > 3 and f[0].replace(".", "").isdigit() and float(f[0]):
        parts.append(f"{f[2].split('sys_enter_')[1]} {float(f[0]) / echoes:.3f}")
print(f"{rec['ops_per_s']:.0f} echoes/s; per echo: " + ", ".join(parts))
PY
