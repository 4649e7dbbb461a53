/**
 * What the reliability tests share: the real server as a process, a protocol client that
 * identifies and collects what arrives, frames to send, and the two connection paths.
 *
 * @module
 */

import { encodeFrame, type Message } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify, type Role } from "../../lib/protocol/identify.ts";

import { closeQuietly, dial, readUntilClosed, sleep, type Target } from "../../tools/soak/net.ts";
import { ServerProcess } from "../../tools/harness/server_process.ts";

/** The repository. */
export const ROOT = new URL("../../", import.meta.url).pathname;
export const LINUX = Deno.build.os === "linux";
export const TIME = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };

export function frame(username: string, text: string, littleEndian = false): Uint8Array {
  return encodeFrame({ username, time: TIME, text }, { littleEndian });
}

export function frames(count: number, username: string, size = 10): Uint8Array {
  const one = (i: number) => frame(username, `${i}:${"x".repeat(size)}`);
  const all = Array.from({ length: count }, (_, i) => one(i));
  const out = new Uint8Array(all.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const f of all) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A client speaking the protocol from the test: identifies, then collects what arrives. */
export class Client implements AsyncDisposable {
  readonly messages: Message[] = [];
  /** How the connection ended, once it has. */
  ending: Promise<string>;
  #conn: Deno.Conn;
  #changed: (() => void) | undefined;

  private constructor(conn: Deno.Conn, littleEndian: boolean, read: boolean) {
    this.#conn = conn;
    this.ending = read ? this.#read(littleEndian) : Promise.resolve("not read");
  }

  /**
   * Connects, identifies as `role`, and waits until the server's log says it saw that. With
   * `read: false` nothing is read: the test reads, or lets the data pile up.
   */
  static async connect(
    server: ServerProcess,
    target: Target,
    role: Role,
    options: { littleEndian?: boolean; read?: boolean } = {},
  ): Promise<Client> {
    const conn = await dial(target);
    const port = (conn.localAddr as Deno.NetAddr).port;
    const seen = server.log.next(new RegExp(`:${port} identified as ${role}`), 10_000);
    await writeAll(conn, encodeIdentify(role, options.littleEndian));
    await seen;
    return new Client(conn, options.littleEndian ?? false, options.read ?? true);
  }

  get port(): number {
    return (this.#conn.localAddr as Deno.NetAddr).port;
  }

  get conn(): Deno.Conn {
    return this.#conn;
  }

  send(bytes: Uint8Array): Promise<void> {
    return writeAll(this.#conn, bytes);
  }

  /** Resolves once `count` messages have arrived, or rejects after `ms`. */
  async waitForMessages(count: number, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.messages.length < count) {
      if (performance.now() > deadline) {
        throw new Error(`${this.messages.length} of ${count} messages arrived within ${ms} ms`);
      }
      await Promise.race([new Promise<void>((r) => this.#changed = r), sleep(100)]);
    }
  }

  async #read(littleEndian: boolean): Promise<string> {
    const decoder = new FrameDecoder({ littleEndian, maxFrame: 2 ** 31 - 1 });
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) return "eof";
        this.messages.push(...decoder.push(buffer.subarray(0, n)));
        this.#changed?.();
      }
    } catch (error) {
      return error instanceof Deno.errors.ConnectionReset ? "reset" : `error: ${error}`;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.#conn);
    await Promise.race([this.ending, sleep(100)]);
  }
}

/** Reads whatever comes until the server closes the connection; says how and when. */
export async function closedBy(conn: Deno.Conn, ms: number): Promise<{ how: string; ms: number }> {
  const ending = await readUntilClosed(conn, ms);
  return { how: ending.how, ms: ending.ms };
}

export async function startServer(args: string[], endpoints = 1): Promise<ServerProcess> {
  return await ServerProcess.start(args, { listeners: endpoints });
}

export const plainOf = (server: ServerProcess): Target => ({
  port: server.endpoints[0].port,
  tls: false,
});

/** The two ways the server can hold a connection; tests of the connection code try both. */
export const PATHS = [
  { label: "native sockets", args: [] as string[] },
  { label: "--no-native-sockets", args: ["--no-native-sockets"] },
];
