// Run in a Chromium page of a peer's origin where a Socket.IO client defined the
// global `io` (socketwire's or the official one). Each step of `steps` takes a
// transport mode ("polling", "websocket" or "upgrade") and resolves with what it
// observed, plain JSON for tests/browser/test_browser.py to compare: the same
// observations are expected of both clients against both servers. No step
// sleeps: each waits on events, bounded by WAIT.
(() => {
  const WAIT = 10000;
  const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
  const options = (mode, extra) => ({
    transports: TRANSPORTS[mode],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    ...extra,
  });

  // The arguments of the next `event` of `emitter`; fails after `ms`.
  const next = (emitter, event, ms = WAIT) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
      emitter.once(event, (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
  // All the arguments of an acknowledged emit (emitWithAck keeps the first only).
  const call = (socket, ...args) => new Promise((resolve) => socket.emit(...args, (...got) => resolve(got)));
  // Connected, and upgraded to WebSocket in mode "upgrade".
  const connected = async (socket, mode) => {
    if (!socket.connected) await next(socket, "connect");
    if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") await next(socket.io.engine, "upgrade");
    return socket;
  };
  const open = (mode, extra, nsp = "/") => connected(io(nsp, options(mode, extra)), mode);
  const state = (s) => ({ active: s.active, connected: s.connected, disconnected: s.disconnected });
  // A value as JSON can show it: binary becomes {bin: its type, bytes}.
  const tag = (x) => Object.prototype.toString.call(x).slice(8, -1);
  const show = (x) => {
    if (tag(x) === "ArrayBuffer") return { bin: "ArrayBuffer", bytes: Array.from(new Uint8Array(x)) };
    if (ArrayBuffer.isView(x)) return { bin: tag(x), bytes: Array.from(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)) };
    if (Array.isArray(x)) return x.map(show);
    if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, show(v)]));
    return x === undefined ? "undefined" : x;
  };
  const failure = async (promise) => {
    try {
      await promise;
      return "resolved";
    } catch (e) {
      return e.message;
    }
  };

  const steps = {
    // connect / message / disconnect, acks both ways, the transport in use.
    async basics(mode) {
      const o = {};
      const socket = io(options(mode));
      o.upgrade_event = null;
      socket.io.engine.on("upgrade", (t) => (o.upgrade_event = t.name));
      o.before_connect = state(socket);
      await connected(socket, mode);
      o.connected = state(socket);
      o.transport = socket.io.engine.transport.name;
      const who = await socket.emitWithAck("whoami");
      o.whoami = {
        sid: who.sid === socket.id,
        engine: who.engine === socket.io.engine.id,
        nsp: who.nsp,
        transport: who.transport,
      };
      o.echo = await socket.emitWithAck("echo", { text: "é ✓", list: [1, null, true, 2.5] });
      o.echo_args = await call(socket, "echo", 1, "two", { three: [3] });
      socket.on("q", (n, ack) => ack(n * 2, "back"));
      const answer = next(socket, "answer");
      await socket.emitWithAck("ask", "q", 21);
      o.server_ack = await answer;
      const message = next(socket, "message");
      o.send_chains = socket.send("hi", { n: 1 }) === socket;
      o.message = await message;
      // What the server saw when another socket left: its "disconnect" handler
      // tells the sockets of room "watch:<key>".
      const key = "k" + Math.random();
      await socket.emitWithAck("join", "watch:" + key);
      const watched = await open(mode, { auth: { reason_key: key } });
      const seen = next(socket, "gone");
      const closed = next(watched, "disconnect");
      watched.disconnect();
      o.client_disconnect = (await closed)[0];
      o.after_client_disconnect = state(watched);
      o.server_saw = await seen;
      const gone = next(socket, "disconnect");
      socket.emit("server_disconnect");
      o.server_disconnect = (await gone)[0];
      o.after_server_disconnect = state(socket);
      return o;
    },

    // Binary data both ways: ArrayBuffer, typed arrays, Blob, nested in objects
    // and arrays, in events and in acks.
    async binary(mode) {
      const s = await open(mode);
      const o = {};
      const payload = () => ({
        ab: new Uint8Array([0, 1, 255]).buffer,
        u8: new Uint8Array([7, 8]),
        u16: new Uint16Array([258]),
        f64: new Float64Array([1.5]),
        part: new Uint8Array([1, 2, 3, 4]).subarray(1, 3),
        nested: { list: [new Uint8Array([5]), "text", { deep: new Int8Array([-1]).buffer }] },
      });
      o.echo = show(await call(s, "echo", payload(), new Uint8Array([42]), "tail"));
      o.blob = show(await call(s, "echo", new Blob([new Uint8Array([9, 8])]), { b: new Blob(["é"]) }));
      const event = next(s, "bin");
      await s.emitWithAck("echo_event", "bin", payload(), [new Uint8Array([6])]);
      o.from_server = show(await event);
      s.on("qb", (x, ack) => ack(new Uint8Array([x, x]), { b: new Uint16Array([x]).buffer }));
      const answer = next(s, "answer");
      await s.emitWithAck("ask", "qb", 3);
      o.client_ack = show(await answer);
      s.disconnect();
      return o;
    },

    // Data stored per client on the server (socket.data).
    async data(mode) {
      const [a, b] = await Promise.all([open(mode), open(mode)]);
      await Promise.all([a.emitWithAck("set_data", "name", "alice"), b.emitWithAck("set_data", "name", "bob")]);
      const got = await Promise.all([
        a.emitWithAck("get_data", "name"),
        b.emitWithAck("get_data", "name"),
        a.emitWithAck("get_data", "unset"),
      ]);
      a.disconnect();
      b.disconnect();
      return got;
    },

    // Broadcast to all, to all but the sender, to a room.
    async broadcast(mode) {
      const [a, b] = await Promise.all([open(mode), open(mode)]);
      const o = {};
      const all = [next(a, "news"), next(b, "news")];
      await a.emitWithAck("broadcast", "news", { n: 1 });
      o.all = await Promise.all(all);
      // What reaches the sender comes before its ack: nothing has come by then.
      const others = next(b, "others");
      const aOthers = [];
      a.on("others", (...x) => aOthers.push(x));
      await a.emitWithAck("broadcast_others", "others", 2);
      o.others = { b: await others, a: aOthers };
      const room = "room-" + mode;
      o.joined = await a.emitWithAck("join", room);
      const inRoom = next(a, "in_room");
      const bRoom = [];
      b.on("in_room", (...x) => bRoom.push(x));
      await b.emitWithAck("to_room", room, "in_room", "members only");
      o.room = { a: await inRoom, b: bRoom };
      a.disconnect();
      b.disconnect();
      return o;
    },

    // volatile and compress(false) from the client, volatile from the server:
    // sent without error (a volatile packet may be dropped, by definition).
    async volatile(mode) {
      const s = await open(mode);
      const o = {};
      o.volatile_chains = s.volatile.emit("record", "v" + Math.random(), 1) === s;
      o.compress = await s.compress(false).emitWithAck("echo", "uncompressed");
      o.compress_volatile = s.compress(false).volatile.emit("echo", "x") === s;
      s.on("vol", () => {});
      o.server_volatile = await s.emitWithAck("volatile_event", "vol", 1);
      o.after = await s.emitWithAck("echo", "after");
      s.disconnect();
      return show(o);
    },

    // Namespaces, middlewares refusing, auth (object and callback), query,
    // dynamic namespaces. One connection at a time: Chromium holds at most six
    // HTTP connections to a host, and each polling connection keeps one busy.
    async namespaces(mode) {
      const o = {};
      const who = async (socket) => {
        const got = await socket.emitWithAck("whoami");
        socket.disconnect();
        return got;
      };
      o.chat = (await who(await open(mode, {}, "/chat"))).nsp;
      const refused = io("/private", options(mode, { auth: { token: "wrong" } }));
      const [err] = await next(refused, "connect_error");
      o.refused = { message: err.message, data: err.data, ...state(refused) };
      // The recipe after a refusal: fix the credentials, connect again.
      refused.auth.token = "secret";
      refused.connect();
      await connected(refused, mode);
      o.after_fix = { ...state(refused), auth: (await who(refused)).auth };
      o.auth_object = (await who(await open(mode, { auth: { token: "secret", n: 1 } }, "/private"))).auth;
      const byCallback = open(mode, { auth: (cb) => cb({ token: "secret", via: "callback" }) }, "/private");
      o.auth_callback = (await who(await byCallback)).auth;
      // The query option; a query string in the URL replaces it.
      const q = await who(await open(mode, { query: { b: "2", c: "é ✓" } }));
      o.query = { a: q.query.a, b: q.query.b, c: q.query.c, EIO: q.query.EIO };
      const inUrl = await who(await open(mode, { query: { b: "2" } }, "/?a=1&d=%C3%A9"));
      o.query_in_url = { a: inUrl.query.a, b: inUrl.query.b, d: inUrl.query.d };
      o.dynamic = (await who(await open(mode, {}, "/dyn-" + mode))).nsp;
      const invalid = io("/nothing-here", options(mode));
      o.invalid = (await next(invalid, "connect_error"))[0].message;
      invalid.disconnect();
      return o;
    },

    // Catch-all listeners, in and out.
    async catchall(mode) {
      const s = await open(mode);
      const seen = [];
      const first = (ev, ...args) => seen.push(["first", ev, ...args]);
      s.onAny((ev, ...args) => seen.push(["any", ev, ...args]));
      s.prependAny(first);
      s.onAnyOutgoing((ev, ...args) => seen.push(["out", ev, ...args]));
      const counts = [s.listenersAny().length, s.listenersAnyOutgoing().length];
      for (const [n, after] of [
        [1, () => s.offAny(first)],
        [2, () => (s.offAny(), s.offAnyOutgoing())],
        [3, () => {}],
      ]) {
        const got = next(s, "back");
        await s.emitWithAck("echo_event", "back", n);
        await got;
        after();
      }
      s.disconnect();
      return { seen, counts, after: [s.listenersAny().length, s.listenersAnyOutgoing().length] };
    },

    // timeout().emit, emitWithAck, retries / ackTimeout.
    async acks(mode) {
      const s = await open(mode);
      const o = {};
      o.timeout_emit = await new Promise((r) => s.timeout(100).emit("nobody_answers", (e) => r(e && e.message)));
      o.timeout_with_ack = await failure(s.timeout(100).emitWithAck("nobody_answers"));
      o.timeout_answered = await new Promise((r) => s.timeout(WAIT).emit("echo", 5, 6, (e, ...v) => r([e, ...v])));
      o.with_ack_answered = await s.timeout(WAIT).emitWithAck("echo", 7);
      s.disconnect();
      const r = await open(mode, { retries: 3, ackTimeout: 200 });
      const key = "k" + Math.random();
      o.retries = await r.emitWithAck("flaky", key, "v");
      o.deliveries = (await r.emitWithAck("records", key)).length;
      o.retries_exhausted = await failure(r.emitWithAck("nobody_answers"));
      r.disconnect();
      return o;
    },

    // The transport closed by the server: the Manager reconnects by itself.
    async reconnect(mode) {
      const s = await open(mode);
      const o = {};
      const events = [];
      for (const ev of ["close", "reconnect_attempt", "reconnect_error", "open", "reconnect"])
        s.io.on(ev, (arg) => events.push([ev, typeof arg === "number" ? arg : typeof arg]));
      const dropped = next(s, "disconnect");
      const back = next(s, "connect");
      s.emit("close_transport");
      o.reason = (await dropped)[0];
      o.while_away = state(s);
      await back;
      await connected(s, mode);
      o.events = [...events];
      o.back = state(s);
      o.round_trip = await s.emitWithAck("echo", "again");
      s.disconnect();
      return o;
    },

    // Closed as the upgrade begins: the socket's DISCONNECT, queued while the
    // upgrade holds the buffer, goes out before the engine closes. (An event
    // sent just before it is not checked: Node's server drops the events that
    // arrive with a DISCONNECT.)
    async closed_while_upgrading(mode) {
      if (mode !== "upgrade") return null;
      const watcher = await open("websocket");
      const key = "k" + Math.random();
      await watcher.emitWithAck("join", "watch:" + key);
      window.holdProbes = true;
      const s = io(options(mode, { auth: { reason_key: key } }));
      await next(s, "connect");
      const o = { transport: s.io.engine.transport.name };
      const closed = next(s.io.engine, "close");
      const seen = next(watcher, "gone");
      s.io.engine.once("upgrading", () => s.disconnect());
      window.holdProbes = false;
      window.releaseProbes();
      o.engine_close = (await closed)[0];
      o.server_saw = (await seen)[1];
      watcher.disconnect();
      return o;
    },

    // 50 namespaces over one Manager: one Engine.IO connection.
    async many(mode) {
      const manager = new io.Manager(location.origin, options(mode));
      const names = Array.from({ length: 50 }, (_, i) => `/dyn-${mode}_${i}`);
      const sockets = await Promise.all(names.map((n) => connected(manager.socket(n), mode)));
      const who = await Promise.all(sockets.map((s) => s.emitWithAck("whoami")));
      const o = {
        engines: new Set(who.map((w) => w.engine)).size,
        same_engine: who[0].engine === manager.engine.id,
        namespaces: who.map((w) => w.nsp).join() === names.join(),
        server_count: await sockets[0].emitWithAck("connection_namespaces"),
      };
      for (const s of sockets) s.disconnect();
      return o;
    },
  };

  // A step's promise, failing when it takes longer than 3 * WAIT (a step that
  // waits on something never coming, an ack say, fails instead of hanging).
  const bounded = (name, promise) =>
    Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${name}: not done within ${3 * WAIT} ms`)), 3 * WAIT)),
    ]);
  const report = (e) => ({ error: String((e && e.stack) || e) });

  // Steps run in one mode, in order; a failing step reports its error.
  window.runSteps = async (mode, names) => {
    const out = {};
    for (const name of names) {
      try {
        out[name] = await bounded(name, steps[name](mode));
      } catch (e) {
        out[name] = report(e);
      }
    }
    return out;
  };

  // Steps against peers configured for them (tests/browser/test_browser.py starts
  // those), each run in the three modes at once.
  const special = {
    // Connection state recovery on the server: what was broadcast while the
    // client was away arrives after it reconnects; `recovered` is true.
    async recovery(mode) {
      const s = await open(mode);
      const id = s.id;
      const o = {};
      const tick = next(s, "tick");
      await s.emitWithAck("broadcast", "tick", 1);
      const [one, offset] = await tick;
      o.tick = [one, typeof offset];
      o.first_recovered = s.recovered;
      // Every "missed" event of this mode (the three modes run at once and their
      // broadcasts reach every socket), each time until an echo after the
      // reconnection has come back (packets arrive in order, so nothing replayed
      // is still on the way).
      let missed = [];
      s.on("missed", (payload) => {
        if (payload.mode === mode) missed.push(payload.n);
      });
      const settled = async () => {
        await s.emitWithAck("echo", "barrier");
        const got = missed;
        missed = [];
        return got;
      };
      // The server cuts the connection, then broadcasts.
      let back = next(s, "connect");
      s.emit("close_then_broadcast", "missed", { n: 7, mode });
      await back;
      o.server_cut = { missed: await settled(), recovered: s.recovered, same_id: s.id === id };
      // The page cuts its transport; another client broadcasts meanwhile.
      const other = await open(mode);
      back = next(s, "connect");
      const gone = next(s, "disconnect");
      s.io.engine.close();
      o.reason = (await gone)[0];
      await other.emitWithAck("broadcast", "missed", { n: 8, mode });
      await back;
      o.client_cut = { missed: await settled(), recovered: s.recovered, same_id: s.id === id };
      s.disconnect();
      other.disconnect();
      return o;
    },
    // A server pinging every 300 ms, waiting 200 ms for the pong, that stops
    // pinging: the client gives up within pingInterval + pingTimeout.
    async pingtimeout(mode) {
      const s = await open(mode, { reconnection: false });
      await next(s.io, "ping");
      const gone = next(s, "disconnect");
      await s.emitWithAck("stop_pings");
      const start = performance.now();
      const [reason] = await gone;
      return { reason, ms: performance.now() - start, ...state(s) };
    },
    // The test stops the server once this resolves, starts it again on the same
    // port, then awaits `restarted`.
    async restart(mode) {
      const s = await open(mode);
      const events = [];
      for (const ev of ["reconnect_attempt", "reconnect"]) s.io.on(ev, () => events.push(ev));
      const gone = next(s, "disconnect", 3 * WAIT);
      const back = next(s, "connect", 3 * WAIT);
      window.restarted = window.restarted || {};
      window.restarted[mode] = (async () => {
        const [reason] = await gone;
        await back;
        await connected(s, mode);
        const o = { reason, events: [events[0], events[events.length - 1]], state: state(s) };
        o.round_trip = await s.emitWithAck("echo", "again");
        s.disconnect();
        return o;
      })();
      return s.id !== undefined;
    },
  };

  // By mode: what each promise of `make(mode)` resolved with, or its error.
  const modes = Object.keys(TRANSPORTS);
  const allModes = async (name, make) => {
    const results = await Promise.allSettled(modes.map((m) => bounded(name, make(m))));
    return Object.fromEntries(modes.map((m, i) => [m, results[i].status === "fulfilled" ? results[i].value : report(results[i].reason)]));
  };
  window.runSpecial = (name) => allModes(name, (m) => special[name](m));
  window.awaitRestarted = () => allModes("restarted", (m) => window.restarted[m]);
})();
