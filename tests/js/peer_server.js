"use strict";
// The official socket.io server (4.8.x) as a peer for socketwire's client tests.
//
// Usage: node peer_server.js [--port N] [--recovery] [--ping-interval MS] [--ping-timeout MS]
//                            [--tls-cert FILE --tls-key FILE] [--msgpack]
//                            [--max-http-buffer-size BYTES]
//
// Listens on 127.0.0.1 (port 0 by default) and prints {"port": N} on stdout once
// ready. Namespaces "/", "/chat", "/private" (whose middleware wants
// auth.token === "secret") and the dynamic ones matching ^/dyn-\w+$ share the
// handlers below, and GET / answers a page that loads /socket.io/socket.io.js;
// tests/client/peers.py mirrors them on socketwire's own server. With --recovery, connection state recovery is on;
// with --msgpack, the server speaks socket.io-msgpack-parser.

const fs = require("fs");
const http = require("http");
const https = require("https");
const { Server } = require("socket.io");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const port = Number(option("--port", "0"));
const recovery = process.argv.includes("--recovery");
const msgpack = process.argv.includes("--msgpack");
const pingInterval = Number(option("--ping-interval", "25000"));
const pingTimeout = Number(option("--ping-timeout", "20000"));
const maxHttpBufferSize = Number(option("--max-http-buffer-size", "1000000"));

const tlsCert = option("--tls-cert", null);
const tlsKey = option("--tls-key", null);
// The same page as PAGE in tests/client/peers.py (socket.io passes the requests
// that are not its own to this handler).
const PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>peer</title>' +
  '<script src="/socket.io/socket.io.js"></script></head><body></body></html>';
function page(req, res) {
  if (req.url === "/" && req.method === "GET") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(PAGE);
  } else {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("Not Found");
  }
}
const httpServer = tlsCert
  ? https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) }, page)
  : http.createServer(page);
const io = new Server(httpServer, {
  pingInterval,
  pingTimeout,
  maxHttpBufferSize,
  connectionStateRecovery: recovery ? { maxDisconnectionDuration: 60000, skipMiddlewares: true } : undefined,
  parser: msgpack ? require("socket.io-msgpack-parser") : undefined,
});

const records = new Map(); // key -> values received by "record" / "flaky"
const attempts = new Map(); // key -> deliveries of "flaky"

function record(key, value) {
  if (!records.has(key)) records.set(key, []);
  records.get(key).push(value);
}

// Split Socket.IO handler arguments into (args, ack); ack is a no-op when absent.
function split(args) {
  const last = args[args.length - 1];
  if (typeof last === "function") return [args.slice(0, -1), last];
  return [args, () => {}];
}

function setup(parent) {
  parent.on("connection", (socket) => {
    // The socket's own namespace (a child one for dynamic namespaces).
    const nsp = socket.nsp;
    // Report this socket's disconnect reason to the room "watch:<reason_key>".
    const watchKey = socket.handshake.auth && socket.handshake.auth.reason_key;
    if (watchKey) {
      socket.on("disconnect", (reason) => nsp.to("watch:" + watchKey).emit("gone", nsp.name, reason));
    }
    socket.on("echo", (...raw) => {
      const [args, ack] = split(raw);
      ack(...args);
    });
    // Emit `event` back to this client with the given arguments.
    socket.on("echo_event", (...raw) => {
      const [[event, ...args], ack] = split(raw);
      socket.emit(event, ...args);
      ack();
    });
    socket.on("whoami", (...raw) => {
      const [, ack] = split(raw);
      ack({
        sid: socket.id,
        nsp: nsp.name,
        engine: socket.conn.id,
        transport: socket.conn.transport.name,
        auth: socket.handshake.auth,
        query: socket.handshake.query,
        header: socket.handshake.headers["x-test"] || null,
        recovered: socket.recovered,
      });
    });
    // Emit `event` to this client with an ack; report the client's ack as "answer".
    socket.on("ask", (...raw) => {
      const [[event, ...args], ack] = split(raw);
      socket.emit(event, ...args, (...response) => socket.emit("answer", event, response));
      ack();
    });
    socket.on("join", (...raw) => {
      const [[room], ack] = split(raw);
      socket.join(room);
      ack(room);
    });
    socket.on("to_room", (...raw) => {
      const [[room, event, ...args], ack] = split(raw);
      nsp.to(room).emit(event, ...args);
      ack();
    });
    socket.on("broadcast", (...raw) => {
      const [[event, ...args], ack] = split(raw);
      nsp.emit(event, ...args);
      ack();
    });
    socket.on("broadcast_others", (...raw) => {
      const [[event, ...args], ack] = split(raw);
      socket.broadcast.emit(event, ...args);
      ack();
    });
    socket.on("volatile_event", (...raw) => {
      const [[event, ...args], ack] = split(raw);
      socket.volatile.emit(event, ...args);
      ack();
    });
    socket.on("set_data", (...raw) => {
      const [[key, value], ack] = split(raw);
      socket.data[key] = value;
      ack();
    });
    socket.on("get_data", (...raw) => {
      const [[key], ack] = split(raw);
      ack(socket.data[key] === undefined ? null : socket.data[key]);
    });
    // The namespaces connected over this socket's Engine.IO connection.
    socket.on("connection_namespaces", (...raw) => {
      const [, ack] = split(raw);
      ack(socket.client.sockets.size);
    });
    socket.on("server_disconnect", () => socket.disconnect());
    socket.on("close_transport", () => socket.conn.close());
    // For recovery: close this client's connection, then broadcast while it is away.
    socket.on("close_then_broadcast", (event, ...args) => {
      socket.conn.close();
      nsp.emit(event, ...args);
    });
    socket.on("garbage", () => socket.conn.send("zzz"));
    socket.on("stop_pings", (...raw) => {
      const [, ack] = split(raw);
      const conn = socket.conn;
      clearTimeout(conn.pingIntervalTimer);
      clearTimeout(conn.pingTimeoutTimer);
      conn.pingIntervalTimer = { refresh() {} };
      conn.pingTimeoutTimer = null;
      conn.schedulePing = () => {};
      ack();
    });
    socket.on("record", (...raw) => {
      const [[key, value], ack] = split(raw);
      record(key, value);
      ack();
    });
    socket.on("records", (...raw) => {
      const [[key], ack] = split(raw);
      ack(records.get(key) || []);
    });
    // Acknowledged from the third delivery on (for `retries`).
    socket.on("flaky", (...raw) => {
      const [[key, value], ack] = split(raw);
      const n = (attempts.get(key) || 0) + 1;
      attempts.set(key, n);
      record(key, value);
      if (n >= 3) ack("ok", n);
    });
    socket.on("engine_count", (...raw) => {
      const [, ack] = split(raw);
      ack(io.engine.clientsCount);
    });
    socket.on("message", (...raw) => {
      const [args, ack] = split(raw);
      socket.send(...args);
      ack();
    });
  });
}

setup(io.of("/"));
setup(io.of("/chat"));
const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { reason: "bad token" };
  next(err);
});
setup(priv);
setup(io.of(/^\/dyn-\w+$/));

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n");
});

// Exit when the parent goes away (stdin closes).
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
