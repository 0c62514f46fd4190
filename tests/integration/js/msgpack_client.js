"use strict";
// The official socket.io-client with socket.io-msgpack-parser against a
// socketwire Server(parser="msgpack") (tests/integration/test_msgpack_parser.py).
//
// Usage: node msgpack_client.js <url> <transports>

const parser = require("socket.io-msgpack-parser");
const { io, url, transports, client, waitFor, out, run, withTimeout, WAIT_MS } = require("./_common");

// Emit with a callback; resolves with every argument of the acknowledgement.
function ack(socket, ...args) {
  const reply = new Promise((resolve) => socket.emit(...args, (...answer) => resolve(answer)));
  return withTimeout(reply, WAIT_MS, `ack of ${args[0]}`);
}

function kinds(values) {
  return values.map((v) =>
    Buffer.isBuffer(v) ? "Buffer" : v instanceof Date ? "Date" : v === null ? "null" : typeof v,
  );
}

run(async () => {
  const a = client("a", "/", { parser });
  // The client answers the server's question (server -> client event with an ack).
  a.on("question", (x, buf, cb) => cb("answer", x, buf));

  // server -> client: an event with binary, nested too
  const [sid, raw, nested] = await waitFor(a, "welcome");
  out({
    client: "a",
    welcome_sid_matches: sid === a.id,
    welcome_types: { raw: Buffer.isBuffer(raw), nested: Buffer.isBuffer(nested.parts[0]) },
  });

  // client -> server: an event without ack, then events with acks, binary both ways
  a.emit("note", "first", Buffer.from([1, 2, 3]), { deep: [Buffer.alloc(0)] });
  out({
    client: "a",
    ack: "echo",
    args: await ack(a, "echo", "text", 1, 2.5, true, null, { k: [Buffer.from([1, 2, 3])] }, Buffer.alloc(0)),
  });
  const empty = await ack(a, "echo");
  out({ client: "a", ack: "echo-nothing", args: empty });

  // What Node's notepack writes beyond Buffers: typed arrays, undefined, Date.
  const inspected = await ack(
    a,
    "inspect",
    new Uint8Array([9, 8, 7]),
    new Uint8Array([5]).buffer,
    { keep: 1, drop: undefined },
    [undefined],
    new Date(1700000000123),
  );
  out({ client: "a", ack: "inspect", args: inspected, kinds: kinds(inspected), date: inspected[1].getTime() });

  // server -> client with an ack (the server awaits the answer, then acks ours)
  out({ client: "a", ack: "ask", args: await ack(a, "ask", 21) });

  // a broadcast to several clients
  const b = client("b", "/", { parser });
  const c = client("c", "/", { parser });
  await Promise.all([waitFor(b, "welcome"), waitFor(c, "welcome")]);
  a.emit("shout", "hello all", Buffer.from([0xca, 0xfe]));
  await Promise.all([a, b, c].map((s) => waitFor(s, "news")));

  // a namespace, multiplexed on a's connection
  const adm = client("adm", "/admin", { parser });
  await waitFor(adm, "admin-hello");
  out({ client: "adm", same_engine: adm.io === a.io, ack: "admin-echo", args: await ack(adm, "admin-echo", Buffer.from("hi")) });

  // CONNECT_ERROR from a middleware, with data
  const bad = io(url, { transports, parser, auth: { refuse: true }, forceNew: true, reconnection: false });
  const err = await withTimeout(new Promise((resolve) => bad.on("connect_error", resolve)), WAIT_MS, "connect_error");
  out({ client: "bad", connect_error: { message: err.message, data: err.data } });
  bad.close();
});
