/**
 * Protocol clients that speak bytes directly, from the test process: for tests that send
 * malformed input, check exact bytes, or need many clients at once. Built on the project's
 * own codec (encodeFrame, FrameDecoder, encodeIdentify).
 *
 * @module
 */

import net from "node:net";
import { encodeFrame, type Message, type Timestamp } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify, type Role } from "../../lib/protocol/identify.ts";
import { writeAll } from "../../lib/net/wire_io.ts";
import { dial } from "../../lib/net/transport.ts";
import type { ServerProcess } from "./processes.ts";
import type { Target } from "../../tools/soak/net.ts";
import { WAIT_MS, Watch } from "../../tools/harness/wait.ts";

/** The timestamp the raw keyboards stamp on their messages; displays print it as below. */
export const FIXED_TIME: Timestamp = {
  year: 2024,
  month: 1,
  day: 2,
  hour: 3,
  minute: 4,
  second: 5,
};
/** {@linkcode FIXED_TIME} as a display prints it. */
export const FIXED_TIME_TEXT = "2024-01-02 03:04:05";

/** A complete frame from `username` saying `text`, stamped {@linkcode FIXED_TIME}. */
export function frameOf(username: string, text: string, littleEndian = false): Uint8Array {
  return encodeFrame({ username, time: FIXED_TIME, text }, { littleEndian });
}

/** Options for {@linkcode RawClient.connect}. */
export interface RawConnectOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Connect with TLS, trusting this root CA (PEM). */
  caCert?: string;
}

/** Options for {@linkcode RawClient.read}. */
export interface RawReadOptions {
  /** Decode what arrives into `messages`; default true. */
  decode?: boolean;
  littleEndian?: boolean;
}

/** A TCP or TLS connection to the server that the test drives byte by byte. */
export class RawClient implements AsyncDisposable {
  readonly conn: Deno.Conn;
  /** This connection as the server's log names it, e.g. "127.0.0.1:40312". */
  readonly peer: string;
  /** Messages decoded so far, once {@linkcode RawClient.read} has started. */
  readonly messages: Message[] = [];
  #chunks: Uint8Array[] = [];
  #received = 0;
  #reading: Promise<void> | undefined;
  #closed = false;
  #watch: Watch;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    const local = conn.localAddr as Deno.NetAddr;
    this.peer = `${local.hostname}:${local.port}`;
    this.#watch = new Watch(`raw client ${this.peer}`, () => this.#seen());
  }

  /** Connects (and completes the TLS handshake when `caCert` is given). */
  static async connect(port: number, options: RawConnectOptions = {}): Promise<RawClient> {
    const conn = await dial({
      host: options.hostname ?? "127.0.0.1",
      port,
      tls: options.caCert !== undefined,
      caCerts: options.caCert === undefined ? undefined : [options.caCert],
    });
    return new RawClient(conn);
  }

  /** Connects, identifies as `role` and waits until the server has logged the identify. */
  static async identified(
    server: ServerProcess,
    port: number,
    role: Role,
    options: RawConnectOptions & { littleEndian?: boolean } = {},
  ): Promise<RawClient> {
    const client = await RawClient.connect(port, options);
    try {
      await client.send(encodeIdentify(role, options.littleEndian));
      await server.sawIdentify(client.peer, role);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /**
   * Connects to `target`, identifies as `role`, waits until the server has logged that, and
   * then reads, decoding in the display's byte order, unless `read` is false (the test reads,
   * or lets the data pile up).
   */
  static async open(
    server: ServerProcess,
    target: Target,
    role: Role,
    options: { littleEndian?: boolean; read?: boolean } = {},
  ): Promise<RawClient> {
    const client = await RawClient.identified(server, target.port, role, {
      caCert: target.tls ? target.caCert : undefined,
      littleEndian: options.littleEndian,
    });
    if (options.read ?? true) client.read({ littleEndian: options.littleEndian });
    return client;
  }

  /** The local port: how the server's log names this connection, with its address. */
  get port(): number {
    return (this.conn.localAddr as Deno.NetAddr).port;
  }

  /** Bytes received so far (only counted while reading). */
  get received(): number {
    return this.#received;
  }

  /** Every byte received so far, in order. */
  get bytes(): Uint8Array {
    const out = new Uint8Array(this.#received);
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /** Why reading ended ("the server closed the connection", ...), once it has. */
  get ended(): string | undefined {
    return this.#watch.ended;
  }

  /** Sends every byte of `bytes`. */
  async send(bytes: Uint8Array): Promise<void> {
    await writeAll(this.conn, bytes);
  }

  /**
   * Starts reading everything the server sends, in the background, until the connection
   * ends. A display that should never read simply never calls this.
   */
  read(options: RawReadOptions = {}): this {
    if (this.#reading) return this;
    const decoder = options.decode === false
      ? undefined
      : new FrameDecoder({ littleEndian: options.littleEndian, maxFrame: 2 ** 31 - 1 });
    this.#reading = this.#pump(decoder);
    return this;
  }

  /** The first `count` messages, once they have arrived. */
  async waitForMessages(count: number, ms = WAIT_MS): Promise<Message[]> {
    this.read();
    await this.#watch.until(() => this.messages.length >= count, `${count} messages`, ms);
    return this.messages.slice(0, count);
  }

  /** The first `count` bytes, once they have arrived. */
  async waitForBytes(count: number, ms = WAIT_MS): Promise<Uint8Array> {
    this.read({ decode: false });
    await this.#watch.until(() => this.#received >= count, `${count} bytes`, ms);
    return this.bytes.subarray(0, count);
  }

  /**
   * Resolves with how the connection ended once the server has closed it (end of stream or
   * reset); whatever arrives meanwhile is read and kept.
   */
  async closedByServer(ms = WAIT_MS): Promise<string> {
    this.read({ decode: false });
    await this.#watch.until(() => this.#watch.ended !== undefined, "the server to close", ms)
      .catch((error) => {
        if (this.#watch.ended === undefined) throw error;
      });
    return this.#watch.ended!;
  }

  /** Closes the connection; harmless if it is closed already. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reading;
  }

  async #pump(decoder: FrameDecoder | undefined): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let reason = "the server closed the connection";
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        const chunk = buffer.slice(0, n);
        this.#chunks.push(chunk);
        this.#received += n;
        if (decoder) this.messages.push(...decoder.push(chunk));
        this.#watch.changed();
      }
    } catch (error) {
      if (this.#closed) reason = "closed by the test";
      else if (error instanceof Deno.errors.ConnectionReset) reason = "connection reset";
      else reason = `reading failed: ${error}`;
    } finally {
      this.#watch.end(reason);
    }
  }

  #seen(): string {
    const shown = this.messages.slice(-10).map((m) => `${m.username}: ${m.text}`);
    return `${this.#received} bytes, ${this.messages.length} messages${
      shown.length ? `, the last:\n${shown.join("\n")}` : ""
    }`;
  }
}

/**
 * Connects as a keyboard, sends `bytes` (a frame cut short), then resets the connection (a
 * TCP RST, not an orderly close), as a crashing client's kernel would. Deno.Conn cannot
 * reset, so this goes through node:net. Resolves with the peer name the server logs.
 */
export function resetAfter(
  port: number,
  bytes: Uint8Array,
  ready: (peer: string) => Promise<unknown> = () => Promise.resolve(),
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      const peer = `${socket.localAddress}:${socket.localPort}`;
      socket.write(bytes, (error) => {
        if (error) return reject(error);
        // A reset that beats the server's accept() can take the connection out of its
        // queue unseen: `ready` waits until the server has it.
        ready(peer).then(() => {
          socket.once("close", () => resolve(peer));
          socket.resetAndDestroy();
        }, reject);
      });
    });
    socket.once("error", reject);
  });
}
