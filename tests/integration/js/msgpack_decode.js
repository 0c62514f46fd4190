"use strict";
// Decodes msgpack packets with socket.io-msgpack-parser's Decoder and prints each
// as a JSON line: {ok: true, keys, packet} or {ok: false, error}.
//
// Usage: node msgpack_decode.js <file>   (one packet in hex per line)
// Buffers print as {$bytes: hex}, Dates as {$date: ms}, undefined as {$undefined: true}.

const fs = require("fs");
const { Decoder } = require("socket.io-msgpack-parser");

function plain(value) {
  if (value === undefined) return { $undefined: true };
  if (Buffer.isBuffer(value)) return { $bytes: value.toString("hex") };
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const obj = {};
    for (const key of Object.keys(value)) obj[key] = plain(value[key]);
    return obj;
  }
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

const hexes = fs.readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l.trim());
for (const hex of hexes) {
  const decoder = new Decoder();
  let packet;
  decoder.on("decoded", (p) => (packet = p));
  let line;
  try {
    decoder.add(Buffer.from(hex, "hex"));
    line = { ok: true, keys: Object.keys(packet), packet: plain(packet) };
  } catch (err) {
    line = { ok: false, error: err.message };
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}
