/**
 * The soak's steady clients: keyboards that send numbered messages at a set rate, and displays
 * that check they receive every one of them, from every steady keyboard, in order and intact.
 * Whatever else the server relays (churn keyboards, hostile ones) is decoded too, so a
 * malformed frame from the server would be caught, and otherwise ignored.
 *
 * @module
 */

import { encodeFrame, type Timestamp } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { concat } from "../fuzz/frames.ts";
import { closeQuietly, dial, type Target } from "./net.ts";

/** Steady keyboards' usernames start with this. */
export const STEADY_PREFIX = "steady-";
const FILLER = "abcdefghijklmnopqrstuvwxyz0123456789ÄÖÜ€你好";
const TIME: Timestamp = { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 60 };

/** The filler after message `seq`'s header: its length and characters follow from `seq`. */
function filler(seq: number): string {
  const length = (seq * 7) % 97;
  let out = "";
  for (let i = 0; i < length; i++) out += FILLER[(seq + i) % FILLER.length];
  return out;
}

const BULK = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A body of `size` ASCII characters that still depends on `seq`. */
function bulk(seq: number, size: number): string {
  const pair = BULK[seq % BULK.length] + BULK[(seq >> 3) % BULK.length];
  return pair.repeat(size >> 1);
}

/** The text of steady message `seq`, sent at `sentAt` (ms since the epoch), `size` bytes or so. */
export function steadyText(seq: number, sentAt: number, size = 0): string {
  return `${seq}:${sentAt}:${size}:${size > 0 ? bulk(seq, size) : filler(seq)}`;
}

/** Options for {@linkcode SteadyKeyboard}. */
export interface SteadyKeyboardOptions {
  littleEndian?: boolean;
  /** Messages per second offered. */
  rate: number;
  /** Most messages sent but not yet seen by the reference display. */
  window: number;
  /** Bytes of text per message; 0 (the default) for short ones of varying length. */
  size?: number;
}

/** A keyboard that sends `steady-NAME` messages 0, 1, 2, ... at a steady rate. */
export class SteadyKeyboard {
  readonly name: string;
  readonly options: SteadyKeyboardOptions;
  /** Messages written to the socket. */
  sent = 0;
  /** Why it stopped early, if it did. */
  failure: string | undefined;
  #conn: Deno.Conn | undefined;
  #target: Target;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #started = 0;
  #stopped = 0;

  constructor(name: string, target: Target, options: SteadyKeyboardOptions) {
    this.name = STEADY_PREFIX + name;
    this.#target = target;
    this.options = options;
  }

  /** Connects and identifies. */
  async connect(): Promise<void> {
    this.#conn = await dial(this.#target);
    await this.#write(encodeIdentify("keyboard", this.options.littleEndian));
  }

  /** Starts sending; `seen()` says how many of ours the reference display has received. */
  start(seen: () => number): void {
    this.#started = performance.now();
    this.#loop = this.#run(seen);
  }

  /** Messages per second actually sent. */
  get achievedRate(): number {
    const end = this.#stopped || performance.now();
    return this.sent / Math.max(0.001, (end - this.#started) / 1000);
  }

  /** Stops sending (the connection stays open until {@linkcode SteadyKeyboard.close}). */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
    this.#stopped ||= performance.now();
  }

  close(): void {
    if (this.#conn) closeQuietly(this.#conn);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.#conn!.write(bytes.subarray(written));
  }

  async #run(seen: () => number): Promise<void> {
    const { rate, window, littleEndian, size } = this.options;
    try {
      while (!this.#stopping) {
        const due = Math.floor((performance.now() - this.#started) * rate / 1000) - this.sent;
        const room = window - (this.sent - seen());
        const count = Math.min(due, room, size ? 16 : 1000);
        if (count <= 0) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const now = Date.now();
        const frames: Uint8Array[] = [];
        for (let i = 0; i < count; i++) {
          const text = steadyText(this.sent + i, now, size);
          frames.push(encodeFrame({ username: this.name, time: TIME, text }, { littleEndian }));
        }
        await this.#write(concat(frames));
        this.sent += count;
      }
    } catch (error) {
      this.failure = `${this.name}: sending failed after ${this.sent} messages: ${error}`;
    }
    this.#stopped = performance.now();
  }
}

/** A display that checks the steady keyboards' messages. */
export class SteadyDisplay {
  readonly label: string;
  readonly littleEndian: boolean;
  /** Next sequence number expected from each steady keyboard. */
  readonly next = new Map<string, number>();
  /** Steady messages received in order. */
  delivered = 0;
  /** Other messages (churn, random) received. */
  others = 0;
  /** What went wrong (first few), and how many things did. */
  readonly problems: string[] = [];
  problemCount = 0;
  /** Latencies (ms, send to receive) by keyboard, sampled. */
  readonly latencies = new Map<string, number[]>();
  /** Set if the server ended the connection before the soak did. */
  ended: string | undefined;
  #target: Target;
  #conn: Deno.Conn | undefined;
  #closing = false;
  #loop: Promise<void> | undefined;

  constructor(label: string, target: Target, littleEndian = false) {
    this.label = label;
    this.#target = target;
    this.littleEndian = littleEndian;
  }

  async connect(): Promise<void> {
    this.#conn = await dial(this.#target);
    let written = 0;
    const code = encodeIdentify("display", this.littleEndian);
    while (written < 4) written += await this.#conn.write(code.subarray(written));
    this.#loop = this.#run();
  }

  /** How many messages from keyboard `name` have arrived in order. */
  seen(name: string): number {
    return this.next.get(name) ?? 0;
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#conn) closeQuietly(this.#conn);
    await this.#loop;
  }

  #problem(text: string): void {
    this.problemCount++;
    if (this.problems.length < 10) this.problems.push(`${this.label}: ${text}`);
  }

  async #run(): Promise<void> {
    const decoder = new FrameDecoder({ littleEndian: this.littleEndian, maxFrame: 2 ** 31 - 1 });
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.#conn!.read(buffer);
        if (n === null) {
          this.ended = "the server closed the connection";
          return;
        }
        const now = Date.now();
        for (const message of decoder.push(buffer.subarray(0, n))) {
          if (!message.username.startsWith(STEADY_PREFIX)) {
            this.others++;
            continue;
          }
          const [seqText, sentText, sizeText] = message.text.split(":", 3);
          const seq = Number(seqText);
          const expected = this.seen(message.username);
          if (seq !== expected) {
            this.#problem(
              `${message.username}: expected message ${expected}, got ${seqText} (${
                seq > expected ? `${seq - expected} lost` : "duplicate or reordered"
              })`,
            );
          }
          if (message.text !== steadyText(seq, Number(sentText), Number(sizeText))) {
            this.#problem(`${message.username} message ${seqText}: text corrupted`);
          }
          if (JSON.stringify(message.time) !== JSON.stringify(TIME)) {
            this.#problem(`${message.username} message ${seqText}: timestamp corrupted`);
          }
          this.next.set(message.username, seq + 1);
          this.delivered++;
          if ((seq & 15) === 0) {
            const sample = this.latencies.get(message.username) ?? [];
            sample.push(now - Number(sentText));
            this.latencies.set(message.username, sample);
          }
        }
      }
    } catch (error) {
      if (!this.#closing) this.ended = `${error}`;
    }
  }
}
