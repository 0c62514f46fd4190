"use strict";
// What @socket.io/redis-streams-adapter writes to Redis, captured for the byte
// tests: a fixed set of operations on a server whose adapter uid is fixed.
//
// Usage: node streams_capture.js --redis-port N --key K
//
// Prints one JSON line: {"entries": [[id, {field: value}]...] (XRANGE of the
// stream K), "session": <the value stored for pid "p1">, "ephemeral": <hex of
// the message published on "K#/#">, "hashes": {name: hashCode(name)}}.

const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { hashCode } = require("@socket.io/redis-streams-adapter/dist/util");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const port = Number(option("--redis-port", "6379"));
const key = option("--key", "socket.io");
const OPERATIONS = 6;

async function until(check) {
  for (;;) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setImmediate(r));
  }
}

async function main() {
  const client = createClient({ socket: { host: "127.0.0.1", port } });
  const sub = client.duplicate();
  await Promise.all([client.connect(), sub.connect()]);
  let ephemeral = null;
  await sub.subscribe(key + "#/#", (payload) => { ephemeral = payload.toString("hex"); }, true);

  const io = new Server({
    adapter: createAdapter(client, { streamName: key, channelPrefix: key, sessionKeyPrefix: key + ":session:" }),
    connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  });
  const adapter = io.of("/").adapter;
  adapter.uid = "0123456789abcdef";

  io.to("r1").except("r2").emit("hello", "world", 1.5, null, { a: [true, -2] });
  io.emit("bin", Buffer.from([1, 2, 3]), { x: Buffer.from([255]) });
  io.volatile.compress(false).emit("v", 1);
  io.in("r1").socketsJoin(["r3"]);
  io.in("r1").socketsLeave("r3");
  io.disconnectSockets(true);
  io.serverSideEmit("note", 1, "two");
  adapter.persistSession({ sid: "s1", pid: "p1", rooms: ["s1", "r1"], data: { name: "n", n: 2 } });

  const entries = await until(async () => {
    const found = await client.xRange(key, "-", "+");
    return found.length >= OPERATIONS ? found : null;
  });
  const session = await until(() => client.get(key + ":session:p1"));
  await until(() => ephemeral);
  const hashes = {};
  for (const name of ["/", "/chat", "/admin", "/é😀", "/ns-negative-hash-0"]) hashes[name] = hashCode(name);
  const out = JSON.stringify({ entries: entries.map((e) => [e.id, e.message]), session, ephemeral, hashes });
  // Exit without closing: the adapter's reader would fail on a closed client.
  process.stdout.write(out + "\n", () => process.exit(0));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
