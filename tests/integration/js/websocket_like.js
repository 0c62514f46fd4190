"use strict";
// examples/websocket_like.py: send/message echo.
const { client, waitFor, run } = require("./_common");

run(async () => {
  const socket = client("a");
  await waitFor(socket, "connect");
  socket.send("hi");
  socket.send({ nested: ["json", 1, true, null] });
  socket.send("two", "args");
  await waitFor(socket, "message", { count: 3 });
});
