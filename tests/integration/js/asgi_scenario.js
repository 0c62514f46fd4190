"use strict";
// tests/integration/asgi_app.py served by an ASGI server: the official client
// plays events, acks both ways, binary both ways, a broadcast, a namespace and
// disconnections, then fetches the client bundle and the other app's paths.
//
// Usage: node asgi_scenario.js <url> <transports>
const WebSocket = require("ws");
const { client, waitFor, emitWithAck, out, run, url, withTimeout, WAIT_MS } = require("./_common");

async function fetchText(path, init) {
  const res = await withTimeout(fetch(url + path, init), WAIT_MS, `fetch ${path}`);
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), length: res.headers.get("content-length"), text };
}

function otherWebSocket(path) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url.replace(/^http/, "ws") + path);
      let got = null;
      ws.on("message", (data) => (got = data.toString()));
      ws.on("close", (code) => resolve({ message: got, code }));
      ws.on("error", reject);
    }),
    WAIT_MS,
    `websocket ${path}`,
  );
}

run(async () => {
  const a = client("a", "/", { auth: { name: "a" } });
  const b = client("b", "/", { auth: { name: "b" } });
  // Multiplexed on a's connection: the namespace travels with the main one.
  const chat = client("chat", "/chat", { auth: { name: "a" } });
  const closer = client("closer", "/", { auth: { name: "closer" }, forceNew: true });
  await Promise.all([a, b, chat, closer].map((s) => waitFor(s, "connect")));
  await Promise.all([a, b, closer].map((s) => waitFor(s, "welcome")));
  await waitFor(chat, "chat-welcome");

  // Client -> server acks, several values.
  out({ client: "a", ack: "echo", args: await emitWithAck(a, "echo", { n: 1, s: "é" }) });
  const many = await new Promise((resolve) => a.emit("echo", 1, "two", [3], (...args) => resolve(args)));
  out({ client: "a", ack: "echo-many", args: many });

  // Server -> client acks.
  a.on("question", (q, fn) => fn(q.toUpperCase(), 42));
  a.emit("ask", "why?");
  await waitFor(a, "answer");

  // Binary both ways (a 70 000-byte payload spans several polling/ws chunks).
  const big = Buffer.alloc(70000, 7);
  big[0] = 1;
  const bin = await emitWithAck(a, "bin", Buffer.from([1, 2, 3, 250]));
  out({ client: "a", ack: "bin", args: [bin] });
  await waitFor(a, "bin-back");
  const bigAck = await emitWithAck(b, "bin", big);
  out({ client: "b", ack: "bin-big", args: [{ size: bigAck.reversed.length, last: bigAck.reversed[bigAck.reversed.length - 1] }] });

  // Broadcast to every client of "/".
  a.emit("shout", "hi all");
  await Promise.all([a, b, closer].map((s) => waitFor(s, "shouted")));

  // The namespace: room broadcast and ack.
  out({ client: "chat", ack: "say", args: [await emitWithAck(chat, "say", "hello chat")] });
  await waitFor(chat, "said");

  // Disconnections: kicked by the server, leaving a namespace, closing the engine.
  b.emit("kick");
  await waitFor(b, "disconnect");
  chat.disconnect();
  await waitFor(chat, "disconnect");
  closer.io.engine.close();
  await waitFor(closer, "disconnect");

  // The client bundle and the other ASGI app.
  const bundle = await fetchText("/socket.io/socket.io.js");
  out({ bundle: { status: bundle.status, type: bundle.type, length: Number(bundle.length), size: bundle.text.length, hasIo: bundle.text.includes("io") } });
  const other = await fetchText("/other/page?x=1");
  out({ other: { status: other.status, json: JSON.parse(other.text) } });
  const posted = await fetchText("/other/form", { method: "POST", body: "field=value" });
  out({ otherPost: { status: posted.status, json: JSON.parse(posted.text) } });
  out({ otherWs: await otherWebSocket("/other/ws") });
});
