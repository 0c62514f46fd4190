"use strict";
// examples/acks.py: acknowledgements both ways.
const { client, waitFor, emitWithAck, out, run } = require("./_common");

run(async () => {
  const socket = client("a");
  // Server -> client: answer with two values that depend on the question.
  socket.on("ferret", (name, fn) => fn("woot", name));
  await waitFor(socket, "connect");

  // Client -> server, callback style.
  const woot = await new Promise((resolve) => socket.emit("ferret", "tobi", (...args) => resolve(args)));
  out({ client: "a", ack: "ferret", args: woot });
  // Several ack values from a tuple.
  const qr = await new Promise((resolve) => socket.emit("divmod", 17, 5, (...args) => resolve(args)));
  out({ client: "a", ack: "divmod", args: qr });
  // Promise style (first ack argument only), with a timeout.
  out({ client: "a", ack: "divmod/emitWithAck", args: [await emitWithAck(socket, "divmod", 100, 7)] });
  // Explicit ack from a handler taking `ack`; then the same event without an ack.
  const queued = await new Promise((resolve) => socket.emit("save", { id: 42 }, (...args) => resolve(args)));
  out({ client: "a", ack: "save", args: queued });
  socket.emit("save", { id: 43 });
  await waitFor(socket, "saved", { count: 2 });

  await waitFor(socket, "ferret answered", { count: 2 });
});
