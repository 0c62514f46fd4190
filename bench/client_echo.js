"use strict";
// Client-side CPU per echo of the official socket.io-client (4.8.x), for
// bench/client_echo.py to compare with socketwire's client.
//
// Usage: node client_echo.js URL N WINDOW TRANSPORT
//
// Emits "echo" N times (after a warm-up) with WINDOW acknowledgements in flight
// at most, and prints one JSON line: the process CPU (user + system, from
// process.cpuUsage()) and the wall time spent, per echo, in microseconds.

const { io } = require("socket.io-client");

const [url, nArg, windowArg, transport] = process.argv.slice(2);
const n = Number(nArg || 20000);
const windowSize = Number(windowArg || 1);
const payload = { text: "hello", n: 42, list: [1, 2, 3] };

function run(socket, count) {
  return new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    const onAck = () => {
      done += 1;
      if (done === count) resolve();
      else if (sent < count) send();
    };
    const send = () => {
      sent += 1;
      socket.emit("echo", payload, onAck);
    };
    for (let i = 0; i < Math.min(windowSize, count); i++) send();
  });
}

async function main() {
  const socket = io(url, { transports: [transport || "websocket"], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  await run(socket, Math.min(2000, n)); // warm-up (JIT)
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(socket, n);
  const wall = Number(process.hrtime.bigint() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  socket.disconnect();
  process.stdout.write(
    JSON.stringify({
      client: "node socket.io-client",
      n,
      window: windowSize,
      transport: transport || "websocket",
      cpu_us_per_echo: (cpu.user + cpu.system) / n,
      wall_us_per_echo: wall / n,
    }) + "\n",
  );
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
