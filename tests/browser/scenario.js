// Run in a Chromium page where a Socket.IO client defined the global `io`
// (socketwire's or the official one): window.runScenario(mode) resolves with
// what happened, for tests/browser/test_browser.py to check.
window.runScenario = async (mode) => {
  const WAIT = 10000;
  const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
  const opts = { transports, forceNew: true };
  const next = (emitter, event) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${event}" within ${WAIT} ms`)), WAIT);
      emitter.once(event, (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
  const bytes = (b) => Array.from(new Uint8Array(b));
  const out = {};

  const socket = io(opts);
  await next(socket, "connect");
  if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") await next(socket.io.engine, "upgrade");
  out.connected = socket.connected && typeof socket.id === "string";
  out.transport = socket.io.engine.transport.name;
  out.whoami = await socket.emitWithAck("whoami");
  out.sid_matches = out.whoami.sid === socket.id;
  out.echo = await socket.emitWithAck("echo", { text: "é", list: [1, null, true] });
  const bin = await socket.emitWithAck("echo", {
    buf: new Uint8Array([1, 2, 255]).buffer,
    view: new Uint16Array([258]),
    blob: new Blob([new Uint8Array([9, 8])]),
  });
  out.binary = { buf: bytes(bin.buf), view: bytes(bin.view), blob: bytes(bin.blob) };
  socket.on("q", (n, ack) => ack(n * 2));
  const answer = next(socket, "answer");
  await socket.emitWithAck("ask", "q", 21);
  out.server_ack = (await answer)[1];
  const chat = io("/chat", { transports });
  await next(chat, "connect");
  out.chat = (await chat.emitWithAck("whoami")).nsp;
  out.shared_manager = chat.io === io("/", { transports }).io;
  try {
    await socket.timeout(100).emitWithAck("nobody_answers");
    out.timeout = "no error";
  } catch (e) {
    out.timeout = e.message;
  }
  const gone = next(socket, "disconnect");
  socket.emit("server_disconnect");
  out.server_disconnect = (await gone)[0];
  chat.disconnect();
  return out;
};
