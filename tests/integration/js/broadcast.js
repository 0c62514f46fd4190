"use strict";
// examples/broadcast.py: broadcast.emit skips the sender, sio.emit does not.
const { client, waitFor, run } = require("./_common");

run(async () => {
  const first = client("first", "/", { forceNew: true });
  await waitFor(first, "connect");
  const second = client("second", "/", { forceNew: true });
  await waitFor(second, "connect");
  await waitFor(first, "user connected");

  // Packets of one connection keep their order: when `announcement` arrives,
  // anything broadcast to `second` before it has arrived too.
  second.emit("announce", "hello everyone");
  await Promise.all([waitFor(first, "announcement"), waitFor(second, "announcement")]);
});
