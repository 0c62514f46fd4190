(() => {
"use strict";
/*
 * socketwire browser client: a Socket.IO v5 / Engine.IO v4 client in plain
 * ES2020 (WebSocket, fetch), with the API of the official client.
 *
 * Layers, bottom up:
 *   Emitter        on/off/once/emit/listeners for every object below
 *   Engine.IO      packet codec, the polling and websocket transports, Engine
 *                  (handshake, heartbeat, upgrade)
 *   Socket.IO      packet codec with binary placeholders, Manager (one Engine
 *                  shared by namespaces, reconnection), Socket (one namespace)
 *
 * Section numbers refer to the Engine.IO v4 protocol ("EIO §") and the
 * Socket.IO v5 protocol ("SIO §") documents.
 * MIT licence, part of socketwire.
 */

// ---------------------------------------------------------------- Emitter

class Emitter {
  on(event, fn) {
    ((this._cb ||= {})[event] ||= []).push(fn);
    return this;
  }
  once(event, fn) {
    const wrap = (...args) => {
      this.off(event, wrap);
      fn.apply(this, args);
    };
    wrap.fn = fn;
    return this.on(event, wrap);
  }
  off(event, fn) {
    if (!this._cb) return this;
    if (event === undefined) this._cb = {};
    else if (fn === undefined) delete this._cb[event];
    else {
      const list = this._cb[event];
      if (list) this._cb[event] = list.filter((f) => f !== fn && f.fn !== fn);
    }
    return this;
  }
  emit(event, ...args) {
    for (const fn of [...((this._cb && this._cb[event]) || [])]) fn.apply(this, args);
    return this;
  }
  listeners(event) {
    return (this._cb && this._cb[event]) || [];
  }
  hasListeners(event) {
    return this.listeners(event).length > 0;
  }
}
Emitter.prototype.addEventListener = Emitter.prototype.on;
Emitter.prototype.removeListener = Emitter.prototype.off;
Emitter.prototype.removeAllListeners = Emitter.prototype.off;
Emitter.prototype.removeEventListener = Emitter.prototype.off;

// ---------------------------------------------------------------- helpers

// By tag rather than instanceof: buffers may come from another realm (a frame,
// a worker, the WebSocket implementation of a sandbox).
const tag = (x) => Object.prototype.toString.call(x);
const isBin = (x) => ArrayBuffer.isView(x) || tag(x) === "[object ArrayBuffer]" || tag(x) === "[object Blob]";

// Standard base64 without btoa's Latin-1 string detour cost on big buffers.
const toBase64 = (buf) => {
  const bytes = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
};
const fromBase64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
const toArrayBuffer = (x) =>
  tag(x) === "[object ArrayBuffer]"
    ? x
    : ArrayBuffer.isView(x)
      ? x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)
      : x.arrayBuffer();

const later = (fn, ms) => setTimeout(fn, Math.min(ms, 2 ** 31 - 1));

const encodeQuery = (query) =>
  Object.entries(query)
    .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v))
    .join("&");

// Bytes of `s` in UTF-8 (a surrogate pair is 4; TextEncoder is not everywhere).
const utf8Length = (s) => {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >> 10 === 0x36 ? (i++, 4) : 3;
  }
  return n;
};

// ---------------------------------------------------------------- Engine.IO packets (EIO §4)

const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];

// One packet to what a transport sends: a string, or binary data unchanged.
// Over polling binary becomes "b" + base64 (EIO §4, "payload"), done at flush.
const encodeEio = ({ type, data }) =>
  isBin(data) ? data : EIO_TYPES.indexOf(type) + (data === undefined ? "" : data);

const decodeEio = (raw) => {
  if (typeof raw !== "string") return { type: "message", data: raw };
  if (raw[0] === "b") return { type: "message", data: fromBase64(raw.slice(1)) };
  const type = EIO_TYPES[raw[0]];
  return type ? { type, data: raw.length > 1 ? raw.slice(1) : undefined } : { type: "error" };
};

// ---------------------------------------------------------------- transports

class Transport extends Emitter {
  constructor(engine, name) {
    super();
    this.engine = engine;
    this.name = name;
    this.writable = false;
  }
  uri(scheme) {
    const o = this.engine.opts;
    const query = { ...o.query, EIO: 4, transport: this.name };
    if (this.engine.id) query.sid = this.engine.id;
    if (o.timestampRequests !== false && this.name === "polling")
      query[o.timestampParam || "t"] = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    return `${scheme}://${o.host}${o.path}?${encodeQuery(query)}`;
  }
  onPackets(packets) {
    for (const p of packets) this.emit("packet", p);
  }
  onClose(reason, description) {
    if (this.closed) return;
    this.closed = true;
    this.writable = false;
    this.emit("close", reason, description);
  }
}

// HTTP long-polling over fetch (EIO §3.1 / §5): one GET pending at a time to
// receive, one POST at a time to send, packets joined by the record separator.
class Polling extends Transport {
  constructor(engine) {
    super(engine, "polling");
    // Aborts the pending GET when the transport closes (no request left hanging).
    this.aborter = new AbortController();
  }
  open() {
    this.poll();
  }
  request(method, body) {
    const o = this.engine.opts;
    return fetch(this.uri(o.secure ? "https" : "http"), {
      method,
      body,
      headers: { ...(body ? { "Content-Type": "text/plain;charset=UTF-8" } : {}), ...o.extraHeaders },
      credentials: o.withCredentials ? "include" : "same-origin",
      signal: method === "GET" ? this.aborter.signal : undefined,
    }).then((res) => {
      if (!res.ok) throw Object.assign(new Error("xhr poll error"), { status: res.status });
      return res.text();
    });
  }
  poll() {
    if (this.closed || this.paused || this.closing) return;
    this.polling = true;
    this.request("GET").then(
      (text) => {
        this.polling = false;
        if (this.closed) return;
        const packets = text.split("\x1e").map(decodeEio);
        for (const p of packets) {
          if (p.type === "open") this.writable = true;
          // A close packet ends the session (EIO §4, "close").
          if (p.type === "close") return this.onClose("transport close");
          this.emit("packet", p);
          if (this.closed) return;
        }
        if (this.onPaused) this.onPaused();
        else this.poll();
      },
      (err) => {
        this.polling = false;
        if (!this.closed) this.emit("error", err);
      },
    );
  }
  // Stop polling for the upgrade: resolves once no GET or POST is in flight.
  pause(done) {
    this.paused = true;
    this.writable = false;
    const check = () => {
      if (!this.polling && !this.writing) {
        this.onPaused = null;
        done();
      }
    };
    this.onPaused = check;
    check();
  }
  async send(packets) {
    this.writable = false;
    this.writing = true;
    try {
      const parts = await Promise.all(
        packets.map(async (p) => {
          const data = encodeEio(p);
          return isBin(data) ? "b" + toBase64(await toArrayBuffer(data)) : data;
        }),
      );
      await this.request("POST", parts.join("\x1e"));
      this.writing = false;
      if (this.onPaused) return this.onPaused();
      this.writable = true;
      this.emit("drain");
    } catch (err) {
      this.writing = false;
      this.emit("error", err);
    }
  }
  onClose(reason, description) {
    super.onClose(reason, description);
    this.aborter.abort();
  }
  close() {
    // An open session says goodbye with a close packet (EIO §4, "close"), after
    // the POST in flight if any; the pending GET stays until then (the server
    // would take its end for the client's), and no new one starts.
    this.closing = true;
    const bye = () => this.closed || this.send([{ type: "close" }]).finally(() => this.onClose("forced close"));
    if (this.writable) bye();
    else if (this.writing) this.once("drain", bye).once("error", () => this.onClose("forced close"));
    else this.onClose("forced close");
  }
}

// WebSocket (EIO §3.2): one packet per frame, binary frames carry raw bytes.
class WS extends Transport {
  constructor(engine) {
    super(engine, "websocket");
  }
  open() {
    const o = this.engine.opts;
    const ws = (this.ws = new WebSocket(this.uri(o.secure ? "wss" : "ws"), o.protocols || []));
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.writable = true;
      this.emit("open");
    };
    ws.onclose = () => this.onClose("transport close");
    ws.onerror = () => this.emit("error", new Error("websocket error"));
    ws.onmessage = (ev) => this.emit("packet", decodeEio(ev.data));
  }
  send(packets) {
    for (const p of packets) {
      if (this.ws.readyState !== 1) return;
      this.ws.send(encodeEio(p));
    }
    // WebSocket.send queues synchronously: writable again on the next tick.
    this.writable = false;
    setTimeout(() => {
      if (this.closed) return;
      this.writable = true;
      this.emit("drain");
    });
  }
  close() {
    if (this.ws) this.ws.close();
    this.onClose("forced close");
  }
}

const TRANSPORTS = { polling: Polling, websocket: WS };

// ---------------------------------------------------------------- Engine (EIO §3, §5)

// Set once a websocket upgrade worked, for `rememberUpgrade`.
let priorWebsocketSuccess = false;

class Engine extends Emitter {
  constructor(opts) {
    super();
    this.opts = opts;
    this.writeBuffer = [];
    this.readyState = "opening";
    let names = opts.transports;
    if (opts.rememberUpgrade && priorWebsocketSuccess && names.includes("websocket"))
      names = ["websocket"];
    this.setTransport(this.createTransport(names[0]));
    this.transport.open();
  }
  createTransport(name) {
    return new TRANSPORTS[name](this);
  }
  setTransport(t) {
    if (this.transport) this.transport.off();
    this.transport = t;
    t.on("drain", () => this.onDrain())
      .on("packet", (p) => this.onPacket(p))
      .on("error", (e) => this.onError(e))
      .on("close", (reason) => this.onClose(reason || "transport close"));
  }
  onPacket(p) {
    if (this.readyState === "closed") return;
    this.resetPingTimeout();
    switch (p.type) {
      case "open": {
        // The handshake (EIO §5.1): sid, upgrades, pingInterval, pingTimeout, maxPayload.
        const hs = JSON.parse(p.data);
        this.id = hs.sid;
        this.upgrades = hs.upgrades.filter((u) => this.opts.transports.includes(u));
        this.pingInterval = hs.pingInterval;
        this.pingTimeout = hs.pingTimeout;
        this.maxPayload = hs.maxPayload;
        this.readyState = "open";
        priorWebsocketSuccess = this.transport.name === "websocket";
        this.emit("open");
        this.flush();
        this.resetPingTimeout();
        if (this.opts.upgrade !== false && this.transport.name === "polling")
          for (const u of this.upgrades) this.probe(u);
        break;
      }
      case "ping":
        // EIO §5.3 heartbeat: the server pings, the client answers with a pong.
        this.sendPacket("pong");
        this.emit("ping");
        break;
      case "message":
        this.emit("data", p.data);
        this.emit("message", p.data);
        break;
      case "close":
        this.onClose("transport close");
        break;
      case "error":
        this.onClose("parse error");
        break;
    }
  }
  resetPingTimeout() {
    clearTimeout(this.pingTimer);
    if (!this.pingInterval) return;
    // No ping in pingInterval + pingTimeout: the server is gone (EIO §5.3).
    this.pingTimer = later(() => this.onClose("ping timeout"), this.pingInterval + this.pingTimeout);
  }
  // The upgrade (EIO §5.4): probe the websocket with "2probe", expect "3probe",
  // pause polling, send "5" (upgrade) and switch.
  probe(name) {
    const t = this.createTransport(name);
    let done = false;
    const fail = () => {
      if (done) return;
      done = true;
      t.off();
      t.close();
    };
    this.once("close", fail);
    t.once("open", () => {
      if (done) return;
      t.send([{ type: "ping", data: "probe" }]);
      t.once("packet", (p) => {
        if (done || this.readyState !== "open") return fail();
        if (p.type !== "pong" || p.data !== "probe") return fail();
        this.upgrading = true;
        this.emit("upgrading", t);
        // Closing meanwhile: the upgrade completes, so that what close() waits
        // to write goes out over the WebSocket.
        this.transport.pause(() => {
          if (done || this.readyState === "closed") return fail();
          done = true;
          this.off("close", fail);
          t.off();
          t.send([{ type: "upgrade" }]);
          this.setTransport(t);
          this.upgrading = false;
          priorWebsocketSuccess = true;
          this.emit("upgrade", t);
          this.flush();
        });
      });
    });
    t.once("error", fail);
    t.once("close", fail);
    t.open();
  }
  sendPacket(type, data, opts, fn) {
    if (this.readyState === "closing" || this.readyState === "closed") return;
    this.writeBuffer.push({ type, data, opts });
    if (fn) this.once("flush", fn);
    this.flush();
  }
  send(data, opts, fn) {
    this.sendPacket("message", data, opts, fn);
    return this;
  }
  write(data, opts, fn) {
    return this.send(data, opts, fn);
  }
  // Also while closing: what was queued before close() goes out first.
  flush() {
    const state = this.readyState;
    if ((state === "open" || state === "closing") && this.transport.writable && !this.upgrading && this.writeBuffer.length) {
      this.transport.send(this.writeBuffer.splice(0, this.writableCount()));
      this.emit("flush");
    }
  }
  // How many queued packets one write may carry: over polling, a POST holds at
  // most the handshake's maxPayload bytes (the server refuses a larger body and
  // ends the session), counted as sent (UTF-8, binary as base64), at least one.
  writableCount() {
    const buf = this.writeBuffer;
    if (!this.maxPayload || this.transport.name !== "polling") return buf.length;
    let size = 1;
    for (let i = 0; i < buf.length; i++) {
      const d = buf[i].data;
      if (d) size += typeof d === "string" ? utf8Length(d) : Math.ceil(1.34 * (d.byteLength || d.size));
      if (i && size > this.maxPayload) return i;
      size += 2; // the type digit (or "b") and the separator
    }
    return buf.length;
  }
  // "drain" once nothing is left to write.
  onDrain() {
    if (this.writeBuffer.length) this.flush();
    else this.emit("drain");
  }
  onError(err) {
    priorWebsocketSuccess = false;
    this.emit("error", err);
    this.onClose("transport error", err);
  }
  onClose(reason, description) {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    clearTimeout(this.pingTimer);
    const t = this.transport;
    t.off();
    t.close();
    this.writeBuffer = [];
    this.emit("close", reason, description);
  }
  close() {
    // Whatever is queued goes first, then the close packet (EIO §4, "close").
    if (this.readyState === "open" && this.writeBuffer.length) {
      this.once("drain", () => this.onClose("forced close"));
      this.flush();
      this.readyState = "closing";
    } else this.onClose("forced close");
    return this;
  }
}

// ---------------------------------------------------------------- Socket.IO packets (SIO §2, §3)

const T = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

const hasBinary = (x) =>
  !!x &&
  typeof x === "object" &&
  (isBin(x) ||
    (typeof x.toJSON === "function" ? false : Object.values(x).some(hasBinary)));

// Binary values move out of the payload into attachments; each leaves a
// placeholder {"_placeholder": true, "num": n} (SIO §3.3, "binary").
const deconstruct = (x, buffers) => {
  if (isBin(x)) return { _placeholder: true, num: buffers.push(x) - 1 };
  if (Array.isArray(x)) return x.map((v) => deconstruct(v, buffers));
  if (x && typeof x === "object" && !(x instanceof Date)) {
    const out = {};
    for (const k in x) if (Object.prototype.hasOwnProperty.call(x, k)) out[k] = deconstruct(x[k], buffers);
    return out;
  }
  return x;
};
const reconstruct = (x, buffers) => {
  if (x && typeof x === "object") {
    if (x._placeholder === true && typeof x.num === "number") {
      if (x.num < 0 || x.num >= buffers.length) throw new Error("illegal attachments");
      return buffers[x.num];
    }
    for (const k in x) x[k] = reconstruct(x[k], buffers);
  }
  return x;
};

class Encoder {
  // Returns what to give Engine.IO: one string, then any attachments.
  encode(packet) {
    let { type, nsp, id, data } = packet;
    const buffers = [];
    if ((type === T.EVENT || type === T.ACK) && hasBinary(data)) {
      type += 3;
      data = deconstruct(data, buffers);
    }
    let s = "" + type;
    if (buffers.length) s += buffers.length + "-";
    if (nsp && nsp !== "/") s += nsp + ",";
    if (id !== undefined) s += id;
    if (data !== undefined) s += JSON.stringify(data);
    return [s, ...buffers];
  }
}

class Decoder extends Emitter {
  add(chunk) {
    if (typeof chunk === "string") {
      if (this.pending) throw new Error("got plaintext data when reconstructing a packet");
      const p = this.decodeString(chunk);
      if (p.attachments) {
        this.pending = p;
        this.buffers = [];
      } else this.emit("decoded", p);
    } else if (isBin(chunk)) {
      if (!this.pending) throw new Error("got binary data when not reconstructing a packet");
      this.buffers.push(chunk);
      if (this.buffers.length === this.pending.attachments) {
        const p = this.pending;
        this.pending = null;
        p.data = reconstruct(p.data, this.buffers);
        delete p.attachments;
        this.emit("decoded", p);
      }
    } else throw new Error("unknown type: " + chunk);
  }
  // <type>[<attachments>-][<namespace>,][<id>][<json>] (SIO §3)
  decodeString(s) {
    let i = 0;
    const p = { type: Number(s[0]) };
    if (!(p.type >= 0 && p.type <= 6)) throw new Error("unknown packet type " + p.type);
    if (p.type === T.BINARY_EVENT || p.type === T.BINARY_ACK) {
      const dash = s.indexOf("-", 1);
      p.attachments = Number(s.slice(1, dash));
      if (dash < 0 || !(p.attachments >= 0)) throw new Error("illegal attachments");
      i = dash;
    }
    if (s[i + 1] === "/") {
      const comma = s.indexOf(",", i + 1);
      p.nsp = s.slice(i + 1, comma < 0 ? s.length : comma);
      i = comma < 0 ? s.length : comma;
    } else p.nsp = "/";
    const m = /^\d+/.exec(s.slice(i + 1));
    if (m) {
      p.id = Number(m[0]);
      i += m[0].length;
    }
    if (i + 1 < s.length) p.data = JSON.parse(s.slice(i + 1));
    const ok =
      p.type === T.CONNECT
        ? p.data === undefined || typeof p.data === "object"
        : p.type === T.DISCONNECT
          ? p.data === undefined
          : p.type === T.CONNECT_ERROR
            ? typeof p.data === "string" || typeof p.data === "object"
            : Array.isArray(p.data) &&
              (p.type === T.ACK || p.type === T.BINARY_ACK || (p.data.length > 0 && typeof p.data[0] === "string"));
    if (!ok) throw new Error("invalid payload");
    return p;
  }
  destroy() {
    this.pending = null;
  }
}

const parser = { protocol: 5, PacketType: T, Encoder, Decoder };

// ---------------------------------------------------------------- Manager

class Manager extends Emitter {
  constructor(uri, opts) {
    super();
    if (uri && typeof uri === "object") [uri, opts] = [undefined, uri];
    opts = { ...opts };
    const url = uri ? parseUrl(uri) : null;
    this.opts = opts;
    this.uri = uri;
    if (url) {
      opts.host = url.host;
      opts.secure = url.protocol === "https:" || url.protocol === "wss:";
      // A query string in the URL replaces the `query` option (as upstream).
      if (url.search) opts.query = Object.fromEntries(url.searchParams);
    } else if (typeof location !== "undefined") {
      opts.host = location.host;
      opts.secure = location.protocol === "https:";
    }
    if (typeof opts.query === "string") opts.query = Object.fromEntries(new URLSearchParams(opts.query));
    opts.path = (opts.path || "/socket.io").replace(/\/$/, "") + "/";
    opts.transports ||= ["polling", "websocket"];
    this.nsps = {};
    this.subs = [];
    this.reconnection(opts.reconnection !== false);
    this.reconnectionAttempts(opts.reconnectionAttempts ?? Infinity);
    this.reconnectionDelay(opts.reconnectionDelay ?? 1000);
    this.reconnectionDelayMax(opts.reconnectionDelayMax ?? 5000);
    this.randomizationFactor(opts.randomizationFactor ?? 0.5);
    this.timeout(opts.timeout ?? 20000);
    this.attempts = 0;
    this._readyState = "closed";
    const p = opts.parser || parser;
    this.encoder = new p.Encoder();
    this.decoder = new p.Decoder();
    this._autoConnect = opts.autoConnect !== false;
    if (this._autoConnect) this.open();
  }
  // Getters and setters in one, as the official client's.
  reconnection(v) {
    return this._opt("_reconnection", v);
  }
  reconnectionAttempts(v) {
    return this._opt("_reconnectionAttempts", v);
  }
  reconnectionDelay(v) {
    return this._opt("_reconnectionDelay", v);
  }
  reconnectionDelayMax(v) {
    return this._opt("_reconnectionDelayMax", v);
  }
  randomizationFactor(v) {
    return this._opt("_randomizationFactor", v);
  }
  timeout(v) {
    return this._opt("_timeout", v);
  }
  _opt(key, v) {
    if (v === undefined) return this[key];
    this[key] = v;
    return this;
  }
  // Exponential backoff with jitter: delay * 2^attempt, moved up or down by up
  // to randomizationFactor of itself, capped at reconnectionDelayMax.
  _delay() {
    let ms = this._reconnectionDelay * 2 ** this.attempts++;
    const f = this._randomizationFactor;
    if (f) {
      const r = Math.random();
      const dev = Math.floor(r * f * ms);
      ms = (Math.floor(r * 10) & 1) === 0 ? ms - dev : ms + dev;
    }
    return Math.min(ms, this._reconnectionDelayMax) | 0;
  }
  open(fn) {
    if (this._readyState.includes("open")) return this;
    const engine = (this.engine = new Engine(this.opts));
    this._readyState = "opening";
    this.skipReconnect = false;
    const done = (err) => {
      this.cleanup();
      this._readyState = "closed";
      this.emit("error", err);
      if (fn) fn(err);
      else this.maybeReconnectOnOpen();
    };
    const openSubs = [
      on(engine, "open", () => {
        openSubs.forEach((f) => f());
        this.onopen();
        if (fn) fn();
      }),
      on(engine, "error", (err) => {
        openSubs.forEach((f) => f());
        done(err);
      }),
      on(engine, "close", (reason) => {
        openSubs.forEach((f) => f());
        done(new Error(reason));
      }),
    ];
    if (this._timeout !== false) {
      const timer = later(() => {
        openSubs.forEach((f) => f());
        engine.close();
        done(new Error("timeout"));
      }, this._timeout);
      openSubs.push(() => clearTimeout(timer));
    }
    return this;
  }
  connect(fn) {
    return this.open(fn);
  }
  onopen() {
    this.cleanup();
    this._readyState = "open";
    this.emit("open");
    const e = this.engine;
    this.subs.push(
      on(e, "ping", () => this.emit("ping")),
      on(e, "data", (d) => {
        try {
          this.decoder.add(d);
        } catch (err) {
          this.onclose("parse error", err);
        }
      }),
      on(e, "error", (err) => this.emit("error", err)),
      on(e, "close", (reason, desc) => this.onclose(reason, desc)),
      on(this.decoder, "decoded", (p) => setTimeout(() => this.emit("packet", p))),
    );
  }
  socket(nsp, opts) {
    let s = this.nsps[nsp];
    if (!s) s = this.nsps[nsp] = new Socket(this, nsp, opts);
    else if (this._autoConnect && !s.active) s.connect();
    return s;
  }
  _destroy(socket) {
    for (const nsp in this.nsps) if (this.nsps[nsp].active) return;
    this._close();
  }
  _packet(packet) {
    const parts = this.encoder.encode(packet);
    for (const part of parts) this.engine.write(part, packet.options);
  }
  cleanup() {
    this.subs.forEach((f) => f());
    this.subs = [];
    this.decoder.destroy();
  }
  _close() {
    this.skipReconnect = true;
    this._reconnecting = false;
    clearTimeout(this._reconnectTimer);
    this.onclose("forced close");
  }
  disconnect() {
    return this._close();
  }
  onclose(reason, description) {
    this.cleanup();
    if (this.engine) this.engine.close();
    this.backoffReset();
    this._readyState = "closed";
    this.emit("close", reason, description);
    if (this._reconnection && !this.skipReconnect) this.reconnect();
  }
  backoffReset() {
    this.attempts = 0;
  }
  maybeReconnectOnOpen() {
    if (!this._reconnecting && this._reconnection && this.attempts === 0) this.reconnect();
  }
  reconnect() {
    if (this._reconnecting || this.skipReconnect) return;
    if (this.attempts >= this._reconnectionAttempts) {
      this.backoffReset();
      this.emit("reconnect_failed");
      this._reconnecting = false;
      return;
    }
    const delay = this._delay();
    this._reconnecting = true;
    this._reconnectTimer = later(() => {
      if (this.skipReconnect) return;
      this.emit("reconnect_attempt", this.attempts);
      if (this.skipReconnect) return;
      this.open((err) => {
        this._reconnecting = false;
        if (err) {
          this.emit("reconnect_error", err);
          this.reconnect();
        } else {
          const n = this.attempts;
          this.backoffReset();
          this.emit("reconnect", n);
        }
      });
    }, delay);
  }
}

const on = (obj, ev, fn) => {
  obj.on(ev, fn);
  return () => obj.off(ev, fn);
};

// ---------------------------------------------------------------- Socket

// Events a user may not emit: they mean something to the client itself.
const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

class Socket extends Emitter {
  constructor(io, nsp, opts = {}) {
    super();
    this.io = io;
    this.nsp = nsp;
    this.connected = false;
    this.recovered = false;
    this.receiveBuffer = [];
    this.sendBuffer = [];
    this._queue = [];
    this._queueSeq = 0;
    this.ids = 0;
    this.acks = {};
    this.flags = {};
    this.auth = opts.auth;
    this._opts = { ...opts };
    this._anyListeners = [];
    this._anyOutgoingListeners = [];
    if (io._autoConnect) this.open();
  }
  get disconnected() {
    return !this.connected;
  }
  get active() {
    return !!this.subs;
  }
  subEvents() {
    if (this.subs) return;
    const io = this.io;
    this.subs = [
      on(io, "open", () => this.onopen()),
      on(io, "packet", (p) => p.nsp === this.nsp && this.onpacket(p)),
      on(io, "error", (err) => this.connected || this.emitReserved("connect_error", err)),
      on(io, "close", (reason, desc) => this.onclose(reason, desc)),
    ];
  }
  connect() {
    if (this.connected) return this;
    this.subEvents();
    if (!this.io._reconnecting) this.io.open();
    if (this.io._readyState === "open") this.onopen();
    return this;
  }
  open() {
    return this.connect();
  }
  send(...args) {
    return this.emit("message", ...args);
  }
  emit(ev, ...args) {
    if (RESERVED.includes(ev)) throw new Error(`"${ev}" is a reserved event name`);
    const retries = this._opts.retries;
    if (retries && !this.flags.fromQueue && !this.flags.volatile) {
      this._addToQueue([ev, ...args]);
      return this;
    }
    const packet = { type: T.EVENT, data: [ev, ...args], options: { compress: this.flags.compress !== false } };
    if (typeof args[args.length - 1] === "function") {
      const id = this.ids++;
      this._registerAckCallback(id, packet.data.pop());
      packet.id = id;
    }
    const writable = this.io.engine && this.io.engine.transport && this.io.engine.transport.writable;
    const discard = this.flags.volatile && (!writable || !this.connected);
    if (!discard) {
      if (this.connected) {
        this._notifyOutgoing(packet);
        this.packet(packet);
      } else this.sendBuffer.push(packet);
    }
    this.flags = {};
    return this;
  }
  _registerAckCallback(id, fn) {
    const ms = this.flags.timeout ?? this._opts.ackTimeout;
    if (ms === undefined) {
      this.acks[id] = fn;
      return;
    }
    const timer = ms === Infinity ? 0 : later(() => {
      delete this.acks[id];
      this.sendBuffer = this.sendBuffer.filter((p) => p.id !== id);
      fn.call(this, new Error("operation has timed out"));
    }, ms);
    const wrapped = (...args) => {
      clearTimeout(timer);
      fn.call(this, null, ...args);
    };
    wrapped.withError = true;
    this.acks[id] = wrapped;
  }
  emitWithAck(ev, ...args) {
    return new Promise((resolve, reject) => {
      const withErr =
        this.flags.timeout !== undefined || this._opts.ackTimeout !== undefined || this._opts.retries;
      args.push(withErr ? (err, v) => (err ? reject(err) : resolve(v)) : (v) => resolve(v));
      this.emit(ev, ...args);
    });
  }
  // `retries`: one packet in flight at a time, each re-sent until acknowledged
  // or tried retries + 1 times.
  _addToQueue(args) {
    let fn;
    if (typeof args[args.length - 1] === "function") fn = args.pop();
    const packet = { id: this._queueSeq++, tryCount: 0, pending: false, args, flags: { fromQueue: true, ...this.flags } };
    args.push((err, ...rest) => {
      if (packet !== this._queue[0]) return;
      if (err) {
        if (packet.tryCount > this._opts.retries) {
          this._queue.shift();
          if (fn) fn(err);
        }
      } else {
        this._queue.shift();
        if (fn) fn(null, ...rest);
      }
      packet.pending = false;
      this._drainQueue();
    });
    this._queue.push(packet);
    this._drainQueue();
  }
  _drainQueue(force) {
    if (!this.connected || !this._queue.length) return;
    const packet = this._queue[0];
    if (packet.pending && !force) return;
    packet.pending = true;
    packet.tryCount++;
    this.flags = packet.flags;
    if (this.flags.timeout === undefined && this._opts.ackTimeout === undefined) this.flags.timeout = Infinity;
    this.emit(...packet.args);
  }
  packet(p) {
    p.nsp = this.nsp;
    this.io._packet(p);
  }
  onopen() {
    // CONNECT carries the auth payload; with recovery, the private id and the
    // last offset seen (SIO §4, connection state recovery).
    const send = (data) => this.packet({ type: T.CONNECT, data: this._pid ? { pid: this._pid, offset: this._lastOffset, ...data } : data });
    if (typeof this.auth === "function") this.auth(send);
    else send(this.auth);
  }
  onclose(reason, description) {
    this.connected = false;
    delete this.id;
    this.emitReserved("disconnect", reason, description);
    this._clearAcks();
  }
  // Acks that can never come: those of a disconnected socket fail at once when
  // they expect an error argument, the others are left to wait (as upstream).
  _clearAcks() {
    for (const id of Object.keys(this.acks)) {
      if (!this.sendBuffer.some((p) => String(p.id) === id)) {
        const ack = this.acks[id];
        delete this.acks[id];
        if (ack.withError) ack.call(this, new Error("socket has been disconnected"));
      }
    }
  }
  onpacket(p) {
    switch (p.type) {
      case T.CONNECT:
        if (p.data && p.data.sid) this.onconnect(p.data.sid, p.data.pid);
        else this.emitReserved("connect_error", new Error("It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)"));
        break;
      case T.EVENT:
      case T.BINARY_EVENT:
        this.onevent(p);
        break;
      case T.ACK:
      case T.BINARY_ACK: {
        const ack = this.acks[p.id];
        if (typeof ack === "function") {
          delete this.acks[p.id];
          ack.apply(this, p.data);
        }
        break;
      }
      case T.DISCONNECT:
        this.destroy();
        this.onclose("io server disconnect");
        break;
      case T.CONNECT_ERROR: {
        this.destroy();
        const err = new Error(p.data.message);
        err.data = p.data.data;
        this.emitReserved("connect_error", err);
        break;
      }
    }
  }
  onevent(p) {
    const args = p.data || [];
    if (p.id != null) args.push(this.ack(p.id));
    if (this.connected) this.emitEvent(args);
    else this.receiveBuffer.push(args);
  }
  emitEvent(args) {
    for (const fn of [...this._anyListeners]) fn.apply(this, args);
    super.emit.apply(this, args);
    // Broadcasts of a recovering server end with their offset (a string).
    if (this._pid && args.length && typeof args[args.length - 1] === "string") this._lastOffset = args[args.length - 1];
  }
  ack(id) {
    let sent = false;
    return (...args) => {
      if (sent) return;
      sent = true;
      this.packet({ type: T.ACK, id, data: args });
    };
  }
  onconnect(id, pid) {
    this.id = id;
    this.recovered = !!(pid && this._pid === pid);
    this._pid = pid;
    this.connected = true;
    this.receiveBuffer.forEach((args) => this.emitEvent(args));
    this.receiveBuffer = [];
    this.sendBuffer.forEach((p) => {
      this._notifyOutgoing(p);
      this.packet(p);
    });
    this.sendBuffer = [];
    this.emitReserved("connect");
    this._drainQueue(true);
  }
  emitReserved(ev, ...args) {
    super.emit(ev, ...args);
  }
  destroy() {
    if (this.subs) {
      this.subs.forEach((f) => f());
      this.subs = undefined;
    }
    this.io._destroy(this);
  }
  disconnect() {
    if (this.connected) this.packet({ type: T.DISCONNECT });
    this.destroy();
    if (this.connected) this.onclose("io client disconnect");
    return this;
  }
  close() {
    return this.disconnect();
  }
  compress(compress) {
    this.flags.compress = compress;
    return this;
  }
  get volatile() {
    this.flags.volatile = true;
    return this;
  }
  timeout(ms) {
    this.flags.timeout = ms;
    return this;
  }
  onAny(fn) {
    this._anyListeners.push(fn);
    return this;
  }
  prependAny(fn) {
    this._anyListeners.unshift(fn);
    return this;
  }
  offAny(fn) {
    this._anyListeners = fn ? this._anyListeners.filter((f) => f !== fn) : [];
    return this;
  }
  listenersAny() {
    return this._anyListeners;
  }
  onAnyOutgoing(fn) {
    this._anyOutgoingListeners.push(fn);
    return this;
  }
  prependAnyOutgoing(fn) {
    this._anyOutgoingListeners.unshift(fn);
    return this;
  }
  offAnyOutgoing(fn) {
    this._anyOutgoingListeners = fn ? this._anyOutgoingListeners.filter((f) => f !== fn) : [];
    return this;
  }
  listenersAnyOutgoing() {
    return this._anyOutgoingListeners;
  }
  _notifyOutgoing(p) {
    for (const fn of [...this._anyOutgoingListeners]) fn.apply(this, p.data);
  }
}

// ---------------------------------------------------------------- io()

// No URL: the page's origin (the script is usually served by the same server).
const parseUrl = (uri) => {
  const base = typeof location !== "undefined" ? location.href : undefined;
  if (typeof uri === "string" && uri.startsWith("//")) uri = (base ? new URL(base).protocol : "http:") + uri;
  return new URL(uri, base);
};

const cache = {};

function lookup(uri, opts) {
  if (typeof uri === "object") [uri, opts] = [undefined, uri];
  opts = opts || {};
  // No URL: the page's origin and the main namespace.
  const url = parseUrl(uri === undefined ? (typeof location !== "undefined" ? location.protocol + "//" + location.host : "") : uri);
  const nsp = url.pathname || "/";
  const id = `${url.protocol}//${url.host}`;
  const shared = cache[id] && nsp in cache[id].nsps;
  const fresh = opts.forceNew || opts["force new connection"] || opts.multiplex === false || shared;
  const origin = `${url.protocol}//${url.host}${url.search}`;
  let io;
  if (fresh) io = new Manager(origin, opts);
  else io = cache[id] ||= new Manager(origin, opts);
  return io.socket(nsp, opts);
}

Object.assign(lookup, { Manager, Socket, protocol: 5, connect: lookup, io: lookup, Engine, parser });

globalThis.io = lookup;
})();
