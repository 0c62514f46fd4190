"use strict";
// examples/binary.py: binary both ways, nested in objects and arrays.
const crypto = require("crypto");
const { client, waitFor, out, run } = require("./_common");

function ack(socket, ...args) {
  return new Promise((resolve) => socket.emit(...args, (...reply) => resolve(reply)));
}

run(async () => {
  const socket = client("a");
  const [welcome, raw] = await waitFor(socket, "welcome");
  out({
    client: "a",
    welcome_types: {
      logo: Buffer.isBuffer(welcome.logo),
      parts: welcome.parts.map((p) => Buffer.isBuffer(p)),
      raw: Buffer.isBuffer(raw),
    },
  });

  const chunks = [crypto.randomBytes(1000), Buffer.from([0, 1, 2, 255]), Buffer.alloc(0)];
  const whole = Buffer.concat(chunks);
  out({ client: "a", sent_sha256: crypto.createHash("sha256").update(whole).digest("hex") });
  out({ client: "a", ack: "upload", args: await ack(socket, "upload", { name: "a.bin", chunks }) });

  const deep = {
    text: "not binary",
    buf: Buffer.from("hello"),
    list: [Buffer.from([1]), { inner: new Uint8Array([2, 3]).buffer }, [Buffer.from([4, 5, 6])]],
  };
  out({ client: "a", ack: "echo", args: await ack(socket, "echo", deep, Buffer.from([7]), "tail") });
});
