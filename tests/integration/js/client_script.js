"use strict";
// examples/client_script.py: load the page, then the bundle it references, and
// run that bundle as a browser would (in a sandbox whose globals are a
// browser's: location, navigator, WebSocket, fetch, XMLHttpRequest).
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const WebSocket = require("ws");
const { XMLHttpRequest } = require("xmlhttprequest-ssl");
const { url, transports, upgradeMode, out, waitFor, withTimeout, WAIT_MS } = require("./_common");

async function main() {
  const page = await fetch(url + "/");
  const html = await page.text();
  const src = /<script src="([^"]+)"><\/script>/.exec(html)[1];
  out({ page: { status: page.status, type: page.headers.get("content-type"), script: src } });

  const res = await fetch(url + src);
  const code = await res.text();
  const packaged = fs.readFileSync(path.join(__dirname, "../../../src/socketwire/static/socket.io.js"), "utf8");
  out({ bundle: { status: res.status, type: res.headers.get("content-type"), same_as_package: code === packaged } });

  const origin = new URL(url);
  const window = {
    location: { href: url + "/", protocol: origin.protocol, host: origin.host, hostname: origin.hostname, port: origin.port },
    navigator: { userAgent: "sandboxed-browser" },
    WebSocket,
    XMLHttpRequest,
    fetch,
    AbortController,
    URL,
    URLSearchParams,
    Blob,
    btoa,
    atob,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    console,
  };
  window.window = window;
  window.self = window;
  vm.createContext(window);
  vm.runInContext(code, window, { filename: src });
  out({ bundle_io: { io: typeof window.io, Manager: typeof (window.io && window.io.Manager) } });

  // What the page's script does: io(), then "hello" with an ack.
  const socket = window.io({ transports, reconnection: false });
  const upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  await withTimeout(new Promise((resolve) => socket.on("connect", resolve)), WAIT_MS, "connect");
  const reply = await withTimeout(
    new Promise((resolve) => socket.emit("hello", window.navigator.userAgent, resolve)),
    WAIT_MS,
    "hello ack",
  );
  out({ client: "page", id: socket.id, reply });
  if (upgradeMode) await withTimeout(upgraded, WAIT_MS, "upgrade");
  out({ client: "page", transport: socket.io.engine.transport.name });
  socket.disconnect();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
