// Entry of socket.io.msgpack.min.js: the global `io`, with the msgpack parser
// as its default (the format of socketwire's Server(parser="msgpack")).
import { io } from "./socket.io.js";
import { msgpackParser } from "./msgpack.js";

const ioMsgpack = (uri, opts) =>
  uri && typeof uri === "object"
    ? io({ parser: msgpackParser, ...uri })
    : io(uri, { parser: msgpackParser, ...opts });
Object.assign(ioMsgpack, io, { connect: ioMsgpack, io: ioMsgpack, msgpackParser });

globalThis.io = ioMsgpack;
