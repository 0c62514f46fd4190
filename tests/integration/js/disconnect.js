"use strict";
// examples/disconnect.py: disconnecting/disconnect and the reasons on both sides.
const { client, waitFor, emitWithAck, out, run } = require("./_common");

run(async () => {
  const watcher = client("watcher", "/", { forceNew: true });
  const leaver = client("leaver", "/", { forceNew: true });
  const kicked = client("kicked", "/", { forceNew: true });
  const closer = client("closer", "/", { forceNew: true });
  const all = [watcher, leaver, kicked, closer];
  await Promise.all(all.map((s) => waitFor(s, "connect")));
  out({ client: "ids", ids: Object.fromEntries(all.map((s) => [s.label, s.id])) });
  for (const s of all) await emitWithAck(s, "join", "room1");

  // The client leaves by itself.
  leaver.disconnect();
  await waitFor(leaver, "disconnect");
  await waitFor(watcher, "user disconnected", { count: 1 });

  // The server disconnects a client.
  kicked.emit("kick me");
  await waitFor(kicked, "disconnect");
  await waitFor(watcher, "user disconnected", { count: 2 });
  await waitFor(watcher, "user has left", { count: 2 });

  // The whole connection goes away (as when a browser tab closes).
  await waitFor(closer, "user has left", { count: 2 });
  closer.io.engine.close();
  await waitFor(closer, "disconnect");
  await waitFor(watcher, "user disconnected", { count: 3 });
  await waitFor(watcher, "user has left", { count: 3 });
});
