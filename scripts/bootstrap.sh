#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: creates .venv with the exact
# versions of requirements/dev.txt (hashes checked), installs the package in it
# (editable, with the compiled accelerator), and the npm peers of the tests from
# tests/js/package-lock.json. Idempotent: a second run only checks that
# everything is in place. scripts/lock refreshes the lock files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

stamp=.venv/.socketwire-installed
# Reinstalled (and the compiled accelerator rebuilt) when any of these change.
want="$(cat requirements/dev.txt pyproject.toml setup.py src/socketwire/_speedups.c src/socketwire/_fanout.c | sha1sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # A fresh virtualenv each time the lock changes: nothing left over from an
  # earlier set of versions.
  echo "bootstrap: creating .venv from requirements/dev.txt" >&2
  rm -rf .venv
  "$PY" -m venv .venv
  "${PIP[@]}" install --require-hashes --no-deps -r requirements/dev.txt
  # The lock already holds every dependency, and setuptools for the build.
  "${PIP[@]}" install --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--with-npm" ]; then
  # The cluster tests run a real redis-server (started and stopped by the tests).
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "bootstrap: installing redis-server" >&2
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    # Debian starts a system-wide instance on 6379; the tests start their own.
    (service redis-server stop || true) >/dev/null 2>&1
  fi
  # The nodes tests run a real nginx (started by the tests with their own config).
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "bootstrap: installing nginx" >&2
    apt-get update -qq && apt-get install -y -qq nginx >/dev/null
    # Debian starts a system-wide nginx on port 80; the tests start their own.
    (service nginx stop || true) >/dev/null 2>&1
  fi
  if ! command -v node >/dev/null 2>&1; then
    echo "bootstrap: installing nodejs and npm" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  lock_stamp=tests/js/node_modules/.socketwire-lock
  want_lock="$(sha1sum tests/js/package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$want_lock" ]; then
    echo "bootstrap: installing npm peers in tests/js" >&2
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want_lock" > "$lock_stamp"
  fi
  # Chromium, for the browser tests (tests/browser, driven by Playwright).
  if [ ! -x /usr/bin/chromium ]; then
    echo "bootstrap: installing chromium" >&2
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  fi
  # esbuild, for js/build.sh (the browser client's minified files).
  js_stamp=js/node_modules/.socketwire-lock
  want_js="$(sha1sum js/package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$js_stamp" ] || [ "$(cat "$js_stamp")" != "$want_js" ]; then
    echo "bootstrap: installing the client's build tools in js" >&2
    (cd js && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want_js" > "$js_stamp"
  fi
fi
