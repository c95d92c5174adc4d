/**
 * osp's HTTP/1.1 client, on Bun's own sockets: kept-alive connections per backend, a request body
 * written as it comes from the client, the answer read by response.ts and its body handed on, both
 * with backpressure.
 *
 * Why not fetch() or node:http's client: fetch() does its I/O on a thread of its own and reads a
 * body ahead of its reader; node:http's client runs a whole stream stack in JavaScript. On this
 * socket a 1 MiB GET costs a third less CPU than by fetch(), a 1 MiB PUT a fifth less than by
 * node:http's client, a small request the same (bench/README.md, "Fourth round").
 */
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import type { Socket, SocketHandler } from "bun";
import { ProtocolError, ResponseParser, type ResponseEvent, type ResponseHead } from "./response.ts";

export { ProtocolError };

/** TLS settings of an https endpoint; one pool of connections per endpoint and settings object. */
export interface TlsSettings {
  ca?: string;
  rejectUnauthorized: boolean;
}

interface Endpoint {
  hostname: string;
  port: number;
  tls?: TlsSettings;
}

/** A body as it comes, paused until read; see resume.ts's Flow. */
export interface BodyFlow extends EventEmitter {
  pause(): this;
  resume(): this;
  destroy(): this;
}

/**
 * A request body on its way to the backend, framed by the Content-Length of the request's head:
 * write() is false when the socket is full, and onDrain's callback runs once it has room again.
 */
export interface BodySink {
  write(chunk: Uint8Array): boolean;
  /** All of it has been written. */
  end(): void;
  onDrain(callback: () => void): void;
}

export interface Answer {
  head: ResponseHead;
  /** Empty where the answer has none (HEAD, 204, 304). */
  body: BodyFlow;
}

/** An idle connection is closed after this long, before a backend closes it (Apache's default is 5 s). */
const IDLE_MS = 4000;
/** Idle connections kept per pool. */
const MAX_IDLE = 256;

/** Bytes of a body that may wait for its reader before the socket is no longer read. */
const QUEUED_BEFORE_PAUSE = 64 * 1024;

/** RFC 9110 9.2.2: a request that may be sent again if its connection failed before any answer. */
const IDEMPOTENT = new Set(["GET", "HEAD", "DELETE", "PUT", "OPTIONS"]);

/**
 * Sends `head` (the request's head) to `origin` ("http://host:port", or https with `tls`), then its
 * body if `upload` writes one, and resolves with the answer once its head is read. Aborting
 * `signal` ends the exchange and its connection, body included. A request without a body that
 * meets a kept-alive connection the backend has closed is sent again once, on a new one, if
 * idempotent.
 */
export async function request(origin: string, tls: TlsSettings, method: string, head: Uint8Array, signal: AbortSignal, upload?: (sink: BodySink) => void): Promise<Answer> {
  const pool = poolOf(origin, tls);
  let conn = pool.take();
  const reused = conn !== undefined;
  conn ??= await pool.open(signal);
  try {
    return await conn.exchange(method, head, signal, upload);
  } catch (e) {
    if (!(reused && !upload && e instanceof StaleConnection && IDEMPOTENT.has(method))) throw e;
    return (await pool.open(signal)).exchange(method, head, signal);
  }
}

/** A kept-alive connection the backend closed before it answered: nothing of the answer was read. */
class StaleConnection extends Error {
  constructor(readonly code = "ECONNRESET") {
    super("the backend closed the connection");
  }
}

const aborted = () => Object.assign(new Error("aborted"), { name: "AbortError", code: "ABORT_ERR" });

class Pool {
  private readonly idle: Connection[] = [];

  constructor(private readonly key: string, private readonly endpoint: Endpoint) {}

  take(): Connection | undefined {
    const now = performance.now();
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (!conn.closed && now - conn.idleSince < IDLE_MS) return conn;
      conn.close();
    }
  }

  give(conn: Connection): void {
    // let go by the sweeper while this connection was in use: back into the pool of its endpoint
    const current = pools.get(this.key);
    if (current && current !== this) return current.give(conn);
    if (!current) pools.set(this.key, this);
    if (this.idle.length >= MAX_IDLE) return conn.close();
    conn.idleSince = performance.now();
    this.idle.push(conn);
    sweeper ??= setInterval(sweep, IDLE_MS / 2).unref();
  }

  /** Closes the connections idle too long; true when none is left. */
  sweep(now: number): boolean {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i]!;
      if (conn.closed || now - conn.idleSince >= IDLE_MS) {
        this.idle.splice(i, 1);
        conn.close();
      }
    }
    return this.idle.length === 0;
  }

  open(signal: AbortSignal): Promise<Connection> {
    if (signal.aborted) return Promise.reject(aborted());
    const conn = new Connection(this);
    const { hostname, port, tls } = this.endpoint;
    return new Promise<Connection>((resolve, reject) => {
      const fail = (e: Error) => {
        signal.removeEventListener("abort", onAbort);
        conn.close();
        reject(e);
      };
      const onAbort = () => fail(aborted());
      conn.ready = (e) => {
        conn.ready = undefined;
        if (e) return fail(e);
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return fail(aborted());
        resolve(conn);
      };
      signal.addEventListener("abort", onAbort);
      Bun.connect<Connection>({
        hostname, port, data: conn, socket: handlers,
        tls: tls && { ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized, serverName: isIP(hostname) ? undefined : hostname },
      }).then((socket) => {
        conn.socket = socket;
        // a plain connection is ready once open; a TLS one once its handshake is done
        if (!tls) conn.ready?.();
      }, (e: Error) => conn.ready?.(e));
    });
  }
}

/** Pools by endpoint and TLS settings (one object per bucket, numbered here); an empty one is let go. */
const pools = new Map<string, Pool>();
const tlsIds = new WeakMap<object, number>();
let lastTlsId = 0;
let sweeper: Timer | undefined;
function sweep(): void {
  const now = performance.now();
  for (const [key, pool] of pools) if (pool.sweep(now)) pools.delete(key);
}

function poolOf(origin: string, tls: TlsSettings): Pool {
  let id = tlsIds.get(tls);
  if (!id) tlsIds.set(tls, (id = ++lastTlsId));
  const key = `${origin} ${id}`;
  let pool = pools.get(key);
  if (!pool) {
    const url = new URL(origin);
    const https = url.protocol === "https:";
    // "[::1]" as URL writes it, "::1" as a socket takes it
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    pools.set(key, (pool = new Pool(key, { hostname, port: Number(url.port) || (https ? 443 : 80), tls: https ? tls : undefined })));
  }
  return pool;
}

/** What a connection is doing for its current request. */
interface Current {
  parser: ResponseParser;
  received: number;
  answered: (e: Error | undefined, answer?: Answer) => void;
  body?: Body;
  signal: AbortSignal;
  onAbort: () => void;
  /** Until its body has all been written: an answer that comes before leaves the connection spent. */
  writing: boolean;
  /** What the socket has not taken yet, written on "drain". */
  unsent: Uint8Array[];
  /** Called once what was unsent has been written, if a write said to wait. */
  drained?: () => void;
  waiting: boolean;
}

class Connection {
  socket: Socket<Connection> | undefined;
  /** Set while connecting: called once it is ready or failed. */
  ready: ((e?: Error) => void) | undefined;
  closed = false;
  idleSince = 0;
  paused = false;
  current: Current | undefined;

  constructor(readonly pool: Pool) {}

  exchange(method: string, head: Uint8Array, signal: AbortSignal, upload?: (sink: BodySink) => void): Promise<Answer> {
    if (signal.aborted) {
      this.pool.give(this);
      return Promise.reject(aborted());
    }
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const current: Current = {
        parser: new ResponseParser(method),
        received: 0,
        answered: (e, answer) => {
          if (settled) return;
          settled = true;
          if (e) reject(e);
          else resolve(answer!);
        },
        signal,
        onAbort: () => this.fail(aborted()),
        writing: upload !== undefined,
        unsent: [],
        waiting: false,
      };
      this.current = current;
      signal.addEventListener("abort", current.onAbort);
      this.write(current, head);
      upload?.({
        write: (chunk) => current === this.current && (this.write(current, chunk) || !(current.waiting = true)),
        end: () => void (current.writing = false),
        onDrain: (callback) => void (current.drained = callback),
      });
    });
  }

  /** Whether the socket took all of it; what it did not take is written on "drain". */
  private write(current: Current, bytes: Uint8Array): boolean {
    if (current.unsent.length === 0) {
      const written = this.socket!.write(bytes);
      if (written >= bytes.length) return true;
      bytes = bytes.subarray(Math.max(written, 0));
    }
    current.unsent.push(bytes);
    return false;
  }

  onDrain(): void {
    const current = this.current;
    if (!current) return;
    while (current.unsent.length > 0) {
      const bytes = current.unsent[0]!;
      const written = this.socket!.write(bytes);
      if (written < bytes.length) {
        current.unsent[0] = bytes.subarray(Math.max(written, 0));
        return;
      }
      current.unsent.shift();
    }
    if (!current.waiting) return;
    current.waiting = false;
    current.drained?.();
  }

  onData(chunk: Uint8Array): void {
    const current = this.current;
    if (!current) return this.close(); // nothing was asked: a backend that talks out of turn is not reused
    current.received += chunk.length;
    let events: ResponseEvent[];
    try {
      events = current.parser.push(chunk);
    } catch (e) {
      return this.fail(e as Error);
    }
    this.handle(current, events);
  }

  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.ready?.(error ?? new StaleConnection());
    const current = this.current;
    if (!current) return;
    let events: ResponseEvent[];
    try {
      events = current.parser.close();
    } catch (e) {
      // nothing of an answer came: the connection was stale (or the backend refused to answer)
      return this.fail(current.received === 0 ? new StaleConnection((error as { code?: string } | undefined)?.code) : (error ?? (e as Error)));
    }
    this.handle(current, events);
  }

  private handle(current: Current, events: ResponseEvent[]): void {
    for (const ev of events) {
      if (ev.type === "head") {
        current.body = new Body(this);
        current.answered(undefined, { head: ev.head, body: current.body });
      } else if (ev.type === "body") current.body!.push(ev.data);
      else {
        this.current = undefined;
        current.signal.removeEventListener("abort", current.onAbort);
        current.body!.finish();
        if (this.paused) this.resumeReading();
        if (ev.reusable && !current.writing && current.unsent.length === 0 && !this.closed) this.pool.give(this);
        else this.close();
      }
    }
  }

  /** Ends the exchange: its answer, or its body, fails with `e`; the connection is not used again. */
  fail(e: Error): void {
    const current = this.current;
    this.current = undefined;
    this.close();
    if (!current) return;
    current.signal.removeEventListener("abort", current.onAbort);
    current.answered(e);
    current.body?.cut();
  }

  pauseReading(): void {
    if (this.paused || !this.current) return;
    this.paused = true;
    this.socket?.pause();
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket?.resume();
  }

  close(): void {
    this.closed = true;
    this.socket?.terminate();
  }
}

const handlers: SocketHandler<Connection> = {
  open(socket) {
    socket.data.socket = socket;
  },
  handshake(socket, success, error) {
    socket.data.ready?.(success ? undefined : (error ?? new Error("TLS handshake failed")));
  },
  data(socket, chunk) {
    socket.data.onData(chunk);
  },
  drain(socket) {
    socket.data.onDrain();
  },
  // the backend closed its side: that ends a body framed by the close, and the connection
  end(socket) {
    socket.data.onClose();
    socket.terminate();
  },
  close(socket, error) {
    socket.data.onClose(error);
  },
  error(socket, error) {
    socket.data.onClose(error);
  },
  connectError(socket, error) {
    socket.data.onClose(error);
  },
};

/**
 * An answer's body: "data" chunks while flowing, then "end" and "close"; "close" alone when it was
 * cut. Paused until read. While paused, what has arrived waits here and the socket is not read.
 */
class Body extends EventEmitter implements BodyFlow {
  private paused = true;
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** "ended" and "cut" until the reader has been told, then "over". */
  private state: "open" | "ended" | "cut" | "over" = "open";
  private conn: Connection | undefined;

  constructor(conn: Connection) {
    super();
    this.conn = conn;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.paused || this.queue.length > 0) {
      this.queue.push(data);
      this.queued += data.length;
      // a small body, usually come whole with its head, is not worth pausing the socket for
      if (this.queued > QUEUED_BEFORE_PAUSE) this.conn?.pauseReading();
    } else this.emit("data", data);
  }

  finish(): void {
    this.conn = undefined;
    this.state = "ended";
    if (!this.paused) this.flush();
  }

  cut(): void {
    this.conn = undefined;
    if (this.state !== "open") return;
    this.state = "cut";
    if (!this.paused) this.flush();
  }

  /** What arrives from now on waits here; the socket is paused once enough of it waits. */
  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.flush();
    if (!this.paused && this.state === "open") this.conn?.resumeReading();
    return this;
  }

  destroy(): this {
    const conn = this.conn;
    this.conn = undefined;
    this.queue = [];
    if (this.state === "open") conn?.fail(aborted());
    this.state = "over";
    return this;
  }

  private flush(): void {
    while (!this.paused && this.queue.length > 0) {
      const data = this.queue.shift()!;
      this.queued -= data.length;
      this.emit("data", data);
    }
    if (this.paused || this.queue.length > 0) return;
    const state = this.state;
    if (state === "ended" || state === "cut") {
      this.state = "over";
      if (state === "ended") this.emit("end");
      this.emit("close");
    }
  }
}
