#!/usr/bin/env bash
# Runs the shared benchmark rig with socketwire beside socket.io on Node and
# python-socketio. Arguments go to the rig (e.g. --quick, --reps 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RIG="${BENCH_RIG:-$ROOT/../shared/bench}"
bash "$ROOT/scripts/bootstrap.sh"
exec "$RIG/run.sh" --server socketwire="$ROOT/.venv/bin/python $ROOT/bench/server.py {port}" "$@"
