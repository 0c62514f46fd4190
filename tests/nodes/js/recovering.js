"use strict";
// One official socket.io-client, steered line by line from Python
// (tests/nodes/test_recovery.py), for connection state recovery across nodes.
//
// Usage: node recovering.js <url> <transports>   ("websocket" or "polling")
//
// The client never reconnects by itself (reconnection: false): the test says
// when it comes back, so that it knows which node nginx sends it to and what
// was broadcast while it was away. Coming back is `socket.connect()`, the step
// the Manager takes on its own reconnections: the CONNECT packet carries the
// session's pid and the last offset received.
//
// stdin, one JSON command per line:
//   {cmd: "connect", auth}        open the socket ("/") with this auth
//   {cmd: "ask", tag, event, args} emit with an ack; prints {tag, args} or {tag, error}
//   {cmd: "cut"}                  close the Engine.IO connection (no DISCONNECT packet)
//   {cmd: "back"}                 connect again
//   {cmd: "exit"}
// stdout, one JSON observation per line:
//   {event: "connect", id, recovered, transport}
//   {event: "disconnect", reason}
//   {event: "connect_error", message}
//   {event: NAME, args}           any other event (the client took the offset off)
//   {error: message}              a command that could not run

const readline = require("node:readline");
const { io } = require("socket.io-client");

const url = process.argv[2];
const transports = (process.argv[3] || "websocket").split(",");

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

let socket = null;

function connect(cmd) {
  if (socket !== null) throw new Error("already connected once: use back");
  socket = io(url, {
    transports,
    reconnection: false,
    forceNew: true,
    auth: cmd.auth || {},
  });
  socket.on("connect", () =>
    out({
      event: "connect",
      id: socket.id,
      recovered: socket.recovered,
      transport: socket.io.engine.transport.name,
    }),
  );
  socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
  socket.on("connect_error", (err) => out({ event: "connect_error", message: err.message }));
  socket.onAny((event, ...args) => out({ event, args }));
}

function ask(cmd) {
  socket.timeout(cmd.timeout ?? 5000).emit(cmd.event, ...(cmd.args || []), (err, ...answer) => {
    out(err ? { tag: cmd.tag, error: err.message } : { tag: cmd.tag, args: answer });
  });
}

const commands = {
  connect,
  ask,
  cut: () => socket.io.engine.close(),
  back: () => socket.connect(),
  exit: () => {
    if (socket !== null) socket.disconnect();
    setImmediate(() => process.exit(0));
  },
};

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  try {
    const cmd = JSON.parse(line);
    const run = commands[cmd.cmd];
    if (!run) throw new Error(`unknown command ${cmd.cmd}`);
    run(cmd);
  } catch (err) {
    out({ error: String(err && err.message ? err.message : err) });
  }
});
lines.on("close", () => process.exit(0));
