"use strict";
// Shared helpers of the example scenarios: the official socket.io-client drives
// a socketwire example and prints one JSON line per observation on stdout.
//
// Usage: node <scenario>.js <url> <transports>   (transports: "websocket",
// "polling" or "polling,websocket")

const { io } = require("socket.io-client");

const url = process.argv[2];
const transports = (process.argv[3] || "websocket").split(",");
const upgradeMode = transports.length > 1;
const SCENARIO_TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS || 20000);
const WAIT_MS = 8000;

// The scenario fails (exit 2) if it has not finished in time.
const failsafe = setTimeout(() => {
  process.stderr.write(`scenario did not finish within ${SCENARIO_TIMEOUT_MS} ms\n`);
  process.exit(2);
}, SCENARIO_TIMEOUT_MS);

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

// JSON-friendly copy: binary becomes {"$bytes": hex, "$type": ...}, functions "<fn>".
function plain(value) {
  if (isBinary(value)) {
    const type = Buffer.isBuffer(value) ? "Buffer" : value.constructor.name;
    const buf = value instanceof ArrayBuffer ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bytes: buf.toString("hex"), $type: type };
  }
  if (typeof value === "function") return "<fn>";
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    if (value instanceof Error) return { $error: value.message };
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value === undefined ? null : value;
}

function out(obj) {
  process.stdout.write(JSON.stringify(plain(obj)) + "\n");
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const clients = [];
const upgrades = new Map(); // Manager -> Promise resolved on the engine's "upgrade"

// A socket that records (and prints) everything it receives.
function client(label, nsp = "/", opts = {}) {
  const socket = io(url + nsp, { transports, reconnection: false, ...opts });
  socket.label = label;
  socket.received = []; // [event, ...args], reserved events included
  socket.waiters = [];
  const record = (event, args) => {
    socket.received.push([event, ...args]);
    out({ client: label, event, args });
    socket.waiters = socket.waiters.filter((w) => !w.check());
  };
  socket.onAny((event, ...args) => record(event, args));
  socket.on("connect", () => record("connect", [socket.id]));
  socket.on("disconnect", (reason) => record("disconnect", [reason]));
  socket.on("connect_error", (err) => record("connect_error", [err.message]));
  const manager = socket.io;
  if (!upgrades.has(manager)) {
    upgrades.set(
      manager,
      new Promise((resolve) => manager.engine.once("upgrade", (t) => resolve(t.name))),
    );
  }
  clients.push(socket);
  return socket;
}

// Resolves with the args of the count-th `event` received by `socket` (counting
// from its creation, so an event that already arrived counts).
function waitFor(socket, event, { count = 1, timeout = WAIT_MS } = {}) {
  const promise = new Promise((resolve) => {
    const waiter = {
      check() {
        const got = socket.received.filter((e) => e[0] === event);
        if (got.length >= count) {
          resolve(got[count - 1].slice(1));
          return true;
        }
        return false;
      },
    };
    if (!waiter.check()) socket.waiters.push(waiter);
  });
  return withTimeout(promise, timeout, `${socket.label}: ${event} #${count}`);
}

function emitWithAck(socket, ...args) {
  return withTimeout(socket.timeout(WAIT_MS).emitWithAck(...args), WAIT_MS + 1000, `ack of ${args[0]}`);
}

// Wait for the upgrade in "polling,websocket" mode, print the final transport of
// each connection still open, then disconnect every client and exit 0.
async function finish() {
  const seen = new Set();
  for (const socket of clients) {
    const manager = socket.io;
    if (seen.has(manager)) continue;
    seen.add(manager);
    const engine = manager.engine;
    if (!engine || engine.readyState !== "open") continue; // closed during the scenario
    if (upgradeMode) await withTimeout(upgrades.get(manager), WAIT_MS, `${socket.label}: upgrade`);
    out({ client: socket.label, transport: engine.transport.name, engine: engine.id });
  }
  for (const socket of clients) socket.disconnect();
  clearTimeout(failsafe);
  // Let the last packets (DISCONNECT, the Engine.IO close) go out: the process
  // ends by itself once every request is done, or after one second at most.
  setTimeout(() => process.exit(0), 1000).unref();
}

function run(scenario) {
  scenario().then(finish, (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

module.exports = { io, url, transports, upgradeMode, out, plain, client, waitFor, emitWithAck, withTimeout, run, WAIT_MS };
