// Types of socketwire's browser client (socket.io.esm.min.js), the API of the
// official socket.io-client.

type Listener = (...args: any[]) => void;

export declare class Emitter {
  on(event: string, fn: Listener): this;
  once(event: string, fn: Listener): this;
  off(event?: string, fn?: Listener): this;
  emit(event: string, ...args: any[]): this;
  listeners(event: string): Listener[];
  hasListeners(event: string): boolean;
}

export interface Parser {
  Encoder: new () => { encode(packet: Packet): Array<string | ArrayBuffer | ArrayBufferView | Blob> };
  Decoder: new () => Emitter & { add(chunk: string | ArrayBuffer): void; destroy(): void };
}

export interface Packet {
  type: number;
  nsp: string;
  id?: number;
  data?: any;
}

export interface ManagerOptions {
  path?: string;
  query?: Record<string, string> | string;
  transports?: Array<"polling" | "websocket">;
  upgrade?: boolean;
  rememberUpgrade?: boolean;
  withCredentials?: boolean;
  extraHeaders?: Record<string, string>;
  timestampRequests?: boolean;
  timestampParam?: string;
  protocols?: string | string[];
  forceNew?: boolean;
  multiplex?: boolean;
  reconnection?: boolean;
  reconnectionAttempts?: number;
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  randomizationFactor?: number;
  timeout?: number | false;
  autoConnect?: boolean;
  parser?: Parser;
}

export interface SocketOptions {
  auth?: Record<string, unknown> | ((cb: (data: Record<string, unknown>) => void) => void);
  retries?: number;
  ackTimeout?: number;
}

export declare class Transport extends Emitter {
  readonly name: "polling" | "websocket";
  writable: boolean;
}

export declare class Engine extends Emitter {
  id?: string;
  transport: Transport;
  readyState: "opening" | "open" | "closing" | "closed";
  upgrades: string[];
  pingInterval: number;
  pingTimeout: number;
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): this;
  close(): this;
}

export declare class Manager extends Emitter {
  constructor(uri?: string, opts?: Partial<ManagerOptions & SocketOptions>);
  engine: Engine;
  nsps: Record<string, Socket>;
  open(fn?: (err?: Error) => void): this;
  connect(fn?: (err?: Error) => void): this;
  socket(nsp: string, opts?: Partial<SocketOptions>): Socket;
  disconnect(): void;
  reconnection(): boolean;
  reconnection(v: boolean): this;
  reconnectionAttempts(): number;
  reconnectionAttempts(v: number): this;
  reconnectionDelay(): number;
  reconnectionDelay(v: number): this;
  reconnectionDelayMax(): number;
  reconnectionDelayMax(v: number): this;
  randomizationFactor(): number;
  randomizationFactor(v: number): this;
  timeout(): number | false;
  timeout(v: number | false): this;
}

export declare class Socket extends Emitter {
  readonly io: Manager;
  readonly nsp: string;
  id: string | undefined;
  connected: boolean;
  recovered: boolean;
  auth: SocketOptions["auth"];
  readonly disconnected: boolean;
  readonly active: boolean;
  readonly volatile: this;
  connect(): this;
  open(): this;
  disconnect(): this;
  close(): this;
  send(...args: any[]): this;
  emit(event: string, ...args: any[]): this;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
  timeout(ms: number): this;
  compress(compress: boolean): this;
  onAny(fn: Listener): this;
  prependAny(fn: Listener): this;
  offAny(fn?: Listener): this;
  listenersAny(): Listener[];
  onAnyOutgoing(fn: Listener): this;
  prependAnyOutgoing(fn: Listener): this;
  offAnyOutgoing(fn?: Listener): this;
  listenersAnyOutgoing(): Listener[];
}

export declare const parser: Parser & { protocol: 5; PacketType: Record<string, number> };
export declare const PacketType: Record<"CONNECT" | "DISCONNECT" | "EVENT" | "ACK" | "CONNECT_ERROR" | "BINARY_EVENT" | "BINARY_ACK", number>;
export declare const Encoder: Parser["Encoder"];
export declare const Decoder: Parser["Decoder"];

export declare function io(uri?: string, opts?: Partial<ManagerOptions & SocketOptions>): Socket;
export declare function io(opts: Partial<ManagerOptions & SocketOptions>): Socket;
export { io as connect };
export default io;
