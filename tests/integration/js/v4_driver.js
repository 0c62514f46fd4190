"use strict";
// An official socket.io-client steered line by line from Python
// (tests/integration/test_v4_features.py).
//
// Usage: node v4_driver.js <url> <transports>   (transports: "websocket" or
// "polling,websocket")
//
// stdin: one JSON command per line. stdout: one JSON observation per line.
//
// Commands ("conn" names a Manager, i.e. one Engine.IO connection; "id" names a
// Socket, i.e. one namespace on it):
//   {cmd: "open", conn, opts}                 open a Manager's engine, no namespace
//   {cmd: "socket", id, conn, nsp, auth, replies}
//        connect a namespace; `replies` maps an event name to the ack arguments
//        the client answers with (or "$echo"); events not listed are never acked
//   {cmd: "emit", id, event, args, ack, timeout}
//        emit; with `ack` (a tag) wait up to `timeout` ms for the server's ack
//   {cmd: "disconnect", id}                   socket.disconnect()
//   {cmd: "connect", id}                      socket.connect() again
//   {cmd: "close_engine", conn}               the engine closes (tab closed)
//   {cmd: "info", conn, tag}                  engine id, transport, readyState
//   {cmd: "wait_upgrade", conn}               print once the transport is WebSocket
//   {cmd: "exit"}
//
// Observations:
//   {conn, manager: "open"|"close"|"error", engine, transport, reason, message}
//   {conn, upgrade: name}
//   {id, event: "connect", sid, engine}
//   {id, event: "connect_error", message, data}
//   {id, event: "disconnect", reason}
//   {id, event, args, ack}                   any other event (ack: an ack was asked)
//   {id, ack: tag, error, args}              the answer to an emit with ack
//   {conn, info: {...}, tag}
//   {error: message}                         a command could not run

const readline = require("node:readline");
const { Manager } = require("socket.io-client");

const url = process.argv[2];
const transports = (process.argv[3] || "websocket").split(",");

const managers = new Map(); // conn -> Manager
const sockets = new Map(); // id -> Socket

function plain(value) {
  if (value instanceof ArrayBuffer) return { $bytes: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bytes: bytes.toString("hex") };
  }
  if (typeof value === "function") return "<fn>";
  if (value instanceof Error) return { $error: value.message };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = plain(v);
    return copy;
  }
  return value === undefined ? null : value;
}

function out(obj) {
  process.stdout.write(JSON.stringify(plain(obj)) + "\n");
}

function manager(conn, opts = {}) {
  let m = managers.get(conn);
  if (m) return m;
  m = new Manager(url, { transports, reconnection: false, ...opts });
  managers.set(conn, m);
  m.on("open", () => {
    const engine = m.engine;
    out({ conn, manager: "open", engine: engine.id, transport: engine.transport.name });
    engine.on("upgrade", (transport) => out({ conn, upgrade: transport.name }));
  });
  m.on("close", (reason) => out({ conn, manager: "close", reason }));
  m.on("error", (err) => out({ conn, manager: "error", message: err.message }));
  return m;
}

function connectSocket(cmd) {
  const id = cmd.id;
  if (sockets.has(id)) throw new Error(`socket ${id} exists`);
  const m = manager(cmd.conn || id, cmd.opts);
  const nsp = cmd.nsp || "/";
  if (m.nsps[nsp]) throw new Error(`${cmd.conn || id} already has a socket on ${nsp}`);
  const socket = m.socket(nsp, cmd.auth ? { auth: cmd.auth } : {});
  sockets.set(id, socket);
  const replies = cmd.replies || {};
  socket.on("connect", () => out({ id, event: "connect", sid: socket.id, engine: m.engine.id }));
  socket.on("connect_error", (err) =>
    out({ id, event: "connect_error", message: err.message, data: err.data }),
  );
  socket.on("disconnect", (reason) => out({ id, event: "disconnect", reason }));
  socket.onAny((event, ...args) => {
    const ack = args.length && typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ id, event, args, ack: ack !== null });
    if (ack && Object.hasOwn(replies, event)) {
      const reply = replies[event];
      ack(...(reply === "$echo" ? args : reply));
    }
  });
  if (!socket.active) socket.connect();
}

function emit(cmd) {
  const socket = sockets.get(cmd.id);
  const args = cmd.args || [];
  if (!cmd.ack) {
    socket.emit(cmd.event, ...args);
    return;
  }
  socket.timeout(cmd.timeout ?? 5000).emit(cmd.event, ...args, (err, ...answer) => {
    out({ id: cmd.id, ack: cmd.ack, error: err ? err.message : null, args: answer });
  });
}

function info(cmd) {
  const engine = managers.get(cmd.conn).engine;
  out({
    conn: cmd.conn,
    tag: cmd.tag,
    info: {
      engine: engine ? engine.id : null,
      transport: engine && engine.transport ? engine.transport.name : null,
      readyState: engine ? engine.readyState : null,
    },
  });
}

function waitUpgrade(cmd) {
  const engine = managers.get(cmd.conn).engine;
  const done = () => out({ conn: cmd.conn, upgraded: engine.transport.name });
  if (engine.transport.name === "websocket") done();
  else engine.once("upgrade", done);
}

function exit() {
  for (const socket of sockets.values()) socket.disconnect();
  for (const m of managers.values()) if (m.engine) m.engine.close();
  setImmediate(() => process.exit(0));
}

const handlers = {
  open: (cmd) => manager(cmd.conn, { ...cmd.opts, autoConnect: false }).open(),
  socket: connectSocket,
  emit,
  disconnect: (cmd) => sockets.get(cmd.id).disconnect(),
  connect: (cmd) => sockets.get(cmd.id).connect(),
  close_engine: (cmd) => managers.get(cmd.conn).engine.close(),
  info,
  wait_upgrade: waitUpgrade,
  exit,
};

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
    const handler = handlers[cmd.cmd];
    if (!handler) throw new Error(`unknown command ${cmd.cmd}`);
    handler(cmd);
  } catch (err) {
    process.stderr.write(`${line}: ${err && err.stack ? err.stack : err}\n`);
    out({ error: String(err && err.message ? err.message : err) });
  }
});
lines.on("close", () => process.exit(0));
