"use strict";
// Ping-storm load generator: N WebSocket clients that answer every Engine.IO
// ping and count the "tick" broadcasts of `soak/ping_storm.py --serve`, plus a
// control client on the /control namespace that drives the run. Engine.IO v4 /
// Socket.IO v5 are spoken by hand over the `ws` package.
//
// Usage: node soak/ping_storm.js --url http://127.0.0.1:PORT --clients 10000
//        [--ramp 1000] [--progress 20] [--report 1] [--drain 15] [--tail 6]
//        [--deadline 300]
//
// 1. The clients connect (`ramp` per second) to the main namespace; the control
//    client connects to /control. Once every client is connected (or after
//    `clients / ramp + 30` s), the control client emits "start".
// 2. The server broadcasts "tick" {n, t, d} to everyone. Every `progress` ms the
//    control client emits "progress" {min, max}: the fewest and most ticks an
//    open client has received, which the server uses to stay a few broadcasts
//    ahead of the slowest client at most.
// 3. The server emits "done" {sent} on /control when its storm is over; the
//    clients get `drain` s to receive the last ticks, then stay connected (only
//    heartbeats) for `tail` s, then a final JSON line is printed ("final": true),
//    the control client emits "closing" and every client disconnects.
//
// Every `report` s one JSON line of counters goes to stdout. The process exits
// by itself after `deadline` s whatever happens.

const WebSocket = require("ws");
const { monitorEventLoopDelay } = require("perf_hooks");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const URL_BASE = option("url", "http://127.0.0.1:3000");
const CLIENTS = Number(option("clients", 10000));
const RAMP_PER_S = Number(option("ramp", 1000));
const PROGRESS_MS = Number(option("progress", 20));
const REPORT_MS = Number(option("report", 1)) * 1000;
const DRAIN_MS = Number(option("drain", 15)) * 1000;
const TAIL_MS = Number(option("tail", 6)) * 1000;
const CONNECT_BUDGET_MS = (CLIENTS / RAMP_PER_S + 30) * 1000;
const DEADLINE_MS = Number(option("deadline", 300)) * 1000;
const WS_URL = URL_BASE.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true };

const started = Date.now();
let phase = "ramp"; // ramp | storm | drain | tail | closing
let sent = null; // broadcasts the server reports having sent ("done")
let pingInterval = 0; // ms, from the handshake

// Upper bounds (ms) of the latency histograms; the last bucket is open.
const BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 3000, 5000];

function histogram() {
  return { counts: new Array(BOUNDS.length + 1).fill(0), max: 0, intervalMax: 0 };
}

function record(h, ms) {
  let i = 0;
  while (i < BOUNDS.length && ms > BOUNDS[i]) i++;
  h.counts[i] += 1;
  if (ms > h.max) h.max = ms;
  if (ms > h.intervalMax) h.intervalMax = ms;
}

function histogramOut(h) {
  const out = {};
  for (let i = 0; i <= BOUNDS.length; i++) {
    if (h.counts[i]) out[i < BOUNDS.length ? `<=${BOUNDS[i]}` : `>${BOUNDS[BOUNDS.length - 1]}`] = h.counts[i];
  }
  return out;
}

const stats = {
  handshakes: 0,
  connects: 0,
  connectFailures: 0, // failed WebSocket handshakes during the ramp (retried)
  pings: 0, // Engine.IO pings answered by the storm clients
  controlPings: 0, // ... and by the control client
  ticks: 0, // tick events received, all clients together
  orderErrors: 0, // a tick whose n is not the previous one + 1
  unexpectedCloses: 0, // a connected client closed without asking for it
  wsErrors: 0,
  protocolErrors: 0,
  serverDisconnects: 0, // Socket.IO DISCONNECT or Engine.IO close from the server
};
const tickLatency = histogram(); // Date.now() on receipt - the server's `t`
const pingGap = histogram(); // time between two pings at one client, minus pingInterval
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

// A tick is `42["tick",{"n":<n>,"t":<ms>,"d":"..."}]`: read n and t from the
// bytes instead of parsing JSON (hundreds of thousands of them per second).
const TICK_PREFIX = Buffer.from('42["tick",{"n":');
const T_KEY = Buffer.from(',"t":');
let readEnd = 0;

function readInt(buf, i) {
  let v = 0;
  const start = i;
  for (; i < buf.length; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  readEnd = i === start ? -1 : i;
  return v;
}

function isTick(buf) {
  if (buf.length <= TICK_PREFIX.length) return false;
  for (let i = 0; i < TICK_PREFIX.length; i++) if (buf[i] !== TICK_PREFIX[i]) return false;
  return true;
}

function parseTick(buf) {
  // -> [n, t], or null when the bytes are not laid out as expected
  const n = readInt(buf, TICK_PREFIX.length);
  let i = readEnd;
  if (i < 0 || i + T_KEY.length >= buf.length) return null;
  for (let k = 0; k < T_KEY.length; k++) if (buf[i + k] !== T_KEY[k]) return null;
  const t = readInt(buf, i + T_KEY.length);
  return readEnd < 0 ? null : [n, t];
}

class Client {
  constructor(idx) {
    this.idx = idx;
    this.state = "idle"; // idle | connecting | open | closing | closed
    this.ws = null;
    this.ticks = 0;
    this.last = 0;
    this.pings = 0;
    this.lastPingAt = 0;
  }

  connect() {
    this.state = "connecting";
    const ws = new WebSocket(WS_URL, WS_OPTIONS);
    this.ws = ws;
    ws.on("message", (data, isBinary) => {
      if (this.ws !== ws) return;
      try {
        this.onMessage(data, isBinary);
      } catch (err) {
        error("protocolErrors", err && err.stack ? err.stack : err);
      }
    });
    ws.on("error", (err) => {
      if (this.state === "connecting") error("connectFailures", err.message);
      else error("wsErrors", `client ${this.idx}: ${err.message}`);
    });
    ws.on("close", (code) => {
      if (this.ws !== ws) return;
      this.onClose(code);
    });
  }

  send(text) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  onMessage(data, isBinary) {
    if (isBinary) return error("protocolErrors", "unexpected binary message");
    if (isTick(data)) {
      const tick = parseTick(data);
      if (tick !== null) return this.onTick(tick[0], tick[1]);
    }
    if (data.length === 1 && data[0] === 50) {
      // "2": Engine.IO ping
      this.send("3");
      const now = Date.now();
      stats.pings += 1;
      this.pings += 1;
      record(pingGap, Math.max(0, now - this.lastPingAt - pingInterval));
      this.lastPingAt = now;
      return;
    }
    const text = data.toString();
    const type = text[0];
    if (type === "0") {
      stats.handshakes += 1;
      pingInterval = JSON.parse(text.slice(1)).pingInterval;
      this.lastPingAt = Date.now();
      return this.send("40");
    }
    if (type === "6") return;
    if (type === "1") return error("serverDisconnects", `client ${this.idx}: engine close`);
    if (text.startsWith("40")) {
      this.state = "open";
      stats.connects += 1;
      return;
    }
    if (text.startsWith("41")) return error("serverDisconnects", `client ${this.idx}: ${text.slice(0, 80)}`);
    if (text.startsWith('42["tick"')) {
      const payload = JSON.parse(text.slice(2))[1];
      return this.onTick(payload.n, payload.t);
    }
    error("protocolErrors", `client ${this.idx}: ${text.slice(0, 80)}`);
  }

  onTick(n, t) {
    stats.ticks += 1;
    this.ticks += 1;
    if (n !== this.last + 1) error("orderErrors", `client ${this.idx}: tick ${n} after ${this.last}`);
    this.last = n;
    record(tickLatency, Math.max(0, Date.now() - t));
  }

  onClose(code) {
    const was = this.state;
    this.ws = null;
    if (was === "closing") {
      this.state = "closed";
      return;
    }
    if (was === "connecting" && phase === "ramp") {
      // A failed handshake during the ramp: try again a second later.
      this.state = "idle";
      setTimeout(() => this.connect(), 1000);
      return;
    }
    this.state = "closed";
    error("unexpectedCloses", `client ${this.idx} (${was}) code ${code} in phase ${phase}`);
  }
}

// The control client: the /control namespace, where "start", "progress",
// "closing" go to the server and "done" comes back. It gets no ticks.
const control = {
  ws: null,
  ready: false,
  closedEarly: false,
  connect() {
    const ws = new WebSocket(WS_URL, WS_OPTIONS);
    this.ws = ws;
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "2") {
        stats.controlPings += 1;
        return this.send("3");
      }
      if (text[0] === "0") return this.send("40/control,");
      if (text.startsWith("40/control,")) {
        this.ready = true;
        return;
      }
      if (text.startsWith("42/control,")) {
        const [event, payload] = JSON.parse(text.slice("42/control,".length));
        if (event === "done") return onDone(payload);
      }
      if (text === "6") return;
      error("protocolErrors", `control: ${text.slice(0, 80)}`);
    });
    ws.on("error", (err) => error("wsErrors", `control: ${err.message}`));
    ws.on("close", (code) => {
      this.ws = null;
      if (phase !== "closing") {
        this.closedEarly = true;
        error("unexpectedCloses", `control client code ${code} in phase ${phase}`);
        finish("the control connection closed");
      }
    });
  },
  send(text) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  },
  emit(event, payload) {
    this.send("42/control," + JSON.stringify(payload === undefined ? [event] : [event, payload]));
  },
};

const clients = [];
for (let i = 0; i < CLIENTS; i++) clients.push(new Client(i));

function openCount() {
  let n = 0;
  for (const c of clients) if (c.state === "open") n++;
  return n;
}

// Fewest / most ticks among the open clients.
function tickRange() {
  let min = Infinity;
  let max = 0;
  for (const c of clients) {
    if (c.state !== "open") continue;
    if (c.ticks < min) min = c.ticks;
    if (c.ticks > max) max = c.ticks;
  }
  return [min === Infinity ? 0 : min, max];
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let loopDelayMax = 0;

function snapshot(extra = {}) {
  const [min, max] = tickRange();
  return {
    t: elapsed(),
    phase,
    open: openCount(),
    min,
    max,
    ...stats,
    tickLatencyMaxMs: tickLatency.intervalMax,
    pingGapMaxMs: pingGap.intervalMax,
    loopDelayMaxMs: Math.round(loopDelay.max / 1e6),
    ...extra,
  };
}

// 1. Ramp up in slices of 50 ms, then start the storm.
control.connect();
let next = 0;
const perSlice = Math.max(1, Math.round(RAMP_PER_S / 20));
const ramp = setInterval(() => {
  for (let k = 0; k < perSlice && next < CLIENTS; k++) clients[next++].connect();
  if (next >= CLIENTS) clearInterval(ramp);
}, 50);
let connectedAtStart = 0;
const startCheck = setInterval(() => {
  const open = openCount();
  const late = Date.now() - started > CONNECT_BUDGET_MS;
  if (!control.ready || (open < CLIENTS && !late)) return;
  clearInterval(startCheck);
  clearInterval(ramp);
  connectedAtStart = open;
  phase = "storm";
  out({ t: elapsed(), start: true, connected: open, incomplete: open < CLIENTS });
  control.emit("start", { clients: open });
}, 100);

// 2. Progress to the server while it storms.
setInterval(() => {
  if (phase !== "storm" && phase !== "drain") return;
  const [min, max] = tickRange();
  control.emit("progress", { min, max });
}, PROGRESS_MS);

const report = setInterval(() => {
  out(snapshot());
  tickLatency.intervalMax = 0;
  pingGap.intervalMax = 0;
  loopDelayMax = Math.max(loopDelayMax, loopDelay.max);
  loopDelay.reset();
}, REPORT_MS);

// 3. The end.
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function onDone(payload) {
  if (phase !== "storm") return;
  sent = payload.sent;
  phase = "drain";
  out({ t: elapsed(), done: payload });
  const drainDeadline = Date.now() + DRAIN_MS;
  while (Date.now() < drainDeadline) {
    const [min] = tickRange();
    if (min >= sent) break;
    await sleep(50);
  }
  phase = "tail";
  await sleep(TAIL_MS);
  finish(null);
}

let finished = false;

async function finish(why) {
  if (finished) return;
  finished = true;
  clearInterval(report);
  let min = Infinity;
  let max = 0;
  let short = 0;
  let neverPinged = 0;
  let minPings = Infinity;
  for (const c of clients) {
    if (c.ticks < min) min = c.ticks;
    if (c.ticks > max) max = c.ticks;
    if (sent !== null && c.ticks !== sent) short += 1;
    if (c.pings === 0) neverPinged += 1;
    if (c.pings < minPings) minPings = c.pings;
  }
  loopDelayMax = Math.max(loopDelayMax, loopDelay.max);
  out(
    snapshot({
      final: true,
      why,
      sent,
      connectedAtStart,
      ticksMinPerClient: min === Infinity ? 0 : min,
      ticksMaxPerClient: max,
      clientsMissingTicks: short,
      clientsNeverPinged: neverPinged,
      pingsMinPerClient: minPings === Infinity ? 0 : minPings,
      pingIntervalMs: pingInterval,
      tickLatencyMaxMs: tickLatency.max,
      tickLatency: histogramOut(tickLatency),
      pingGapMaxMs: pingGap.max,
      pingGap: histogramOut(pingGap),
      loopDelayMaxMs: Math.round(loopDelayMax / 1e6),
      errorSamples,
    }),
  );
  phase = "closing";
  control.emit("closing");
  await sleep(200);
  for (const c of clients) {
    if (c.state === "open") {
      c.state = "closing";
      c.ws.close(1000);
    } else if (c.ws) {
      c.state = "closing";
      c.ws.terminate();
    }
  }
  const closeDeadline = Date.now() + 10000;
  while (clients.some((c) => c.ws) && Date.now() < closeDeadline) await sleep(100);
  out({ t: elapsed(), closed: true, stillOpen: clients.filter((c) => c.ws).length });
  if (control.ws) control.ws.close(1000);
  setTimeout(() => process.exit(0), 300);
}

setTimeout(() => {
  out({ t: elapsed(), deadline: true, phase });
  process.exit(3);
}, DEADLINE_MS);
