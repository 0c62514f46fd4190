"use strict";
// What Node publishes for emitter operations, recorded without a Redis server.
//
// Usage: node emitter_vectors.js <classic|sharded> <JSON list of steps> [subscription mode]
//
// * classic: @socket.io/redis-emitter's Emitter on a client that records PUBLISH;
// * sharded: a socket.io Server with createShardedAdapter (@socket.io/redis-adapter)
//   on clients that record SPUBLISH, its adapters' uid set to "emitter": what a
//   Node server of a sharded cluster publishes for the same operation.
//
// A step: {"nsp": "/x", "chain": [["to", room or [rooms]], ["in", ...],
// ["except", ...], ["volatile"], ["compress", bool]], "op": "emit" |
// "socketsJoin" | "socketsLeave" | "disconnectSockets" | "serverSideEmit",
// "event", "args", "rooms", "close"}. {"$bin": [bytes]} in args is a Buffer.
// One line per published message: {"step": i, "channel": ..., "hex": ...}.

const { Emitter } = require("@socket.io/redis-emitter");
const { Server } = require("socket.io");
const { createShardedAdapter } = require("@socket.io/redis-adapter");

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (Array.isArray(value.$bin)) return Buffer.from(value.$bin);
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = revive(v);
    return out;
  }
  return value;
}

let current = -1;
function record(channel, message) {
  const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message, "utf8");
  process.stdout.write(JSON.stringify({ step: current, channel, hex: bytes.toString("hex") }) + "\n");
  return Promise.resolve(0);
}

function apply(op, chain) {
  for (const [name, arg] of chain || []) {
    if (name === "volatile") op = op.volatile;
    else op = op[name](arg);
  }
  return op;
}

function run(target, step) {
  const args = revive(step.args || []);
  if (step.op === "serverSideEmit") return target.serverSideEmit(step.event, ...args);
  const op = apply(target, step.chain);
  if (step.op === "emit") return op.emit(step.event, ...args);
  if (step.op === "socketsJoin") return op.socketsJoin(step.rooms);
  if (step.op === "socketsLeave") return op.socketsLeave(step.rooms);
  if (step.op === "disconnectSockets") return op.disconnectSockets(step.close);
  throw new Error(`unknown op ${step.op}`);
}

async function main() {
  const [kind, text, mode] = process.argv.slice(2);
  const steps = JSON.parse(text);
  if (kind === "classic") {
    const root = new Emitter({ publish: record });
    steps.forEach((step, i) => {
      current = i;
      run(step.nsp ? root.of(step.nsp) : root, step);
    });
    return;
  }
  // The adapter takes a client with sSubscribe for a node-redis v4 one.
  const quiet = { sSubscribe: () => Promise.resolve(), sUnsubscribe: () => Promise.resolve() };
  const pub = { ...quiet, sPublish: record };
  const sub = quiet;
  const io = new Server({ adapter: createShardedAdapter(pub, sub, { subscriptionMode: mode || "dynamic" }) });
  for (const [i, step] of steps.entries()) {
    current = i;
    const nsp = io.of(step.nsp || "/");
    nsp.adapter.uid = "emitter";
    run(nsp, step);
    // The adapter publishes from an async function: let it finish this step.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
