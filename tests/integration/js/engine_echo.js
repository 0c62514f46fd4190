// Drives a bare Engine.IO server with the official engine.io-client.
// argv: url transports(comma-separated)
const { Socket } = require("engine.io-client");
const [url, transports] = process.argv.slice(2);
const out = (v) => console.log(JSON.stringify(v));
const fail = setTimeout(() => { out({ error: "timeout" }); process.exit(1); }, 10000);
const socket = new Socket(url, { transports: transports.split(","), path: "/engine.io/" });
const received = [];
socket.on("open", () => {
  out({ open: socket.id, transport: socket.transport.name });
  socket.send("hello");
  socket.send(Buffer.from([1, 2, 3]));
});
socket.on("upgrade", (t) => out({ upgrade: t.name }));
socket.on("message", (data) => {
  const item = typeof data === "string" ? { text: data } : { binary: [...new Uint8Array(data)] };
  received.push(item);
  out(item);
  if (received.length === 3) {
    out({ transport: socket.transport.name });
    socket.close();
  }
});
// No process.exit: node ends once the close packet request has completed.
socket.on("close", (reason) => { out({ close: reason }); clearTimeout(fail); });
