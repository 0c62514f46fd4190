"use strict";
// The official client against `socketwire --workers 2`: several clients at once,
// each a few acknowledged round trips and a broadcast to all, then the workers'
// counters. Prints one JSON line: {errors, stats, transports, news}.
//
// Usage: node spread.js <url> <transports>   ("polling", "websocket", "polling,websocket")

const { io } = require("socket.io-client");

const url = process.argv[2];
const transports = (process.argv[3] || "polling").split(",");
const upgrade = transports.length > 1;
const CLIENTS = 6;
const ROUNDS = 5;
const WAIT_MS = 8000;

const failsafe = setTimeout(() => {
  process.stderr.write("spread.js did not finish in time\n");
  process.exit(2);
}, 30000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, resolve));
}

async function main() {
  const errors = [];
  const sockets = [];
  const news = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = io(url, { transports, upgrade, forceNew: true, reconnection: false });
    socket.on("connect_error", (err) => errors.push(`connect_error ${i}: ${err.message}`));
    socket.on("disconnect", (reason) => errors.push(`disconnect ${i}: ${reason}`));
    socket.on("news", (value) => news.push([i, value]));
    sockets.push(socket);
  }
  await Promise.all(sockets.map((s) => (s.connected ? null : once(s, "connect"))));
  if (upgrade) {
    await Promise.all(
      sockets.map((s) =>
        s.io.engine.transport.name === "websocket" ? null : once(s.io.engine, "upgrade"),
      ),
    );
  }
  for (let round = 0; round < ROUNDS; round++) {
    const answers = await Promise.all(
      sockets.map((s, i) => s.timeout(WAIT_MS).emitWithAck("echo", i, round)),
    );
    answers.forEach((answer, i) => {
      if (JSON.stringify(answer) !== JSON.stringify([i, round])) {
        errors.push(`echo ${i} ${round}: ${JSON.stringify(answer)}`);
      }
    });
  }
  await Promise.all(sockets.map((s) => s.timeout(WAIT_MS).emitWithAck("join", "everyone")));
  const arrived = Promise.all(sockets.map((s) => once(s, "news")));
  await sockets[0].timeout(WAIT_MS).emitWithAck("shout", "everyone", "hello");
  await arrived;
  const stats = await sockets[0].timeout(WAIT_MS).emitWithAck("stats");
  const used = sockets.map((s) => s.io.engine.transport.name);
  for (const s of sockets) {
    s.off("disconnect");
    s.disconnect();
  }
  process.stdout.write(JSON.stringify({ errors, stats, transports: used, news }) + "\n");
  clearTimeout(failsafe);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
