"use strict";
// examples/configuration.py: custom path, heartbeat and payload limit.
const { client, waitFor, emitWithAck, out, run } = require("./_common");

run(async () => {
  // The default path is not served by this server.
  const wrong = client("wrong", "/", { forceNew: true });
  await waitFor(wrong, "connect_error");
  wrong.close();

  const socket = client("a", "/", { path: "/realtime", forceNew: true });
  await waitFor(socket, "connect");
  await waitFor(socket, "config");
  const engine = socket.io.engine;
  out({
    client: "a",
    handshake: { pingInterval: engine._pingInterval, pingTimeout: engine._pingTimeout, maxPayload: engine._maxPayload },
  });
  out({ client: "a", ack: "size", args: [await emitWithAck(socket, "size", "x".repeat(50000))] });

  // A message over max_http_buffer_size closes the connection.
  const big = client("big", "/", { path: "/realtime", forceNew: true });
  await waitFor(big, "connect");
  big.emit("size", "y".repeat(300000));
  await waitFor(big, "disconnect");
});
