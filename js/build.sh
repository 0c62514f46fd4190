#!/usr/bin/env bash
# Builds the browser client served by socketwire (src/socketwire/static) from
# js/client. The outputs are committed, so that building the wheel needs no Node;
# tests/js_client/test_build.py rebuilds them and fails when they differ.
#
#   socket.io.js             the readable source as a classic script (global `io`)
#   socket.io.min.js (+map)  the same, minified
#   socket.io.esm.min.js     an ES module (+map); socket.io.d.ts declares its types
#   socket.io.msgpack.min.js the classic script speaking socket.io-msgpack-parser's
#                            format by default (+map)
#
# Usage: js/build.sh [OUT_DIR]   (npm ci in js/ first; OUT_DIR defaults to the package)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../src/socketwire/static}"
mkdir -p "$out"
esbuild="$here/node_modules/.bin/esbuild"
[ -x "$esbuild" ] || (cd "$here" && npm ci --no-audit --no-fund >/dev/null)

# The readable script: the module wrapped in a function, its export line
# replaced by the global.
{
  echo "(() => {"
  echo '"use strict";'
  grep -v '^export ' "$here/client/socket.io.js"
  echo "globalThis.io = lookup;"
  echo "})();"
} > "$out/socket.io.js"

common=(--bundle --minify --target=es2020 --sourcemap --legal-comments=none --log-level=warning)
(cd "$here/client" &&
  "$esbuild" global.js "${common[@]}" --format=iife --outfile="$out/socket.io.min.js" &&
  "$esbuild" socket.io.js "${common[@]}" --format=esm --outfile="$out/socket.io.esm.min.js" &&
  "$esbuild" global-msgpack.js "${common[@]}" --format=iife --outfile="$out/socket.io.msgpack.min.js")
# Source maps name their sources relative to the output folder: keep the file
# names only, so that the maps do not depend on where they were built.
node -e '
const fs = require("fs");
for (const f of process.argv.slice(1)) {
  const map = JSON.parse(fs.readFileSync(f, "utf8"));
  map.sources = map.sources.map((s) => s.split("/").pop());
  fs.writeFileSync(f, JSON.stringify(map));
}' "$out/socket.io.min.js.map" "$out/socket.io.esm.min.js.map" "$out/socket.io.msgpack.min.js.map"
cp "$here/client/socket.io.d.ts" "$out/socket.io.d.ts"
