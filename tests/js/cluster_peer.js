"use strict";
// The official socket.io server with the official Redis adapter, as a cluster
// member beside socketwire servers.
//
// Usage: node cluster_peer.js --redis-port N --key K [--specific-responses]
//        [--sharded static|dynamic|dynamic-private [--cluster-ports P1,P2,..]]
//        node cluster_peer.js --streams --redis-port N --key K [--stream-count C] [--recovery]
//
// With --sharded, the adapter is createShardedAdapter (key as its channelPrefix,
// the given subscriptionMode) instead of the classic createAdapter; with
// --cluster-ports, on a Redis Cluster (the nodes of those ports) instead of the
// one Redis of --redis-port (sharded pub/sub works on a single Redis 7 too).
//
// With --streams, the adapter is @socket.io/redis-streams-adapter with
// streamName, channelPrefix and sessionKeyPrefix ("K:session:") made of K;
// --recovery turns connectionStateRecovery on (60 s).
//
// Listens on 127.0.0.1 (port 0) and prints {"port": N} once its adapter is
// subscribed. Then it reads one JSON command per line on stdin,
// {"id": 1, "op": "...", ...}, runs it on the namespace "/" and prints
// {"id": 1, "result": ...} or {"id": 1, "error": "..."}. Unsolicited reports are
// printed as {"event": name, ...}.
//
// Sockets (of "/" and of "/chat"): socket.data = {server: "node", name: auth.name};
// each joins the rooms in auth.rooms; "ask" events are answered with {server: "node", args}.
// Server-side events: "whoami" is answered with "node"; every server-side event
// is reported as {"event": "server-side", "args": [...]}.

const http = require("http");
const { Server } = require("socket.io");
const { createClient, createCluster } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const redisPort = Number(option("--redis-port", "6379"));
const key = option("--key", "socket.io");
const specific = process.argv.includes("--specific-responses");
const shardedMode = option("--sharded", null);
const clusterPorts = option("--cluster-ports", "").split(",").filter(Boolean).map(Number);
const NAMESPACES = ["/", "/chat"];
const streams = process.argv.includes("--streams");
const streamCount = Number(option("--stream-count", "1"));
const recovery = process.argv.includes("--recovery");
// Names this peer's Redis connections, so that CLIENT LIST shows its stream reader.
const clientName = "peer-" + process.pid + "-" + Math.random().toString(16).slice(2, 10);

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function target(io, cmd) {
  let op = io;
  for (const room of cmd.rooms || []) op = op.to(room);
  if (cmd.except && cmd.except.length) op = op.except(cmd.except);
  if (cmd.volatile) op = op.volatile;
  if (cmd.local) op = op.local;
  return op;
}

// JSON has no bytes: {"$bin": [..]} stands for a Buffer both ways.
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

function plain(value) {
  if (Buffer.isBuffer(value)) return { $bin: [...value] };
  if (value instanceof ArrayBuffer) return { $bin: [...Buffer.from(value)] };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

async function main() {
  const pub = clusterPorts.length
    ? createCluster({ rootNodes: clusterPorts.map((port) => ({ socket: { host: "127.0.0.1", port } })) })
    : createClient({ socket: { host: "127.0.0.1", port: redisPort }, name: clientName });
  const sub = pub.duplicate();
  pub.on("error", (err) => print({ event: "redis-error", message: String(err) }));
  sub.on("error", (err) => print({ event: "redis-error", message: String(err) }));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  let adapter;
  if (streams) {
    adapter = createStreamsAdapter(pub, {
      streamName: key,
      streamCount,
      channelPrefix: key,
      sessionKeyPrefix: key + ":session:",
    });
  } else if (shardedMode) {
    adapter = createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: shardedMode });
  } else {
    adapter = createAdapter(pub, sub, { key, requestsTimeout: 3000, publishOnSpecificResponseChannel: specific });
  }
  const io = new Server(httpServer, {
    adapter,
    connectionStateRecovery: recovery ? { maxDisconnectionDuration: 60000 } : undefined,
  });

  for (const name of NAMESPACES) {
    io.of(name).on("connection", (socket) => {
      const auth = socket.handshake.auth || {};
      socket.data = { server: "node", name: auth.name };
      for (const room of auth.rooms || []) socket.join(room);
      if (recovery && name === "/") print({ event: "connection", sid: socket.id, recovered: socket.recovered });
      socket.on("ask", (...args) => {
        const ack = args.pop();
        ack({ server: "node", args: plain(args) });
      });
    });
  }
  io.on("whoami", (...args) => {
    const ack = args.pop();
    ack("node");
  });
  io.on("note", (...args) => print({ event: "server-side", args: plain(args) }));

  const ops = {
    async emit(cmd) {
      target(io, cmd).emit(cmd.event, ...revive(cmd.args || []));
      return null;
    },
    async emitWithAck(cmd) {
      try {
        const responses = await target(io, cmd).timeout(cmd.timeout).emitWithAck(cmd.event, ...revive(cmd.args || []));
        return { err: null, responses: plain(responses) };
      } catch (err) {
        return { err: String(err.message), responses: plain(err.responses || []) };
      }
    },
    async fetchSockets(cmd) {
      const sockets = await target(io, cmd).fetchSockets();
      return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data, auth: s.handshake.auth }));
    },
    async socketsJoin(cmd) {
      target(io, cmd).socketsJoin(cmd.join);
      return null;
    },
    async socketsLeave(cmd) {
      target(io, cmd).socketsLeave(cmd.leave);
      return null;
    },
    async disconnectSockets(cmd) {
      target(io, cmd).disconnectSockets(!!cmd.close);
      return null;
    },
    async serverSideEmit(cmd) {
      io.serverSideEmit(cmd.event, ...(cmd.args || []));
      return null;
    },
    async serverSideEmitWithAck(cmd) {
      try {
        return { err: null, responses: await io.serverSideEmitWithAck(cmd.event, ...(cmd.args || [])) };
      } catch (err) {
        return { err: String(err.message), responses: [] };
      }
    },
    async uid() {
      return io.of("/").adapter.uid;
    },
    async serverCount() {
      return await io.of("/").adapter.serverCount();
    },
    async allRooms() {
      return [...(await io.of("/").adapter.allRooms())].sort();
    },
    async localRooms(cmd) {
      const s = io.of("/").sockets.get(cmd.sid);
      return s ? [...s.rooms].sort() : null;
    },
  };

  const readline = require("readline");
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    if (!line.trim()) return;
    const cmd = JSON.parse(line);
    try {
      print({ id: cmd.id, result: await ops[cmd.op](cmd) });
    } catch (err) {
      print({ id: cmd.id, error: String(err && err.message) });
    }
  });
  rl.on("close", async () => {
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
    process.exit(0);
  });

  // The adapters subscribe asynchronously: wait until Redis shows each one's
  // own response channel (named after its uid) subscribed, the last of its
  // subscriptions.
  for (const name of NAMESPACES) {
    const uid = io.of(name).adapter.uid;
    const own = shardedMode || streams ? `${key}#${name}#${uid}#` : `${key}-response#${name}#${uid}#`;
    for (;;) {
      let count;
      if (streams) {
        // ...and, for streams, its readers blocked in XREAD (they start from "$").
        count = (await pub.pubSubNumSub(own))[own] || 0;
        const list = await pub.sendCommand(["CLIENT", "LIST"]);
        const reading = list.split("\n").filter((l) => l.includes("name=" + clientName + " ") && l.includes("cmd=xread"));
        if (reading.length < streamCount) count = 0;
      } else if (!shardedMode) count = (await pub.pubSubNumSub(own))[own] || 0;
      else if (clusterPorts.length)
        // Asked of the master that owns the channel's slot.
        count = Number((await pub.sendCommand(own, true, ["PUBSUB", "SHARDNUMSUB", own]))[1]);
      else count = Number((await pub.sendCommand(["PUBSUB", "SHARDNUMSUB", own]))[1]);
      if (count >= 1) break;
      await new Promise((r) => setImmediate(r));
    }
  }
  httpServer.listen(0, "127.0.0.1", () => print({ port: httpServer.address().port }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
