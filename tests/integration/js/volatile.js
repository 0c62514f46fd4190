"use strict";
// examples/volatile.py: volatile tweets keep arriving while connected.
const { client, waitFor, run } = require("./_common");

run(async () => {
  const socket = client("fan");
  await waitFor(socket, "bieber tweet", { count: 3 });
});
