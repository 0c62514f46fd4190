// socketwire's browser client run by Node 20 (fetch built in, WebSocket from the
// `ws` package) against a peer server of tests/client/peers.py.
//
// Usage: node scenario.mjs URL MODE BUILD [STEP...]
//   MODE: polling | websocket | upgrade
//   BUILD: esm (socket.io.esm.min.js) | classic (socket.io.js) | msgpack (socket.io.msgpack.min.js)
// Prints one JSON line per step: {"step": name, "ok": true} or {"step", "error"}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const require = createRequire(import.meta.url);
globalThis.WebSocket = require("ws");
const STATIC = new URL("../../src/socketwire/static/", import.meta.url);

const [url, mode, build, ...only] = process.argv.slice(2);
let io;
if (build === "classic" || build === "msgpack") {
  const file = build === "classic" ? "socket.io.js" : "socket.io.msgpack.min.js";
  vm.runInThisContext(readFileSync(new URL(file, STATIC), "utf8"));
  io = globalThis.io;
} else io = (await import(new URL("socket.io.esm.min.js", STATIC))).io;

const WAIT = Number(process.env.SCENARIO_WAIT || 10000);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const base = { transports, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200 };

// Resolves with the arguments of the next `event` of `emitter`, or fails after WAIT.
const next = (emitter, event) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${WAIT} ms`)), WAIT);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
const equal = (a, b, what) => {
  const sa = JSON.stringify(a, replacer);
  const sb = JSON.stringify(b, replacer);
  if (sa !== sb) throw new Error(`${what}: ${sa} !== ${sb}`);
};
function replacer(k, v) {
  if (v instanceof ArrayBuffer) return { ab: [...new Uint8Array(v)] };
  if (ArrayBuffer.isView(v)) return { ab: [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] };
  return v;
}
async function connected(socket) {
  if (!socket.connected) await next(socket, "connect");
  if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") await next(socket.io.engine, "upgrade");
  return socket;
}

const steps = {
  async connect() {
    const s = await connected(io(url, base));
    if (!s.id || !s.connected || s.disconnected || !s.active) throw new Error("state after connect");
    const who = await s.emitWithAck("whoami");
    equal(who.sid, s.id, "sid");
    equal(who.transport, mode === "polling" ? "polling" : "websocket", "transport");
    s.disconnect();
    if (s.connected || s.active) throw new Error("state after disconnect");
  },
  async acks() {
    const s = await connected(io(url, base));
    equal(await s.emitWithAck("echo", 1, "two", { three: [3] }), 1, "emitWithAck");
    const [a, b] = await new Promise((r) => s.emit("echo", "x", null, (...args) => r(args)));
    equal([a, b], ["x", null], "callback ack");
    s.on("q", (n, ack) => ack(n + 1, "back"));
    const answer = next(s, "answer");
    await s.emitWithAck("ask", "q", 41);
    equal(await answer, ["q", [42, "back"]], "server to client ack");
    const err = await new Promise((r) => s.timeout(100).emit("nobody_answers", (e) => r(e)));
    equal(err && err.message, "operation has timed out", "timeout");
    try {
      await s.timeout(100).emitWithAck("nobody_answers");
      throw new Error("emitWithAck did not time out");
    } catch (e) {
      equal(e.message, "operation has timed out", "emitWithAck timeout");
    }
    s.disconnect();
  },
  async binary() {
    const s = await connected(io(url, base));
    const payload = {
      ab: new Uint8Array([0, 1, 255]).buffer,
      list: [new Uint8Array([7, 8]), "text", { deep: new Uint16Array([258]) }],
    };
    const got = await s.emitWithAck("echo", payload);
    equal(got, payload, "binary echo");
    if (!(got.ab instanceof ArrayBuffer)) throw new Error("binary arrives as ArrayBuffer");
    if (build !== "msgpack") {
      // A Blob is read when its packet is written (msgpack encodes synchronously: no Blob).
      const blob = new Blob([new Uint8Array([9, 9])]);
      equal(await s.emitWithAck("echo", blob), new Uint8Array([9, 9]).buffer, "Blob");
    }
    const bin = next(s, "bin");
    await s.emitWithAck("echo_event", "bin", new Uint8Array([4, 5, 6]), "after");
    equal(await bin, [new Uint8Array([4, 5, 6]).buffer, "after"], "binary event from the server");
    s.disconnect();
  },
  async namespaces() {
    const opts = { transports, reconnectionDelay: 50 };
    const main = await connected(io(url, opts));
    const chat = await connected(io(url + "/chat", opts));
    if (chat.io !== main.io) throw new Error("namespaces share one manager");
    equal((await chat.emitWithAck("whoami")).nsp, "/chat", "namespace");
    equal((await main.emitWithAck("engine_count")) >= 1, true, "engine count");
    const refused = io(url + "/private", { ...opts, auth: { token: "wrong" } });
    const [err] = await next(refused, "connect_error");
    equal([err.message, err.data], ["not authorized", { reason: "bad token" }], "connect_error");
    const ok = await connected(io(url + "/private", { ...opts, forceNew: true, auth: (cb) => cb({ token: "secret" }) }));
    equal((await ok.emitWithAck("whoami")).auth, { token: "secret" }, "auth callback");
    // A query string in the URL replaces the `query` option, as with the official client.
    const q = await connected(io(url + "/?a=1", { ...opts, forceNew: true, query: { b: "2" } }));
    const who = await q.emitWithAck("whoami");
    equal([who.query.a, who.query.b], ["1", undefined], "query of the URL");
    const q2 = await connected(io(url, { ...opts, forceNew: true, query: { b: "2" } }));
    equal((await q2.emitWithAck("whoami")).query.b, "2", "query option");
    for (const s of [main, chat, refused, ok, q, q2]) s.disconnect();
  },
  async rooms() {
    const a = await connected(io(url, base));
    const b = await connected(io(url, base));
    await a.emitWithAck("join", "r1");
    await b.emitWithAck("join", "r1");
    const got = [next(a, "hello"), next(b, "hello")];
    await a.emitWithAck("to_room", "r1", "hello", { n: 1 });
    equal(await Promise.all(got), [[{ n: 1 }], [{ n: 1 }]], "room broadcast");
    a.disconnect();
    b.disconnect();
  },
  async catchall() {
    const s = await connected(io(url, base));
    const seen = [];
    s.onAny((ev, ...args) => seen.push(["in", ev, ...args]));
    s.prependAny((ev) => seen.push(["first", ev]));
    s.onAnyOutgoing((ev, ...args) => seen.push(["out", ev, ...args]));
    const got = next(s, "message");
    s.send("hi");
    equal(await got, ["hi"], "send echoes as message");
    s.offAny();
    s.volatile.emit("echo", "v");
    s.compress(false).emit("echo", "c");
    equal(seen.slice(0, 4), [["out", "message", "hi"], ["first", "message"], ["in", "message", "hi"], seen[3]], "catch-all");
    s.disconnect();
  },
  async reasons() {
    const s = await connected(io(url, base));
    const gone = next(s, "disconnect");
    s.emit("server_disconnect");
    equal((await gone)[0], "io server disconnect", "server disconnect");
    if (s.active) throw new Error("no reconnection after io server disconnect");
    const t = await connected(io(url, base));
    const dropped = next(t, "disconnect");
    const back = next(t.io, "reconnect");
    t.emit("close_transport");
    equal((await dropped)[0], "transport close", "transport close");
    await back;
    await next(t, "connect").catch(() => {});
    if (!t.connected) throw new Error("reconnected");
    const c = await connected(io(url, base));
    const closed = next(c, "disconnect");
    c.disconnect();
    equal((await closed)[0], "io client disconnect", "client disconnect");
    const p = await connected(io(url, base));
    const parse = next(p, "disconnect");
    p.emit("garbage");
    equal((await parse)[0], "parse error", "parse error");
    p.disconnect();
    t.disconnect();
  },
  async retries() {
    const s = await connected(io(url, { ...base, retries: 3, ackTimeout: 200 }));
    const key = "k" + Math.random();
    equal(await s.emitWithAck("flaky", key, "v"), "ok", "retries");
    s.disconnect();
  },
};

// Steps that need a server configured for them, run only when named.
const special = {
  // Peer with connection state recovery: what was broadcast while the client
  // was away arrives after it reconnects, and the socket says it recovered.
  // Emits queued while a POST is in flight go out in several POSTs when together
  // they pass the handshake's maxPayload (the peer's is 2,000 bytes here).
  async maxpayload() {
    const s = await connected(io(url, base));
    equal(s.io.engine.maxPayload, 2000, "maxPayload");
    const key = "mp" + Math.random();
    const sent = [];
    for (let i = 0; i < 30; i++) {
      sent.push(i + ":" + "é".repeat(150)); // 300 bytes of UTF-8 each
      s.emit("record", key, sent[i]);
    }
    equal(await s.emitWithAck("records", key), sent, "all recorded, in order");
    if (!s.connected || s.recovered) throw new Error("the session did not survive");
    s.disconnect();
  },
  async recovery() {
    const s = await connected(io(url, base));
    const id = s.id;
    // A broadcast ends with its offset: the client sends the last one back.
    const tick = next(s, "tick");
    await s.emitWithAck("broadcast", "tick", 1);
    const [one, offset] = await tick;
    equal([one, typeof offset], [1, "string"], "broadcast with its offset");
    const missed = next(s, "missed");
    const back = new Promise((resolve) => s.on("connect", () => s.recovered && resolve()));
    s.emit("close_then_broadcast", "missed", { n: 7 });
    const [value] = await missed;
    equal(value, { n: 7 }, "missed broadcast");
    await back;
    equal([s.recovered, s.id], [true, id], "recovered with the same id");
    s.disconnect();
  },
  // Peer with pingInterval 300 ms and pingTimeout 200 ms that stops pinging.
  async pingtimeout() {
    const s = await connected(io(url, { ...base, reconnection: false }));
    const gone = next(s, "disconnect");
    await s.emitWithAck("stop_pings");
    equal((await gone)[0], "ping timeout", "ping timeout");
  },
  // The test stops the server when it reads {"ready": "restart"}, then starts it
  // again on the same port: the client reconnects by itself.
  async restart() {
    const s = await connected(io(url, base));
    const events = [];
    for (const ev of ["reconnect_attempt", "reconnect_error", "reconnect"]) s.io.on(ev, () => events.push(ev));
    const gone = next(s, "disconnect");
    console.log(JSON.stringify({ ready: "restart" }));
    // A killed server: the WebSocket closes ("transport close"), or the pending
    // poll fails ("transport error"), as with the official client.
    const [reason] = await gone;
    equal(["transport close", "transport error"].includes(reason), true, "disconnect reason " + reason);
    await next(s, "connect");
    equal(events.includes("reconnect_attempt") && events[events.length - 1] === "reconnect", true, "manager events " + events);
    equal((await s.emitWithAck("echo", "again")), "again", "after reconnection");
    s.disconnect();
  },
};

for (const name of only.length ? only : Object.keys(steps)) {
  try {
    await (steps[name] || special[name])();
    console.log(JSON.stringify({ step: name, ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ step: name, error: String(e && e.stack) }));
  }
}
process.exit(0);
