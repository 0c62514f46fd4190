"use strict";
// The official @socket.io/redis-emitter: sends what its arguments say, then exits.
//
// Usage: node cluster_emitter.js --redis-port N --key K <JSON list of steps>
// A step: {"op": "emit", "event", "args", "rooms", "except", "volatile", "nsp"},
// {"op": "socketsJoin" | "socketsLeave", "rooms", "join"}, {"op": "disconnectSockets",
// "rooms", "close"}, {"op": "serverSideEmit", "event", "args"}.

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const steps = JSON.parse(process.argv[process.argv.length - 1]);
  const client = createClient({ socket: { host: "127.0.0.1", port: Number(option("--redis-port", "6379")) } });
  await client.connect();
  const root = new Emitter(client, { key: option("--key", "socket.io") });
  for (const step of steps) {
    let op = step.nsp ? root.of(step.nsp) : root;
    for (const room of step.rooms || []) op = op.to(room);
    if (step.except) op = op.except(step.except);
    if (step.volatile) op = op.volatile;
    if (step.op === "emit") op.emit(step.event, ...(step.args || []));
    else if (step.op === "socketsJoin") op.socketsJoin(step.join);
    else if (step.op === "socketsLeave") op.socketsLeave(step.leave);
    else if (step.op === "disconnectSockets") op.disconnectSockets(!!step.close);
    else if (step.op === "serverSideEmit") root.serverSideEmit(step.event, ...(step.args || []));
  }
  await client.quit(); // after every queued PUBLISH
  console.log(JSON.stringify({ sent: steps.length }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
