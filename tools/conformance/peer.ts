/**
 * One end of a connection as the checker holds it: every read waits under a deadline and
 * leaves what it did not consume in place, so a check can time out half-way through a frame
 * and still say exactly which bytes it had. Reading only starts on the first read, so a peer
 * that should not read (the "slow display") simply never asks.
 *
 * @module
 */

import { before, remaining } from "./deadline.ts";

/** Why a read gave up. */
export type ReadFailureReason = "timeout" | "eof" | "error" | "malformed";

/** A read that could not complete; `partial` holds the unread bytes that did arrive. */
export class ReadFailure extends Error {
  readonly reason: ReadFailureReason;
  readonly partial: Uint8Array;

  constructor(reason: ReadFailureReason, partial: Uint8Array, message: string) {
    super(message);
    this.name = "ReadFailure";
    this.reason = reason;
    this.partial = partial;
  }
}

/** Options for {@linkcode Peer.readFrame}. */
export interface ReadFrameOptions {
  /** Largest overall_length taken as a frame; larger is reported as malformed. */
  maxFrame?: number;
}

const CHUNK = 64 * 1024;

/** A connection with a buffered, deadline-bounded reader and a byte order for frames. */
export class Peer {
  /** Names the peer in messages: "display 2", "the keyboard". */
  readonly label: string;
  /** Byte order of the frames this peer reads and writes. */
  readonly littleEndian: boolean;
  #conn: Deno.Conn;
  #buffer = new Uint8Array(CHUNK);
  #start = 0;
  #end = 0;
  #state: "open" | "eof" | "error" | "closed" = "open";
  #error: unknown;
  #pumping = false;
  #paused = false;
  #resume: (() => void) | undefined;
  #waiters: (() => void)[] = [];
  #received = 0;

  constructor(conn: Deno.Conn, label: string, littleEndian = false) {
    this.#conn = conn;
    this.label = label;
    this.littleEndian = littleEndian;
  }

  /** Bytes received so far, consumed or not. */
  get received(): number {
    return this.#received;
  }

  /** "open" until the other side closes ("eof"), the connection fails, or we close it. */
  get state(): "open" | "eof" | "error" | "closed" {
    return this.#state;
  }

  /** The error that ended reading, when `state` is "error". */
  get error(): unknown {
    return this.#error;
  }

  /** A copy of the bytes received but not yet consumed. */
  unread(): Uint8Array {
    return this.#buffer.slice(this.#start, this.#end);
  }

  /** Writes every byte; rejects if the connection fails. */
  async write(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      written += await this.#conn.write(bytes.subarray(written));
    }
  }

  /** Starts reading into the buffer without waiting for anything, e.g. to count bytes. */
  startReading(): void {
    this.#startPump();
  }

  /** Stops reading from the socket (after any read in flight), so its buffers fill up. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads exactly `n` bytes, or throws {@linkcode ReadFailure}. */
  async readExact(n: number, deadline: number): Promise<Uint8Array> {
    await this.#await(n, deadline);
    return this.#take(n);
  }

  /**
   * Reads one whole frame (overall_length included) in this peer's byte order. A negative or
   * too large overall_length throws a "malformed" {@linkcode ReadFailure}; nothing is consumed
   * until the whole frame is there.
   */
  async readFrame(deadline: number, options: ReadFrameOptions = {}): Promise<Uint8Array> {
    await this.#await(4, deadline);
    const head = new DataView(this.#buffer.buffer, this.#start, 4);
    const overall = head.getInt32(0, this.littleEndian);
    const max = options.maxFrame ?? 16 * 1024 * 1024;
    if (overall < 0 || overall > max) {
      throw new ReadFailure(
        "malformed",
        this.unread(),
        `${this.label} received an impossible overall_length ${overall}`,
      );
    }
    await this.#await(4 + overall, deadline);
    return this.#take(4 + overall);
  }

  /** Waits until the other side closes or the connection fails; false on time-out. */
  async closedBy(deadline: number): Promise<boolean> {
    this.#startPump();
    while (this.#state === "open") {
      if (remaining(deadline) === 0) return false;
      if ((await before(this.#changed(), deadline)).timedOut) return false;
    }
    return true;
  }

  /** Closes the connection; pending reads and writes fail. Safe to call twice. */
  close(): void {
    if (this.#state !== "closed") {
      this.#state = "closed";
      try {
        this.#conn.close();
      } catch {
        // Already closed by the runtime.
      }
    }
    this.#resume?.();
    this.#notify();
  }

  async #await(n: number, deadline: number): Promise<void> {
    this.#startPump();
    while (this.#end - this.#start < n) {
      if (this.#state !== "open") {
        const reason = this.#state === "error" ? "error" : "eof";
        const why = this.#state === "error"
          ? `the connection failed (${describe(this.#error)})`
          : this.#state === "closed"
          ? "the connection was closed"
          : "the other side closed the connection";
        throw new ReadFailure(reason, this.unread(), `${this.label}: ${why}`);
      }
      if (remaining(deadline) === 0 || (await before(this.#changed(), deadline)).timedOut) {
        throw new ReadFailure("timeout", this.unread(), `${this.label}: no answer in time`);
      }
    }
  }

  #take(n: number): Uint8Array {
    const bytes = this.#buffer.slice(this.#start, this.#start + n);
    this.#start += n;
    return bytes;
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const used = this.#end - this.#start;
      if (used + chunk.length <= this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array((used + chunk.length) * 2);
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#start = 0;
      this.#end = used;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
    this.#received += chunk.length;
  }

  #startPump(): void {
    if (this.#pumping || this.#state !== "open") return;
    this.#pumping = true;
    this.#pump();
  }

  async #pump(): Promise<void> {
    const chunk = new Uint8Array(CHUNK);
    try {
      while (this.#state === "open") {
        if (this.#paused) await new Promise<void>((resolve) => this.#resume = resolve);
        if (this.#state !== "open") break;
        const n = await this.#conn.read(chunk);
        if (n === null) {
          if (this.#state === "open") this.#state = "eof";
          break;
        }
        this.#append(chunk.subarray(0, n));
        this.#notify();
      }
    } catch (error) {
      if (this.#state === "open") {
        this.#state = "error";
        this.#error = error;
      }
    }
    this.#notify();
  }
}

/** A short description of an I/O error for a report line. */
export function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset by peer";
  if (error instanceof Deno.errors.BrokenPipe) return "broken pipe";
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.UnexpectedEof) return "unexpected end of stream";
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\(os error \d+\)$/, "");
}
