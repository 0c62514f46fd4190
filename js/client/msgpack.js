/*
 * The Socket.IO msgpack parser (the format of the npm package
 * socket.io-msgpack-parser): each Socket.IO packet {type, data, nsp, id} is one
 * msgpack value sent as one binary Engine.IO message, binary data included
 * as msgpack `bin`. Values as notepack.io writes them: `undefined` is the ext
 * d4 00 00; a Date is the ext d7 00 + int64 milliseconds.
 * Use: io(url, { parser: msgpackParser }); socketwire's server: Server(parser="msgpack").
 */
import { Emitter, PacketType as T } from "./socket.io.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
const tag = (x) => Object.prototype.toString.call(x);

// ---------------------------------------------------------------- encoding

function encodeValue(value, out) {
  const byte = (b) => out.push(b & 0xff);
  const bytes = (n, v) => {
    for (let i = n - 1; i >= 0; i--) byte(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
  };
  // A header of one of three sizes: small (in the first byte), 8, 16 or 32 bits.
  const head = (n, small, smallMax, b8, b16, b32) => {
    if (n <= smallMax && small !== null) byte(small | n);
    else if (n < 0x100 && b8 !== null) byte(b8), byte(n);
    else if (n < 0x10000) byte(b16), bytes(2, n);
    else byte(b32), bytes(4, n);
  };
  if (value === null) return byte(0xc0);
  if (value === undefined) return out.push(0xd4, 0, 0);
  if (value === false || value === true) return byte(value ? 0xc3 : 0xc2);
  if (typeof value === "number") {
    if (Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER) {
      if (value >= 0) {
        if (value < 0x80) return byte(value);
        if (value < 0x100) return byte(0xcc), byte(value);
        if (value < 0x10000) return byte(0xcd), bytes(2, value);
        if (value < 0x100000000) return byte(0xce), bytes(4, value);
        return byte(0xcf), bytes(8, value);
      }
      if (value >= -0x20) return byte(value);
      if (value >= -0x80) return byte(0xd0), byte(value);
      if (value >= -0x8000) return byte(0xd1), bytes(2, value);
      if (value >= -0x80000000) return byte(0xd2), bytes(4, value);
      return byte(0xd3), bytes(8, BigInt.asUintN(64, BigInt(value)));
    }
    byte(0xcb);
    const f = new DataView(new ArrayBuffer(8));
    f.setFloat64(0, value);
    return out.push(...new Uint8Array(f.buffer));
  }
  if (typeof value === "string") {
    const b = utf8.encode(value);
    head(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    for (const x of b) out.push(x);
    return;
  }
  if (ArrayBuffer.isView(value) || tag(value) === "[object ArrayBuffer]") {
    const b = ArrayBuffer.isView(value)
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8Array(value);
    head(b.length, null, -1, 0xc4, 0xc5, 0xc6);
    for (const x of b) out.push(x);
    return;
  }
  if (value instanceof Date) {
    out.push(0xd7, 0);
    return bytes(8, BigInt.asUintN(64, BigInt(value.getTime())));
  }
  if (typeof value.toJSON === "function") return encodeValue(value.toJSON(), out);
  if (Array.isArray(value)) {
    head(value.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const v of value) encodeValue(v, out);
    return;
  }
  // Keys whose value is undefined or a function are left out, as notepack.io does.
  const keys = Object.keys(value).filter((k) => value[k] !== undefined && typeof value[k] !== "function");
  head(keys.length, 0x80, 15, null, 0xde, 0xdf);
  for (const k of keys) encodeValue(k, out), encodeValue(value[k], out);
}

// ---------------------------------------------------------------- decoding

function decodeValue(buf) {
  const view = new DataView(buf);
  let pos = 0;
  const uint = (n) => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + view.getUint8(pos++);
    return v;
  };
  const take = (n) => {
    if (pos + n > buf.byteLength) throw new Error("msgpack: truncated");
    pos += n;
    return buf.slice(pos - n, pos);
  };
  const str = (n) => fromUtf8.decode(take(n));
  const array = (n) => Array.from({ length: n }, read);
  const map = (n) => {
    const o = {};
    for (let i = 0; i < n; i++) {
      const k = read();
      const v = read();
      if (v !== undefined) o[k] = v;
    }
    return o;
  };
  // Ext of type 0: undefined (1 byte), a Date (fixext 8), or, with an ext 8/16/32
  // header, an ArrayBuffer as notepack.io writes it under Node.
  const ext = (n, fixed) => {
    const type = view.getInt8(pos++);
    const data = take(n);
    if (type === 0) {
      if (!fixed) return data;
      if (n === 1) return undefined;
      if (n === 8) return new Date(Number(new DataView(data).getBigInt64(0)));
    }
    if (type === -1) {
      // The msgpack timestamp (32, 64 or 96 bits).
      const d = new DataView(data);
      if (n === 4) return new Date(d.getUint32(0) * 1000);
      if (n === 8) {
        // 30 bits of nanoseconds, then 34 bits of seconds.
        const v = d.getBigUint64(0);
        return new Date(Number(v & 0x3ffffffffn) * 1000 + Number(v >> 34n) / 1e6);
      }
      if (n === 12) return new Date(Number(d.getBigInt64(4)) * 1000 + d.getUint32(0) / 1e6);
    }
    return [type, data];
  };
  function read() {
    if (pos >= buf.byteLength) throw new Error("msgpack: truncated");
    const b = view.getUint8(pos++);
    if (b < 0x80) return b;
    if (b < 0x90) return map(b & 0x0f);
    if (b < 0xa0) return array(b & 0x0f);
    if (b < 0xc0) return str(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: case 0xc5: case 0xc6: return take(uint(1 << (b - 0xc4)));
      case 0xc7: case 0xc8: case 0xc9: return ext(uint(1 << (b - 0xc7)), false);
      case 0xca: pos += 4; return view.getFloat32(pos - 4);
      case 0xcb: pos += 8; return view.getFloat64(pos - 8);
      case 0xcc: case 0xcd: case 0xce: return uint(1 << (b - 0xcc));
      case 0xcf: pos += 8; return Number(view.getBigUint64(pos - 8));
      case 0xd0: pos += 1; return view.getInt8(pos - 1);
      case 0xd1: pos += 2; return view.getInt16(pos - 2);
      case 0xd2: pos += 4; return view.getInt32(pos - 4);
      case 0xd3: pos += 8; return Number(view.getBigInt64(pos - 8));
      case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return ext(1 << (b - 0xd4), true);
      case 0xd9: case 0xda: case 0xdb: return str(uint(1 << (b - 0xd9)));
      case 0xdc: case 0xdd: return array(uint(2 << (b - 0xdc)));
      case 0xde: case 0xdf: return map(uint(2 << (b - 0xde)));
    }
    throw new Error("msgpack: unknown byte " + b);
  }
  const value = read();
  if (pos !== buf.byteLength) throw new Error("msgpack: trailing bytes");
  return value;
}

// ---------------------------------------------------------------- the parser

class Encoder {
  encode({ type, data, nsp, id }) {
    const out = [];
    const packet = { type, data, nsp };
    if (id !== undefined) packet.id = id;
    encodeValue(packet, out);
    return [new Uint8Array(out).buffer];
  }
}

const isObject = (x) => Object.prototype.toString.call(x) === "[object Object]";

class Decoder extends Emitter {
  add(chunk) {
    if (typeof chunk === "string") throw new Error("msgpack parser: text data");
    const p = decodeValue(ArrayBuffer.isView(chunk) ? new Uint8Array(chunk).slice().buffer : chunk);
    const ok =
      isObject(p) &&
      typeof p.nsp === "string" &&
      (p.id === undefined || Number.isInteger(p.id)) &&
      (p.type === T.CONNECT
        ? p.data === undefined || isObject(p.data)
        : p.type === T.DISCONNECT
          ? p.data === undefined
          : p.type === T.CONNECT_ERROR
            ? typeof p.data === "string" || isObject(p.data)
            : (p.type === T.EVENT || p.type === T.ACK) && Array.isArray(p.data));
    if (!ok) throw new Error("invalid packet");
    this.emit("decoded", p);
  }
  destroy() {}
}

export const msgpackParser = { protocol: 5, PacketType: T, Encoder, Decoder };
export { encodeValue, decodeValue };
