// The anchor of bench/workers_broadcast.py: socket.io 4.8 on Node, the same
// "fanout" handler as the socketwire app, either in one process or as a primary
// with N workers (@socket.io/sticky hands connections to the workers,
// @socket.io/cluster-adapter carries broadcasts between them through the primary).
//
// Usage: node cluster_broadcast.js [--workers N]   (N = 0: one process)
// Prints "serving socket.io on http://127.0.0.1:PORT" on stderr once every worker listens.
"use strict";

const cluster = require("cluster");
const http = require("http");
const { Server } = require("socket.io");
const { setupMaster, setupWorker } = require("@socket.io/sticky");
const { createAdapter, setupPrimary } = require("@socket.io/cluster-adapter");

const at = process.argv.indexOf("--workers");
const workers = at >= 0 ? Number(process.argv[at + 1]) : 0;
const options = { pingInterval: 300000, pingTimeout: 200000 };

function handlers(io) {
  io.on("connection", (socket) => {
    socket.on("fanout", async (count, size, ack) => {
      const d = "x".repeat(size);
      for (let i = 0; i < count; i++) {
        io.emit("tick", { i, d });
        await new Promise((resolve) => setImmediate(resolve));
      }
      ack(count);
    });
  });
}

if (workers === 0) {
  const httpServer = http.createServer();
  handlers(new Server(httpServer, options));
  httpServer.listen(0, "127.0.0.1", () => {
    console.error(`serving socket.io on http://127.0.0.1:${httpServer.address().port}`);
  });
} else if (cluster.isPrimary) {
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: "round-robin" });
  setupPrimary();
  cluster.setupPrimary({ serialization: "advanced" });
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (msg) => {
      if (msg === "ready" && ++ready === workers) {
        httpServer.listen(0, "127.0.0.1", () => {
          console.error(`serving socket.io on http://127.0.0.1:${httpServer.address().port}`);
        });
      }
    });
  }
  process.on("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers)) worker.kill();
    process.exit(0);
  });
} else {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { ...options, adapter: createAdapter() });
  setupWorker(io);
  handlers(io);
  process.send("ready");
}
