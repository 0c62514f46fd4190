"use strict";
// examples/client_data.py: nicknames kept in socket.data, used by `msg`.
const { client, waitFor, run } = require("./_common");

run(async () => {
  const alice = client("alice", "/", { forceNew: true });
  const bob = client("bob", "/", { forceNew: true });
  await Promise.all([waitFor(alice, "connect"), waitFor(bob, "connect")]);

  // Before picking a name, bob is anonymous.
  bob.emit("msg", "who am I?");
  await waitFor(bob, "msg");
  await waitFor(alice, "msg");

  alice.emit("set nickname", "alice");
  bob.emit("set nickname", "bob");
  await Promise.all([waitFor(alice, "ready"), waitFor(bob, "ready")]);

  alice.emit("msg", "hello from alice");
  await Promise.all([waitFor(alice, "msg", { count: 2 }), waitFor(bob, "msg", { count: 2 })]);
  bob.emit("msg", "hi alice");
  await Promise.all([waitFor(alice, "msg", { count: 3 }), waitFor(bob, "msg", { count: 3 })]);
});
