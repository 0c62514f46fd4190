// Connection state recovery with the official client.
// argv: url transports(comma-separated)
const { io } = require("socket.io-client");
const [url, transports] = process.argv.slice(2);
const out = (v) => console.log(JSON.stringify(v));
const fail = setTimeout(() => { out({ error: "timeout" }); process.exit(1); }, 15000);
const socket = io(url, {
  transports: transports.split(","),
  reconnectionDelay: 200,
  reconnectionDelayMax: 200,
  randomizationFactor: 0,
});
let connects = 0;
socket.onAny((event, ...args) => out({ event, args }));
socket.on("connect", async () => {
  connects += 1;
  out({ connect: connects, id: socket.id, recovered: socket.recovered });
  if (connects === 1) {
    await socket.emitWithAck("join", "room1");
    // Three broadcasts to room1 came before the ack. Now drop the transport
    // without a Socket.IO disconnect: the client reconnects by itself.
    socket.io.engine.close();
  } else {
    const state = await socket.emitWithAck("state");
    out({ state });
    clearTimeout(fail);
    socket.disconnect();
  }
});
