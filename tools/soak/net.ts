/**
 * Connections as the soak's clients need them: plain or TLS by target, waiting to see whether
 * and how the server ends a connection, TCP resets (through node:net, as Deno.Conn has no
 * way to send one), storms of them, and TLS sessions with bytes written beneath the TLS layer.
 *
 * @module
 */

import net from "node:net";
import { closeQuietly } from "../../lib/net/wire_io.ts";
import { dial as dialConn } from "../../lib/net/transport.ts";

export { closeQuietly };
import { Duplex } from "node:stream";
import tls from "node:tls";

/** Where a client connects: always loopback; TLS trusts `caCert`. */
export interface Target {
  port: number;
  tls: boolean;
  caCert?: string;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Connects to the target on loopback (lib/net/transport.ts's dial). */
export function dial(target: Target): Promise<Deno.Conn> {
  return dialConn({
    host: "127.0.0.1",
    port: target.port,
    tls: target.tls,
    caCerts: target.caCert ? [target.caCert] : undefined,
  });
}

/** How a connection ended, as its reader saw it. */
export interface Ending {
  /** eof: the server closed it; reset: RST; open: still open when we stopped waiting. */
  how: "eof" | "reset" | "open" | "error";
  /** Milliseconds from the start of the wait. */
  ms: number;
  /** Bytes read meanwhile. */
  bytes: number;
  detail?: string;
}

/**
 * Reads (and discards) until the server ends the connection or `ms` pass, then closes it.
 * `onData` sees each chunk, e.g. to check the frames in it.
 */
export async function readUntilClosed(
  conn: Deno.Conn,
  ms: number,
  onData?: (bytes: Uint8Array) => void,
): Promise<Ending> {
  const started = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  // Each call its own buffer: a read writes into it as soon as data comes, even while the
  // code that would look at an earlier read's bytes has yet to run.
  const drain = new Uint8Array(16 * 1024);
  let bytes = 0;
  const end = (how: Ending["how"], detail?: string): Ending => ({
    how,
    ms: performance.now() - started,
    bytes,
    detail,
  });
  try {
    for (;;) {
      const n = await conn.read(drain);
      if (n === null) return end("eof");
      bytes += n;
      onData?.(drain.subarray(0, n));
    }
  } catch (error) {
    if (timedOut) return end("open");
    if (error instanceof Deno.errors.ConnectionReset) return end("reset");
    if (error instanceof Deno.errors.BrokenPipe) return end("reset");
    // rustls reports a peer that closed without close_notify as UnexpectedEof.
    if (error instanceof Deno.errors.UnexpectedEof) return end("eof");
    return end("error", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Writes everything; false if the server has already closed the connection. */
export async function tryWrite(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects through node:net, sends `bytes`, waits `holdMs` without reading, then resets the
 * connection (RST), as a crashing client's kernel would.
 */
export function sendThenReset(port: number, bytes: Uint8Array, holdMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.pause();
      socket.write(bytes, (error) => {
        if (error) {
          socket.destroy();
          return resolve();
        }
        setTimeout(() => {
          socket.once("close", () => resolve());
          socket.resetAndDestroy();
        }, holdMs);
      });
    });
    socket.once("error", (error: Error & { code?: string }) => {
      // A server that refused us (connection limit) or was quicker to close is fine here.
      if (error.code === "ECONNRESET" || error.code === "EPIPE") resolve();
      else reject(error);
    });
  });
}

/** A node:net socket's error, with its errno code. */
type NodeError = Error & { code?: string };

/**
 * Connects through node:net and resets the connection (RST) the moment it is made, sending
 * nothing. Resolves with "" once closed, or with the error's code (a refused connect, say).
 */
export function connectThenReset(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => socket.resetAndDestroy());
    socket.once("error", (error: NodeError) => resolve(error.code ?? error.message));
    socket.once("close", () => resolve(""));
  });
}

/** What a reset storm did: how many, how long it took, and the errors by code. */
export interface StormResult {
  count: number;
  ms: number;
  errors: Map<string, number>;
}

/** `count` connections at once to `port`, each reset the moment it is made. */
export async function resetStorm(port: number, count: number): Promise<StormResult> {
  const started = performance.now();
  const outcomes = await Promise.all(Array.from({ length: count }, () => connectThenReset(port)));
  const errors = new Map<string, number>();
  for (const code of outcomes) if (code) errors.set(code, (errors.get(code) ?? 0) + 1);
  return { count, ms: performance.now() - started, errors };
}

/**
 * A TLS session over a TCP connection of our own, so that bytes can be written beneath the
 * TLS layer once it is up, and so that how the server ends the TCP connection can be seen
 * whatever node:tls makes of it. node:tls runs on a stream that relays to the socket; the
 * socket's events are ours alone.
 */
export class TlsBeneath {
  readonly tls: tls.TLSSocket;
  /** The client's port: the server's log names the peer by it. */
  readonly localPort: number;
  /** Resolves with how the server ended the TCP connection: eof (FIN) or reset (RST). */
  readonly ended: Promise<"eof" | "reset">;
  /** The last TLS error node:tls reported (a fatal alert from the server, say). */
  tlsError = "";
  #raw: net.Socket;
  #written: { last?: Uint8Array };

  private constructor(
    raw: net.Socket,
    session: tls.TLSSocket,
    ended: Promise<"eof" | "reset">,
    written: { last?: Uint8Array },
  ) {
    this.#raw = raw;
    this.tls = session;
    this.localPort = raw.localPort ?? 0;
    this.ended = ended;
    this.#written = written;
    session.on("error", (error) => this.tlsError = error.message);
    // Whatever a display is sent is read and dropped, so that it never looks slow.
    session.on("data", () => {});
  }

  /** Connects to `target` (a TLS port) and completes the handshake within `ms`. */
  static async connect(target: Target, ms: number): Promise<TlsBeneath> {
    const raw = net.connect({ host: "127.0.0.1", port: target.port });
    raw.setNoDelay(true);
    let ended!: (how: "eof" | "reset") => void;
    const written: { last?: Uint8Array } = {};
    const endedPromise = new Promise<"eof" | "reset">((resolve) => ended = resolve);
    const relay = new Duplex({
      read() {},
      write(chunk: Uint8Array, _encoding, callback) {
        if (raw.destroyed) return callback();
        written.last = chunk;
        raw.write(chunk, () => callback());
      },
      final(callback) {
        callback();
      },
      destroy(error, callback) {
        // The socket stays open: how the server ends it is what is being watched.
        callback(error);
      },
    });
    raw.on("data", (bytes: Uint8Array) => {
      if (!relay.destroyed) relay.push(bytes);
    });
    raw.on("end", () => {
      ended("eof");
      if (!relay.destroyed) relay.push(null);
    });
    raw.on("error", () => ended("reset"));
    raw.on("close", () => ended("eof"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no TCP connection within ${ms} ms`)), ms);
        raw.once("connect", () => resolve());
        raw.once("error", reject);
      });
      const session = tls.connect({ socket: relay, ca: target.caCert, servername: "localhost" });
      await new Promise<void>((resolve, reject) => {
        session.once("secureConnect", () => resolve());
        session.once("error", reject);
        endedPromise.then(() => reject(new Error("the server closed the connection")));
      });
      return new TlsBeneath(raw, session, endedPromise, written);
    } catch (error) {
      raw.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last bytes node:tls wrote to the socket: whole records, to replay or mutate. */
  get lastRecords(): Uint8Array | undefined {
    return this.#written.last;
  }

  /**
   * Writes through TLS; resolves once the record is on the socket, or once the server has
   * ended the connection: node:tls may then never call back (an empty write, here, after the
   * server closed, never did, and the fuzzer hung on it).
   */
  writeTls(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return Promise.resolve();
    return this.#untilEnded(new Promise((resolve) => this.tls.write(bytes, () => resolve())));
  }

  /** Writes on the TCP connection itself, beneath TLS; resolves as writeTls does. */
  writeRaw(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0 || this.#raw.destroyed) return Promise.resolve();
    return this.#untilEnded(new Promise((resolve) => this.#raw.write(bytes, () => resolve())));
  }

  #untilEnded(written: Promise<void>): Promise<void> {
    return Promise.race([written, this.ended.then(() => {})]);
  }

  /** Resolves with how the server ended the connection, or "open" after `ms`. */
  async waitEnded(ms: number): Promise<"eof" | "reset" | "open"> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), ms));
    try {
      return await Promise.race([this.ended, open]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.tls.destroy();
    this.#raw.destroy();
  }
}

/**
 * What a client can write beneath TLS once its session is up, by name; each must end the
 * session at once. `random(n)` gives n random bytes.
 */
export const BENEATH_TLS: Record<string, (random: (n: number) => Uint8Array) => Uint8Array> = {
  "an application-data record with a bad MAC": (random) => {
    const record = new Uint8Array(5 + 32);
    record.set([0x17, 0x03, 0x03, 0x00, 0x20]);
    record.set(random(32), 5);
    return record;
  },
  "plain text": () => new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"),
  "a record longer than TLS allows": () => Uint8Array.of(0x17, 0x03, 0x03, 0x48, 0x01, 1, 2, 3),
  "a record of no TLS content type": () => Uint8Array.of(0x42, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4),
};
