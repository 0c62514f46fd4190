"use strict";
// notepack.io as @socket.io/redis-adapter uses it: encodes values, decodes bytes.
//
// Usage: node redis_vectors.js [encode|decode] <JSON list> [[encode|decode] <JSON list>]...
//
// The mode defaults to "encode". A list is given inline, or as "@<path>" (read from
// that file: lists too long for one argument), or as "-" or left out (read from stdin).
// * encode: each value of the list is encoded with notepack.io; one line per
//   value, the JSON string of the hex.
// * decode: each value of the list is a hex string, decoded with notepack.io;
//   one line per value, the JSON of the result, or {"$error": message}.
// The first line is {"notepack": "<version>"}.
//
// Values that JSON cannot carry are tagged objects, both ways:
// {"$bin": [bytes]} is a Buffer, {"$date": ms} a Date, {"$undefined": true}
// undefined, {"$number": "NaN" | "Infinity" | "-Infinity" | "-0"} those numbers.

const fs = require("fs");
const path = require("path");

// The very notepack.io the Redis adapter requires.
const adapterDir = path.dirname(require.resolve("@socket.io/redis-adapter"));
const notepackMain = require.resolve("notepack.io", { paths: [adapterDir] });
const notepack = require(notepackMain);
const notepackVersion = JSON.parse(
  fs.readFileSync(path.join(notepackMain, "..", "..", "package.json"), "utf8"),
).version;

function fromJSON(value) {
  if (Array.isArray(value)) return value.map(fromJSON);
  if (value === null || typeof value !== "object") return value;
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const [key] = keys;
    const tagged = value[key];
    if (key === "$bin") return Buffer.from(tagged);
    if (key === "$date") return new Date(tagged);
    if (key === "$undefined") return undefined;
    if (key === "$number") return tagged === "-0" ? -0 : Number(tagged);
  }
  const out = {};
  for (const key of keys) out[key] = fromJSON(value[key]);
  return out;
}

function toJSON(value) {
  if (value === undefined) return { $undefined: true };
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return { $number: String(value) };
    if (Object.is(value, -0)) return { $number: "-0" };
    return value;
  }
  if (Buffer.isBuffer(value)) return { $bin: [...value] };
  if (value instanceof ArrayBuffer) return { $bin: [...Buffer.from(value)] };
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(toJSON);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) out[key] = toJSON(value[key]);
    return out;
  }
  return value;
}

// One JSON text per line, with the characters that Python's str.splitlines()
// also takes for line ends (JSON.stringify leaves them raw) escaped.
function jsonLine(value) {
  return (
    JSON.stringify(value).replace(
      /[\u0085\u2028\u2029]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
    ) + "\n"
  );
}

function run(mode, list) {
  if (!Array.isArray(list)) throw new Error(`${mode}: expected a JSON list`);
  for (const item of list) {
    let line;
    if (mode === "encode") {
      line = notepack.encode(fromJSON(item)).toString("hex");
    } else {
      try {
        line = toJSON(notepack.decode(Buffer.from(item, "hex")));
      } catch (err) {
        line = { $error: String(err && err.message) };
      }
    }
    process.stdout.write(jsonLine(line));
  }
}

function main() {
  const args = process.argv.slice(2);
  const jobs = [];
  let i = 0;
  while (i < args.length || jobs.length === 0) {
    let mode = "encode";
    if (args[i] === "encode" || args[i] === "decode") mode = args[i++];
    let text = args[i++];
    if (text === undefined || text === "-") text = fs.readFileSync(0, "utf8");
    else if (text.startsWith("@")) text = fs.readFileSync(text.slice(1), "utf8");
    jobs.push([mode, JSON.parse(text)]);
  }
  process.stdout.write(jsonLine({ notepack: notepackVersion }));
  for (const [mode, list] of jobs) run(mode, list);
}

main();
