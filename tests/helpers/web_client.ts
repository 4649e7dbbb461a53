/**
 * A WebSocket client of the gateway for tests (Deno's own WebSocket, no browser): sends the
 * hello, collects the welcome and the records, sends frames.
 *
 * @module
 */

import { decodeFrameBody, encodeFrame, type Message } from "../../lib/protocol/frame.ts";
import {
  decodeRecords,
  fingerprint,
  type Hello,
  type ResumePoint,
  type WebRecord,
  type Welcome,
} from "../../lib/protocol/web_records.ts";

/** Bound on any one wait. */
const WAIT_MS = 10_000;

/** One gateway connection. */
export class WebClient implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly records: WebRecord[] = [];
  /** The size of each binary message received. */
  readonly messageSizes: number[] = [];
  welcome: Welcome | undefined;
  /** How many records had come when the welcome did (the protocol says none). */
  recordsBeforeWelcome = 0;
  closed: CloseEvent | undefined;
  #changed: (() => void)[] = [];
  readonly #opened: Promise<void>;

  constructor(url: string, options: { headers?: Record<string, string> } = {}) {
    // Deno's WebSocket takes headers (an Origin, here) as a second-argument option.
    this.socket = new WebSocket(url, { headers: options.headers } as unknown as string[]);
    this.socket.binaryType = "arraybuffer";
    this.#opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = (event) => reject(new Error((event as ErrorEvent).message));
    });
    this.socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        this.welcome = JSON.parse(event.data);
        this.recordsBeforeWelcome = this.records.length;
      } else {
        const bytes = new Uint8Array(event.data as ArrayBuffer);
        this.messageSizes.push(bytes.length);
        this.records.push(...decodeRecords(bytes));
      }
      this.#wake();
    };
    this.socket.onclose = (event) => {
      this.closed = event;
      this.#wake();
    };
  }

  /** Opens, says hello (resuming from `resume` if given) and waits for the welcome. */
  static async open(url: string, resume?: ResumePoint): Promise<WebClient> {
    const client = new WebClient(url);
    await client.opened;
    client.hello(resume);
    await client.until(() => client.welcome !== undefined, "the welcome");
    return client;
  }

  get opened(): Promise<void> {
    return this.#opened;
  }

  hello(resume?: ResumePoint): void {
    const hello: Hello = resume ? { type: "hello", resume } : { type: "hello" };
    this.socket.send(JSON.stringify(hello));
  }

  send(message: Message): void {
    this.socket.send(encodeFrame(message));
  }

  /** The texts of the records received. */
  get texts(): string[] {
    return this.records.map((r) => decodeFrameBody(r.frame.subarray(4)).text);
  }

  /** Where to resume from after the last record received. */
  get resumePoint(): ResumePoint {
    const last = this.records.at(-1);
    return {
      epoch: this.welcome!.epoch,
      seq: last?.seq ?? this.welcome!.seq,
      tail: last ? fingerprint(last.frame) : "0000000000000000",
    };
  }

  /** Resolves once `done()` holds, checked after every message and close. */
  async until(done: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (done()) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
        const check = () => {
          if (done()) resolve();
          else this.#changed.push(check);
        };
        this.#changed.push(check);
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the server closed the socket. */
  async untilClosed(ms = WAIT_MS): Promise<CloseEvent> {
    await this.until(() => this.closed !== undefined, "the socket to close", ms);
    return this.closed!;
  }

  #wake(): void {
    const waiting = this.#changed;
    this.#changed = [];
    for (const check of waiting) check();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.closed) return;
    this.socket.close();
    await this.untilClosed().catch(() => {});
  }
}

/** A message from `username` now. */
export function message(username: string, text: string): Message {
  return {
    username,
    text,
    time: { year: 2026, month: 12, day: 2, hour: 3, minute: 4, second: 5 },
  };
}
