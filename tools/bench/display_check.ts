/**
 * What the load generator's displays do with what they receive: cut the stream into frames of
 * the run's one shape, check each byte for byte against what its keyboard sent (header, stamp,
 * filler), check the order, and record every message's latency. Every frame of a run has one
 * length and one header, so a frame is valid exactly when its header equals the run's: stricter
 * than validation, and about twice as fast as lib/protocol/frame_decoder.ts.
 *
 * @module
 */

import { encodeFrameBytes, type Timestamp } from "../../lib/protocol/frame.ts";
import { Histogram } from "./histogram.ts";
import {
  fillerOf,
  KIND_MESSAGE,
  KIND_PROBE,
  STAMP_SIZE,
  StampReader,
  writeStamp,
} from "./stamp.ts";

const USERNAME = new TextEncoder().encode("bench");
/** Every filler byte is checked up to this text size, then every 16th byte and the last. */
const FULL_CHECK_BYTES = 256;

/** Microseconds since this process started, on the monotonic clock. */
export function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

export function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.InvalidData; // a TLS peer that vanished mid-record
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The fixed shape of every frame of a run, and where its text starts. */
/** What a display reports to, and reads from, the run it is part of (load.ts's Run). */
export interface DisplayRun {
  readonly shape: FrameShape;
  /** Every message's latency, microseconds. */
  readonly latency: Histogram;
  /** Frames delivered to every display, in all. */
  delivered: number;
  /** Displays that have received a probe from every keyboard. */
  registered: number;
  /** An error of the generator itself, which invalidates the run. */
  failure: unknown;
  /** Called whenever a display has read something. */
  onData(): void;
}

export class FrameShape {
  readonly textSize: number;
  readonly template: Uint8Array;
  readonly textAt: number;
  /** The header (everything before the text) as big-endian 32-bit words, and its tail. */
  readonly #words: Int32Array;

  constructor(textSize: number, time: Timestamp) {
    this.textSize = textSize;
    this.template = encodeFrameBytes(USERNAME, time, new Uint8Array(textSize));
    this.textAt = this.template.length - textSize;
    const view = new DataView(this.template.buffer);
    this.#words = Int32Array.from({ length: this.textAt >> 2 }, (_, i) => view.getInt32(i * 4));
  }

  /** True if the frame at `at` has this run's header, byte for byte. */
  headerMatches(view: DataView, bytes: Uint8Array, at: number): boolean {
    const words = this.#words;
    for (let i = 0; i < words.length; i++) {
      if (view.getInt32(at + i * 4) !== words[i]) return false;
    }
    for (let i = words.length * 4; i < this.textAt; i++) {
      if (bytes[at + i] !== this.template[i]) return false;
    }
    return true;
  }

  get length(): number {
    return this.template.length;
  }

  /** Writes a frame of `kind` for keyboard `kb`, sequence `seq`, at `at` of `bytes`. */
  write(bytes: Uint8Array, at: number, kind: number, kb: number, seq: number): void {
    bytes.set(this.template, at);
    const text = at + this.textAt;
    writeStamp(bytes, text, kind, kb, seq, nowUs());
    bytes.fill(fillerOf(seq), text + STAMP_SIZE, text + this.textSize);
  }
}

/** One display connection: reads, decodes and checks everything the server sends it. */
export class Display {
  readonly conn: Deno.Conn;
  /** Next sequence number expected from each keyboard. */
  readonly next: Float64Array;
  readonly probed: Uint8Array;
  probes = 0;
  received = 0;
  corrupt = 0;
  outOfOrder = 0;
  lastAt = 0;
  /** The start of a frame split across reads, and how much of it is here. */
  #carry: Uint8Array | undefined;
  #carried = 0;
  #stamp = new StampReader();
  #broken = false;

  constructor(conn: Deno.Conn, keyboards: number) {
    this.conn = conn;
    this.next = new Float64Array(keyboards);
    this.probed = new Uint8Array(keyboards);
  }

  /** Reads until the connection ends; `onData` runs after every read. */
  async run(run: DisplayRun, bufferSize: number): Promise<void> {
    const buffer = new Uint8Array(bufferSize);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) return;
        if (!this.#broken) this.#take(run, buffer.subarray(0, n));
        run.onData();
      }
    } catch (error) {
      // Closed at the end of the run, or by the server: what was received is what counts.
      // Anything else is a bug here, and must not pass for a server that hung up.
      if (!isConnectionError(error)) run.failure ??= error;
    }
  }

  /** Cuts `chunk` into frames, carrying a split one over to the next read, and checks them. */
  #take(run: DisplayRun, chunk: Uint8Array): void {
    const length = run.shape.length;
    const carry = this.#carry ??= new Uint8Array(length);
    let at = 0;
    if (this.#carried > 0) {
      const need = length - this.#carried;
      if (chunk.length < need) {
        carry.set(chunk, this.#carried);
        this.#carried += chunk.length;
        return;
      }
      carry.set(chunk.subarray(0, need), this.#carried);
      this.#carried = 0;
      this.#check(run, carry, 0, length);
      at = need;
    }
    const whole = at + Math.floor((chunk.length - at) / length) * length;
    if (whole > at && !this.#broken) this.#check(run, chunk, at, whole);
    if (whole < chunk.length) {
      carry.set(chunk.subarray(whole), 0);
      this.#carried = chunk.length - whole;
    }
  }

  /** Checks the whole frames in `from`..`to` of `frames`. */
  #check(run: DisplayRun, frames: Uint8Array, from: number, to: number): void {
    const { shape, latency } = run;
    const length = shape.length;
    const textAt = shape.textAt;
    const textSize = shape.textSize;
    const next = this.next;
    const keyboards = next.length;
    const stamp = this.#stamp;
    const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    const time = nowUs();
    let received = 0;
    for (let at = from; at < to; at += length) {
      if (
        !shape.headerMatches(view, frames, at) || !stamp.read(frames, at + textAt) ||
        stamp.kb >= keyboards
      ) {
        this.#breaks();
        break;
      }
      const kb = stamp.kb;
      const seq = stamp.seq;
      if (stamp.kind === KIND_PROBE) {
        if (this.probed[kb] === 0) {
          this.probed[kb] = 1;
          if (++this.probes === keyboards) run.registered++;
        }
        continue;
      }
      if (
        stamp.kind !== KIND_MESSAGE || !checkFiller(view, frames, at + textAt, textSize, seq)
      ) {
        this.#breaks();
        break;
      }
      if (seq < next[kb]) {
        this.outOfOrder++;
        continue;
      }
      next[kb] = seq + 1;
      received++;
      latency.record(time - stamp.time);
    }
    this.received += received;
    run.delivered += received;
    this.lastAt = time;
  }

  /** After one bad frame the stream cannot be trusted: count it and ignore the rest. */
  #breaks(): void {
    this.corrupt++;
    this.#broken = true;
  }
}

export function checkFiller(
  view: DataView,
  frames: Uint8Array,
  text: number,
  size: number,
  seq: number,
): boolean {
  const filler = fillerOf(seq);
  if (size > FULL_CHECK_BYTES) {
    for (let i = STAMP_SIZE; i < size; i += 16) {
      if (frames[text + i] !== filler) return false;
    }
    return frames[text + size - 1] === filler;
  }
  // Four bytes at a time (a filler letter is below 0x80, so the word is a positive int32).
  const word = filler * 0x01010101;
  let i = STAMP_SIZE;
  for (; i + 4 <= size; i += 4) {
    if (view.getInt32(text + i) !== word) return false;
  }
  for (; i < size; i++) {
    if (frames[text + i] !== filler) return false;
  }
  return true;
}
