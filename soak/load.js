"use strict";
// Soak load generator: N Socket.IO v5 clients over raw WebSockets (the `ws`
// package), speaking Engine.IO v4 / Socket.IO v5 by hand so that every ack is
// accounted for.
//
// Usage: node soak/load.js --url http://127.0.0.1:PORT --clients 10000 --seconds 600
//        [--interval 20] [--rooms 100] [--ramp 1000] [--drain 30] [--report 10]
//
// Each client connects (WebSocket-only transport), joins the room r<idx % rooms>
// and then, every `interval` seconds on average (exponential), does one of:
//   echo (70%)     42<id>["echo",{...}]            -> ack with the same value
//   bcast (5%)     42<id>["bcast",{room}]          -> the server broadcasts "q" with
//                  acks to the room; every member acks; the server answers
//                  {responses, timeout} to the requester
//   fanout (0.2%)  42<id>["fanout",{count:1,...}]  -> "tick" to every client
//   hop (4.8%)     leave its extra room, join another (two acks)
//   churn (20%)    disconnect cleanly (only with no ack pending; half of the time
//                  with a Socket.IO DISCONNECT first) and reconnect 0.1-2 s later
// Engine.IO pings are answered. Every 10 s one JSON line of counters goes to
// stdout (every `report` s); a separate monitor client asks the server for its own counters
// ("stats"). After `seconds`, actions stop, pending acks get `drain` seconds to
// arrive, a final line is printed (`"final": true`) and every client disconnects.

const WebSocket = require("ws");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const URL_BASE = option("url", "http://127.0.0.1:3000");
const CLIENTS = Number(option("clients", 10000));
const SECONDS = Number(option("seconds", 600));
const INTERVAL_MS = Number(option("interval", 20)) * 1000;
const ROOMS = Number(option("rooms", 100));
const RAMP_PER_S = Number(option("ramp", 1000));
const DRAIN_MS = Number(option("drain", 30)) * 1000;
const REPORT_MS = Number(option("report", 10)) * 1000;
const LATE_MS = 30000;
const WS_URL = URL_BASE.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";

const started = Date.now();
let stopping = false;

const stats = {
  handshakes: 0, // Engine.IO open packets received
  connects: 0, // Socket.IO CONNECT answered
  cleanDisconnects: 0, // closed by us (churn or the end)
  reconnects: 0,
  acksRequested: 0, // client -> server emits that asked for an ack
  acksReceived: 0,
  acksLate: 0, // arrived more than LATE_MS after the emit
  ackMismatches: 0, // echo ack differing from what was sent
  qReceived: 0, // server broadcasts with ack ("q") received
  qAcked: 0, // ... and acked by the clients
  qWhileClosing: 0, // ... received after this client started closing (not acked)
  bcastRequests: 0,
  bcastAnswered: 0,
  bcastResponses: 0, // sum of the responses the server collected
  bcastTimeouts: 0, // broadcasts whose acks did not all arrive in time
  ticks: 0,
  echoes: 0,
  hops: 0,
  // errors
  connectFailures: 0,
  unexpectedCloses: 0,
  wsErrors: 0,
  protocolErrors: 0,
  unknownAcks: 0,
  serverDisconnects: 0,
};
const errorSamples = [];

function error(kind, detail) {
  stats[kind] += 1;
  if (errorSamples.length < 20) errorSamples.push({ t: elapsed(), kind, detail: String(detail).slice(0, 200) });
}

function elapsed() {
  return Math.round((Date.now() - started) / 100) / 10;
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function expDelay(mean) {
  return Math.min(-Math.log(1 - Math.random()) * mean, mean * 8);
}

// "<digits>[json]" -> [id | null, value]
function splitId(body) {
  let i = 0;
  while (i < body.length && body.charCodeAt(i) >= 48 && body.charCodeAt(i) <= 57) i++;
  const id = i > 0 ? Number(body.slice(0, i)) : null;
  return [id, i < body.length ? JSON.parse(body.slice(i)) : null];
}

class Client {
  constructor(idx, { monitor = false } = {}) {
    this.idx = idx;
    this.monitor = monitor;
    this.room = "r" + (idx % ROOMS);
    this.extraRoom = null;
    this.pending = new Map(); // ack id -> {event, at, check}
    this.nextId = 0;
    this.state = "idle"; // idle | connecting | open | closing
    this.timer = null;
    this.ws = null;
  }

  connect() {
    if (stopping && !this.monitor) return; // a reconnect timer that fired after the end
    this.state = "connecting";
    const ws = new WebSocket(WS_URL, { perMessageDeflate: false });
    this.ws = ws;
    ws.on("message", (data, isBinary) => {
      if (this.ws !== ws) return;
      try {
        this.onMessage(isBinary ? null : data.toString());
      } catch (err) {
        error("protocolErrors", err && err.stack ? err.stack : err);
      }
    });
    ws.on("error", (err) => {
      if (this.state === "connecting") error("connectFailures", err.message);
      else error("wsErrors", err.message);
    });
    ws.on("close", (code) => {
      if (this.ws !== ws) return;
      this.onClose(code);
    });
  }

  send(text) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  request(event, args, check) {
    const id = this.nextId++;
    this.pending.set(id, { event, at: Date.now(), check });
    stats.acksRequested += 1;
    this.send(`42${id}` + JSON.stringify([event, ...args]));
  }

  onMessage(text) {
    if (text === null) return error("protocolErrors", "unexpected binary message");
    const type = text[0];
    if (type === "2") return this.send("3"); // Engine.IO ping
    if (type === "0") {
      stats.handshakes += 1;
      return this.send("40");
    }
    if (type === "6") return; // noop
    if (type !== "4") return error("protocolErrors", `engine packet ${text.slice(0, 40)}`);
    const kind = text[1];
    const body = text.slice(2);
    if (body[0] === "/") return error("protocolErrors", `namespace packet ${text.slice(0, 40)}`);
    if (kind === "0") return this.onConnect(JSON.parse(body));
    if (kind === "2") {
      const [id, data] = splitId(body);
      return this.onEvent(id, data);
    }
    if (kind === "3") {
      const [id, data] = splitId(body);
      return this.onAck(id, data);
    }
    if (kind === "1") {
      error("serverDisconnects", text.slice(0, 80));
      return;
    }
    error("protocolErrors", `socket.io packet ${text.slice(0, 80)}`);
  }

  onConnect(payload) {
    if (!payload || typeof payload.sid !== "string") return error("protocolErrors", "CONNECT without sid");
    this.state = "open";
    stats.connects += 1;
    if (this.monitor) return;
    this.request("join", [this.room], (args) => args.length === 1 && args[0] === this.room);
    this.schedule();
  }

  onEvent(id, data) {
    const event = data[0];
    if (event === "q") {
      stats.qReceived += 1;
      if (id !== null) {
        // Once we have started closing, the ack cannot go out any more (and the
        // server no longer expects it: this client left the broadcast).
        if (this.send(`43${id}` + JSON.stringify([data[1].n]))) stats.qAcked += 1;
        else stats.qWhileClosing += 1;
      }
    } else if (event === "tick") {
      stats.ticks += 1;
    } else {
      error("protocolErrors", `event ${JSON.stringify(data).slice(0, 80)}`);
    }
  }

  onAck(id, args) {
    const entry = this.pending.get(id);
    if (!entry) return error("unknownAcks", `ack ${id}`);
    this.pending.delete(id);
    stats.acksReceived += 1;
    if (Date.now() - entry.at > LATE_MS) stats.acksLate += 1;
    if (entry.check && !entry.check(args)) error("ackMismatches", `${entry.event}: ${JSON.stringify(args).slice(0, 120)}`);
  }

  schedule() {
    clearTimeout(this.timer);
    if (stopping) return;
    this.timer = setTimeout(() => this.act(), expDelay(INTERVAL_MS));
  }

  act() {
    this.timer = null;
    if (stopping || this.state !== "open") return;
    const r = Math.random();
    if (r < 0.7) {
      stats.echoes += 1;
      const value = { i: this.nextId, s: "e".repeat(16 + Math.floor(Math.random() * 200)) };
      const expected = JSON.stringify([value]);
      this.request("echo", [value], (args) => JSON.stringify(args) === expected);
    } else if (r < 0.75) {
      stats.bcastRequests += 1;
      this.request("bcast", [{ room: this.room }], (args) => {
        const res = args[0];
        if (!res || typeof res.responses !== "number") return false;
        stats.bcastAnswered += 1;
        stats.bcastResponses += res.responses;
        if (res.timeout) stats.bcastTimeouts += 1;
        return true;
      });
    } else if (r < 0.752) {
      this.request("fanout", [{ count: 1, size: 64 }], (args) => args[0] && args[0].sent === 1);
    } else if (r < 0.8) {
      stats.hops += 1;
      if (this.extraRoom) {
        const old = this.extraRoom;
        this.request("leave", [old], (args) => args[0] === old);
      }
      const room = "x" + Math.floor(Math.random() * 1000);
      this.extraRoom = room;
      this.request("join", [room], (args) => args[0] === room);
    } else if (this.pending.size === 0) {
      this.state = "closing";
      if (Math.random() < 0.5) this.send("41");
      this.ws.close(1000);
      return; // reconnects from onClose
    } else {
      stats.echoes += 1;
      this.request("echo", ["busy"], (args) => args.length === 1 && args[0] === "busy");
    }
    this.schedule();
  }

  onClose(code) {
    const wasClosing = this.state === "closing";
    const wasConnecting = this.state === "connecting";
    clearTimeout(this.timer);
    this.timer = null;
    this.ws = null;
    this.extraRoom = null;
    this.state = "idle";
    if (wasClosing) stats.cleanDisconnects += 1;
    else if (!wasConnecting) error("unexpectedCloses", `client ${this.idx} code ${code}`);
    // Acks still pending on a closed connection can no longer arrive: they stay
    // counted as requested and not received (lost).
    this.lostOnClose = (this.lostOnClose || 0) + this.pending.size;
    this.pending.clear();
    if (stopping) return;
    stats.reconnects += 1;
    setTimeout(() => this.connect(), wasConnecting ? 1000 : 100 + Math.random() * 1900);
  }
}

const clients = [];
for (let i = 0; i < CLIENTS; i++) clients.push(new Client(i));
const monitor = new Client(-1, { monitor: true });

function openCount() {
  let n = 0;
  for (const c of clients) if (c.state === "open") n++;
  return n;
}

function pendingCount() {
  let n = 0;
  for (const c of clients) n += c.pending.size;
  return n;
}

function snapshot(extra = {}) {
  return { t: elapsed(), open: openCount(), pending: pendingCount(), ...stats, ...extra };
}

// Ramp up in slices of 50 ms.
let next = 0;
const perSlice = Math.max(1, Math.round(RAMP_PER_S / 20));
const ramp = setInterval(() => {
  for (let k = 0; k < perSlice && next < CLIENTS; k++) clients[next++].connect();
  if (next >= CLIENTS) clearInterval(ramp);
}, 50);
monitor.connect();

const report = setInterval(() => {
  out(snapshot());
  if (monitor.state === "open") {
    monitor.request("stats", [], (args) => {
      out({ t: elapsed(), server: args[0] });
      return true;
    });
  }
}, REPORT_MS);

function askStats() {
  return new Promise((resolve) => {
    if (monitor.state !== "open") return resolve(null);
    const timer = setTimeout(() => resolve(null), 5000);
    monitor.request("stats", [], (args) => {
      clearTimeout(timer);
      resolve(args[0]);
      return true;
    });
  });
}

setTimeout(async () => {
  stopping = true;
  for (const c of clients) clearTimeout(c.timer);
  const deadline = Date.now() + DRAIN_MS;
  while (pendingCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  clearInterval(report);
  // The server's own view before the clients leave.
  const serverStats = await askStats();
  const lostOnClose = clients.reduce((n, c) => n + (c.lostOnClose || 0), 0);
  const pendingAtEnd = pendingCount();
  out(
    snapshot({
      final: true,
      server: serverStats,
      acksLost: stats.acksRequested - stats.acksReceived,
      lostOnClose,
      pendingAtEnd,
      errors:
        stats.connectFailures +
        stats.unexpectedCloses +
        stats.wsErrors +
        stats.protocolErrors +
        stats.unknownAcks +
        stats.ackMismatches +
        stats.serverDisconnects,
      errorSamples,
    }),
  );
  for (const c of clients) {
    if (c.state === "open") {
      c.state = "closing";
      c.ws.close(1000);
    } else if (c.ws) {
      c.ws.terminate();
    }
  }
  const closeDeadline = Date.now() + 10000;
  while (clients.some((c) => c.ws) && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 100));
  // The server's view once every client is gone: only the monitor should be left.
  await new Promise((r) => setTimeout(r, 2000));
  const afterStats = await askStats();
  out({ t: elapsed(), closed: true, stillOpen: clients.filter((c) => c.ws).length, serverAfter: afterStats });
  if (monitor.ws) monitor.ws.close(1000);
  setTimeout(() => process.exit(0), 500);
}, SECONDS * 1000);
