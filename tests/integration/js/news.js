"use strict";
// examples/news.py: answer `news` with `my other event`, expect the echo.
const { client, waitFor, run } = require("./_common");

run(async () => {
  const socket = client("a");
  socket.on("news", (data) => socket.emit("my other event", { my: "data" }));
  await waitFor(socket, "connect");
  await waitFor(socket, "my other event received");
});
