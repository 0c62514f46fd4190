"use strict";
// Byte vectors of socket.io-msgpack-parser 3.0.2 (notepack.io underneath), as
// stored in tests/core/test_socketio_msgpack.py; the integration test runs this
// script again and checks the stored copy is still what the npm package writes.
//
// Prints one JSON line per vector: {name, hex, npm}, where npm is "ok" when the
// npm Decoder accepts the bytes, or "error: <message>" when it throws.

const { Encoder, Decoder } = require("socket.io-msgpack-parser");
const notepack = require("notepack.io");

const encoder = new Encoder();

function seq(n, f) {
  return Array.from({ length: n }, (_, i) => f(i));
}

function keyed(n) {
  const obj = {};
  for (let i = 0; i < n; i++) obj["k" + i] = i;
  return obj;
}

const bytes300 = Buffer.from(seq(300, (i) => i % 256));

// Packets the way the tests describe them: keys in the order type, data, nsp, id.
const packets = {
  // valid, and what our encoder writes byte for byte
  "connect": { type: 0, nsp: "/" },
  "connect-auth-admin": { type: 0, data: { token: "abc" }, nsp: "/admin" },
  "connect-sid": { type: 0, data: { sid: "oSO0OpakMV_3jnilAAAA" }, nsp: "/" },
  "disconnect": { type: 1, nsp: "/" },
  "disconnect-admin": { type: 1, nsp: "/admin" },
  "event": { type: 2, data: ["foo"], nsp: "/" },
  "event-admin-id": { type: 2, data: ["bar", 1, "two", true, null, 1.5], nsp: "/admin", id: 12 },
  "event-binary-nested": {
    type: 2,
    data: [
      "upload",
      { name: "a.bin", chunks: [Buffer.from([1, 2]), Buffer.alloc(0)], meta: { raw: bytes300 } },
      Buffer.from([255]),
    ],
    nsp: "/",
    id: 128,
  },
  "event-number-name": { type: 2, data: [42, "x"], nsp: "/" },
  "ack-empty": { type: 3, data: [], nsp: "/", id: 0 },
  "ack-admin-binary": {
    type: 3,
    data: ["ok", Buffer.from([0, 1]), { b: [Buffer.from([2])] }],
    nsp: "/admin",
    id: 65536,
  },
  "connect-error-object": { type: 4, data: { message: "no", data: { x: 1 } }, nsp: "/" },
  "connect-error-string": { type: 4, data: "Invalid namespace", nsp: "/nope" },
  "numbers": {
    type: 2,
    data: [
      "n", 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 9007199254740991,
      -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9007199254740991,
      0.5, -1234.5678, 1e-300,
    ],
    nsp: "/",
    id: 4294967296,
  },
  "strings": {
    type: 2,
    data: ["s", "", "a".repeat(31), "b".repeat(32), "c".repeat(255), "d".repeat(256), "é€😀"],
    nsp: "/",
  },
  "containers": {
    type: 2,
    data: ["c", seq(15, (i) => i), seq(16, (i) => i), keyed(15), keyed(16), [[], {}]],
    nsp: "/",
  },
  "dates": { type: 2, data: ["d", new Date(1700000000123), new Date(-1)], nsp: "/" },

  // valid, as the npm peers write them (other key orders, undefined, ...): decode only
  "client-connect-undefined": { type: 0, data: undefined, nsp: "/" },
  "client-event-options-id": {
    type: 2, data: ["ev", 1], options: { compress: true }, id: 0, nsp: "/",
  },
  "client-ack": { type: 3, id: 7, data: [{ ok: true }], nsp: "/" },
  "server-ack": { id: 7, type: 3, data: ["r"], nsp: "/" },
  "server-connect-pid-undefined": { type: 0, data: { sid: "x", pid: undefined }, nsp: "/" },
  "client-typed-arrays": {
    type: 2,
    data: ["bin", new Uint8Array([1, 2, 3]), new Uint8Array([7]).buffer, new Uint8Array(8).buffer],
    nsp: "/",
  },
  "undefined-nested": {
    type: 2, data: ["u", undefined, { a: undefined, b: 1 }, [undefined]], nsp: "/",
  },
  "mixed-ambiguous": {
    type: 2,
    data: ["m", undefined, new Uint8Array([0]).buffer, new Date(0), new Uint8Array(8).buffer],
    nsp: "/",
  },
  "integral-float": { type: 2, data: ["f", 2.0], nsp: "/" },
  "float-type-and-id": { type: 2, data: ["x"], nsp: "/" }, // patched below: 0xcb type / id
  "any-nsp-string": { type: 0, nsp: "admin" },
  "negative-id": { type: 2, data: ["x"], nsp: "/", id: -5 },
  "ack-without-id": { type: 3, data: [], nsp: "/" },

  // invalid for the npm decoder
  "bad-type-5": { type: 5, data: ["x"], nsp: "/" },
  "bad-type-negative": { type: -1, data: ["x"], nsp: "/" },
  "bad-type-string": { type: "2", data: ["x"], nsp: "/" },
  "bad-type-float": { type: 2.5, data: ["x"], nsp: "/" },
  "bad-type-missing": { data: ["x"], nsp: "/" },
  "bad-type-undefined": { type: undefined, data: ["x"], nsp: "/" },
  "bad-type-null": { type: null, data: ["x"], nsp: "/" },
  "bad-nsp-missing": { type: 2, data: ["x"] },
  "bad-nsp-number": { type: 2, data: ["x"], nsp: 1 },
  "bad-nsp-null": { type: 2, data: ["x"], nsp: null },
  "bad-nsp-buffer": { type: 2, data: ["x"], nsp: Buffer.from("/") },
  "bad-id-string": { type: 2, data: ["x"], nsp: "/", id: "1" },
  "bad-id-float": { type: 2, data: ["x"], nsp: "/", id: 1.5 },
  "bad-id-null": { type: 2, data: ["x"], nsp: "/", id: null },
  "bad-id-date": { type: 2, data: ["x"], nsp: "/", id: new Date(0) },
  "bad-connect-array": { type: 0, data: [1], nsp: "/" },
  "bad-connect-null": { type: 0, data: null, nsp: "/" },
  "bad-connect-string": { type: 0, data: "x", nsp: "/" },
  "bad-connect-buffer": { type: 0, data: Buffer.from([1]), nsp: "/" },
  "bad-disconnect-data": { type: 1, data: {}, nsp: "/" },
  "bad-disconnect-null": { type: 1, data: null, nsp: "/" },
  "bad-connect-error-missing": { type: 4, nsp: "/" },
  "bad-connect-error-number": { type: 4, data: 1, nsp: "/" },
  "bad-connect-error-array": { type: 4, data: ["x"], nsp: "/" },
  "bad-event-missing": { type: 2, nsp: "/" },
  "bad-event-object": { type: 2, data: { 0: "x" }, nsp: "/" },
  "bad-event-string": { type: 2, data: "x", nsp: "/" },
  "bad-ack-missing": { type: 3, nsp: "/", id: 1 },
  "bad-ack-object": { type: 3, data: {}, nsp: "/", id: 1 },
  "bad-ack-null": { type: 3, data: null, nsp: "/", id: 1 },

  // accepted by the npm decoder, refused by socket.io's rules (and by us)
  "bad-event-empty": { type: 2, data: [], nsp: "/" },
  "bad-event-name-reserved": { type: 2, data: ["connect"], nsp: "/" },
  "bad-event-name-object": { type: 2, data: [{}], nsp: "/" },
  "bad-event-name-bool": { type: 2, data: [true], nsp: "/" },
  "bad-event-name-null": { type: 2, data: [null], nsp: "/" },
  "bad-unknown-key": { type: 2, data: ["x"], nsp: "/", extra: 1 },
};

const raw = {
  // not a map
  "bad-not-map-array": [2, ["x"], "/"],
  "bad-not-map-int": 2,
  "bad-not-map-string": "2[\"x\"]",
  "bad-not-map-null": null,
};

function npmVerdict(buf) {
  const decoder = new Decoder();
  let got = null;
  decoder.on("decoded", (p) => (got = p));
  try {
    decoder.add(buf);
  } catch (err) {
    return `error: ${err.message}`;
  }
  return got === null ? "error: nothing decoded" : "ok";
}

function print(name, buf) {
  process.stdout.write(JSON.stringify({ name, hex: buf.toString("hex"), npm: npmVerdict(buf) }) + "\n");
}

for (const [name, packet] of Object.entries(packets)) {
  const encoded = encoder.encode(packet);
  if (encoded.length !== 1 || !Buffer.isBuffer(encoded[0])) throw new Error(`${name}: not one Buffer`);
  let buf = encoded[0];
  if (name === "float-type-and-id") {
    // {type: 2.0, data: ["x"], nsp: "/", id: 3.0} with the numbers as float64,
    // as a msgpack encoder other than notepack may write them (notepack writes 2).
    buf = Buffer.concat([
      Buffer.from([0x84, 0xa4]), Buffer.from("type"), Buffer.from("cb4000000000000000", "hex"),
      buf.subarray(7), // "data": ["x"], "nsp": "/"  (after 0x83 "type" 2)
      Buffer.from([0xa2]), Buffer.from("id"), Buffer.from("cb4008000000000000", "hex"),
    ]);
  }
  print(name, buf);
}
for (const [name, value] of Object.entries(raw)) print(name, notepack.encode(value));
