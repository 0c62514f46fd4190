"use strict";
// examples/rooms.py: join, to(room), socket.to(room), except_, leave.
const { client, waitFor, emitWithAck, out, run } = require("./_common");

run(async () => {
  const a = client("a", "/", { forceNew: true });
  const b = client("b", "/", { forceNew: true });
  const c = client("c", "/", { forceNew: true });
  await Promise.all([a, b, c].map((s) => waitFor(s, "connect")));
  out({ client: "ids", ids: { a: a.id, b: b.id, c: c.id } });

  for (const s of [a, b, c]) out({ client: s.label, joined: await emitWithAck(s, "join", "lobby") });
  out({ client: "c", joined: await emitWithAck(c, "join", "vip") });

  // a's packets are handled in order; each step's messages are sent before
  // the next step, and `finished` (to everyone) comes last on every connection.
  a.emit("shout", "lobby", "1 shout");
  a.emit("say", "lobby", "2 say");
  a.emit("shout except", "lobby", "vip", "3 except vip");
  await waitFor(a, "room message", { count: 2 }); // steps 1-3 done before b leaves
  out({ client: "b", left: await emitWithAck(b, "leave", "lobby") });
  a.emit("shout", "lobby", "4 after b left");
  a.emit("say", "nobody-here", "5 empty room");
  a.emit("finish");
  await Promise.all([a, b, c].map((s) => waitFor(s, "finished")));
});
