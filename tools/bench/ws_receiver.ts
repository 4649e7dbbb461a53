/**
 * A WebSocket receiver for the load generator (ws_load.ts) that costs about what a TCP display
 * does: the upgrade by hand on a plain TCP connection, then server frames (never masked, RFC
 * 6455 §5.1) parsed in one reused buffer. Deno's own WebSocket client copies every message
 * into a fresh ArrayBuffer and an event; with a hundred receivers in one process that, not
 * the server, set the rate. It receives whole messages (neither server fragments them) and sends
 * only short masked frames: the hello, and pongs.
 *
 * @module
 */

import { writeAll } from "../../lib/net/wire_io.ts";

/** Called with each binary message: the buffer's view and the payload's bounds. */
export type OnMessage = (view: DataView, from: number, to: number) => void;

const BUFFER_SIZE = 1024 * 1024;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** A receiving WebSocket on `port`'s `path`. */
export class RawWebSocket {
  readonly #conn: Deno.Conn;
  #onText: ((text: string) => void) | undefined;
  readonly done: Promise<void>;

  private constructor(conn: Deno.Conn, rest: Uint8Array, onMessage: OnMessage) {
    this.#conn = conn;
    this.done = this.#read(rest, onMessage);
  }

  /** Connects and upgrades; throws if the server does not answer 101. */
  static async open(port: number, path: string, onMessage: OnMessage): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let head = new Uint8Array(0);
    for (;;) {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) throw new Error("the server closed the connection during the upgrade");
      head = new Uint8Array([...head, ...chunk.subarray(0, n)]);
      const end = new TextDecoder().decode(head).indexOf("\r\n\r\n");
      if (end < 0) continue;
      const status = new TextDecoder().decode(head.subarray(0, 12));
      if (!status.startsWith("HTTP/1.1 101")) {
        conn.close();
        throw new Error(`the upgrade was answered ${JSON.stringify(status)}`);
      }
      return new RawWebSocket(conn, head.subarray(end + 4), onMessage);
    }
  }

  /** Resolves with the next text message (the gateway's welcome). */
  nextText(): Promise<string> {
    return new Promise((resolve) => this.#onText = resolve);
  }

  /** Sends a text message (masked, as a client must). */
  sendText(text: string): Promise<void> {
    return this.#send(OP_TEXT, new TextEncoder().encode(text));
  }

  async #send(op: number, payload: Uint8Array): Promise<void> {
    if (payload.length > 125) throw new RangeError("a short payload only");
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = new Uint8Array(6 + payload.length);
    frame[0] = 0x80 | op;
    frame[1] = 0x80 | payload.length;
    frame.set(mask, 2);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i % 4];
    await writeAll(this.#conn, frame);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Closed by the server already.
    }
  }

  async #read(rest: Uint8Array, onMessage: OnMessage): Promise<void> {
    const buffer = new Uint8Array(BUFFER_SIZE);
    const view = new DataView(buffer.buffer);
    buffer.set(rest);
    let have = rest.length;
    for (;;) {
      let at = 0;
      while (have - at >= 2) {
        const op = buffer[at] & 0x0f;
        let length = buffer[at + 1] & 0x7f;
        let header = 2;
        if (length === 126) {
          if (have - at < 4) break;
          length = view.getUint16(at + 2);
          header = 4;
        } else if (length === 127) {
          if (have - at < 10) break;
          length = Number(view.getBigUint64(at + 2));
          header = 10;
        }
        if (header + length > BUFFER_SIZE) throw new Error(`a ${length}-byte message`);
        if (have - at < header + length) break;
        const from = at + header;
        if (op === OP_BINARY) onMessage(view, from, from + length);
        else if (op === OP_TEXT) {
          this.#onText?.(new TextDecoder().decode(buffer.subarray(from, from + length)));
        } else if (op === OP_PING) {
          this.#send(OP_PONG, buffer.slice(from, from + length)).catch(() => {});
        } else if (op === OP_CLOSE) return;
        at = from + length;
      }
      buffer.copyWithin(0, at, have);
      have -= at;
      const n = await this.#conn.read(buffer.subarray(have)).catch(() => null);
      if (n === null) return;
      have += n;
    }
  }
}
