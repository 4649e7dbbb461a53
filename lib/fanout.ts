/**
 * The display registry and the fan-out: every complete frame a keyboard sends is enqueued,
 * in one global order, on every display's own bounded queue. Nothing on this path awaits a
 * display; each display has its own writer, and this file alone decides when a display is
 * too slow to keep.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import { swapFrameByteOrder } from "./frame.ts";

/** Limits on how far a display may fall behind before it is disconnected. */
export interface BacklogLimits {
  /** Unsent bytes above which a display is dropped at once. */
  maxBacklog: number;
  /** Unsent bytes above which a display is dropped if it stays there `softSeconds`. */
  softBacklog: number;
  /** How long a display may stay above `softBacklog`. */
  softSeconds: number;
}

/** The part of a connection a display writer needs. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
}

/** Called once when a display must go, with the reason for the log line. */
export type DropHandler = (reason: string) => void;

/** One display's outgoing queue and writer. */
export class DisplayQueue {
  readonly littleEndian: boolean;
  #conn: Writable;
  #limits: BacklogLimits;
  #onDrop: DropHandler;
  #queue: Uint8Array[] = [];
  #backlog = 0;
  #writing = false;
  #dropped = false;
  /** When the backlog first passed the soft limit; 0 while under it. */
  #overSoftSince = 0;

  constructor(conn: Writable, littleEndian: boolean, limits: BacklogLimits, onDrop: DropHandler) {
    this.#conn = conn;
    this.littleEndian = littleEndian;
    this.#limits = limits;
    this.#onDrop = onDrop;
  }

  /** Unsent bytes, queued or in a write that has not completed. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Queues frames for this display; never waits. Drops the display if it is too far behind. */
  enqueue(frames: Uint8Array): void {
    if (this.#dropped) return;
    this.#backlog += frames.length;
    if (this.#backlog > this.#limits.maxBacklog) {
      return this.#drop(
        `too slow: unsent backlog ${this.#backlog} bytes over the limit ${this.#limits.maxBacklog}`,
      );
    }
    this.#queue.push(frames);
    if (!this.#writing) this.#flush();
  }

  /** Drops this display if it has been over the soft limit for too long; called by a timer. */
  checkSoftLimit(now: number): void {
    if (this.#dropped) return;
    if (this.#backlog <= this.#limits.softBacklog) {
      this.#overSoftSince = 0;
    } else if (this.#overSoftSince === 0) {
      this.#overSoftSince = now;
    } else if (now - this.#overSoftSince >= this.#limits.softSeconds * 1000) {
      this.#drop(
        `too slow: unsent backlog above ${this.#limits.softBacklog} bytes for ${this.#limits.softSeconds} s`,
      );
    }
  }

  /** Stops writing; what is queued is discarded. */
  discard(): void {
    this.#dropped = true;
    this.#queue = [];
  }

  #drop(reason: string): void {
    this.discard();
    this.#onDrop(reason);
  }

  /** Writes everything queued, coalescing queued runs into one write each round. */
  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#dropped) {
        const chunk = concatBytes(this.#queue);
        this.#queue = [];
        let written = 0;
        while (written < chunk.length) {
          written += await this.#conn.write(chunk.subarray(written));
        }
        this.#backlog -= chunk.length;
      }
    } catch (error) {
      if (!this.#dropped) this.#drop(`write failed: ${describeIoError(error)}`);
    } finally {
      this.#writing = false;
    }
  }
}

/** The registry of displays of one relay, and the fan-out over it. */
export class Fanout {
  #displays = new Set<DisplayQueue>();
  /** Runs broadcast in this turn of the event loop, in order, not yet handed to displays. */
  #pending: { frames: Uint8Array; littleEndian: boolean }[] = [];

  get size(): number {
    return this.#displays.size;
  }

  add(display: DisplayQueue): void {
    this.#displays.add(display);
  }

  delete(display: DisplayQueue): void {
    this.#displays.delete(display);
  }

  /**
   * Sends a run of complete frames, in `littleEndian` order, to every display. The runs
   * broadcast in one turn of the event loop (several keyboards' reads often complete
   * together) are handed over together, in a microtask: joined once per byte order, never
   * once per display, so each display gets one write for all of them, and frames are
   * re-encoded at most once for the other byte order.
   */
  broadcast(frames: Uint8Array, littleEndian: boolean): void {
    if (this.#pending.length === 0) queueMicrotask(this.#deliver);
    this.#pending.push({ frames, littleEndian });
  }

  #deliver = (): void => {
    const runs = this.#pending;
    this.#pending = [];
    let big: Uint8Array | undefined;
    let little: Uint8Array | undefined;
    for (const display of this.#displays) {
      if (display.littleEndian) display.enqueue(little ??= joinRuns(runs, true));
      else display.enqueue(big ??= joinRuns(runs, false));
    }
  };

  /** Applies the soft backlog limit to every display. */
  checkSoftLimits(now: number): void {
    for (const display of this.#displays) display.checkSoftLimit(now);
  }
}

/** Runs in order as one run in the given byte order, swapping those sent in the other. */
function joinRuns(
  runs: readonly { frames: Uint8Array; littleEndian: boolean }[],
  littleEndian: boolean,
): Uint8Array {
  return concatBytes(
    runs.map((run) =>
      run.littleEndian === littleEndian
        ? run.frames
        : swapFrameByteOrder(run.frames, run.littleEndian)
    ),
  );
}

/** A short reason for an I/O failure, for log lines. */
export function describeIoError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset by peer";
  if (error instanceof Deno.errors.BrokenPipe) return "connection closed by peer";
  if (error instanceof Deno.errors.BadResource) return "connection closed";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  // rustls's wording of this one ends in a URL to its manual; a log line wants the fact.
  if (error instanceof Deno.errors.UnexpectedEof) {
    return "closed by peer without a TLS close_notify";
  }
  return error instanceof Error ? error.message : String(error);
}
