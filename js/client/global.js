// Entry of the classic <script> build: the module's io() as the global `io`.
import { io } from "./socket.io.js";

globalThis.io = io;
