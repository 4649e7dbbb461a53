/**
 * The in-process bus (lib/server/bus.ts): the display registry and the fan-out. Every run of frames
 * a keyboard publishes is enqueued, in one global order, on every display's own bounded
 * queue. Nothing on this path awaits a display; each display has its own writer, and this
 * file alone decides when a display is too slow to keep, and when keyboards must wait.
 *
 * @module
 */

import type { Bus } from "./bus.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { swapFrameByteOrder } from "../protocol/frame.ts";
import { describeIoError, TlsError } from "../net/io_errors.ts";

/** Limits on how far a display may fall behind before it is disconnected. */
export interface BacklogLimits {
  /**
   * Unsent bytes above which a display is dropped: at once if its peer stopped reading, else
   * when the pause it causes runs out (see {@linkcode Fanout}).
   */
  maxBacklog: number;
  /** Unsent bytes above which a display is dropped if it stays there `softSeconds`. */
  softBacklog: number;
  /** How long a display may stay above `softBacklog`. */
  softSeconds: number;
}

/**
 * The least of the mark above which a display counts as behind. The mark is half the soft
 * limit (128 KiB by default), so that a display at the typical backlog never stays above the
 * soft limit. When more than half of the displays are behind, the server itself is the
 * bottleneck, and keyboards are paused (see {@linkcode Fanout.ready}). The higher the mark,
 * the larger and fewer the writes while it holds, and the more memory it takes.
 */
const MIN_BEHIND_MARK = 4 * 1024;

/**
 * Longest pause of the keyboards at a stretch. When the server is behind, the displays catch
 * up in milliseconds; a majority that stays behind this long is slow or stalled itself (an
 * attacker's displays), and the usual per-display limits then apply while the keyboards read.
 */
export const MAX_PAUSE_MS = 2000;
/** A display whose write has waited this long has a peer that stopped reading. */
const STALL_MS = 500;

/**
 * Most bytes of queued runs joined into one write. Joining saves writes (a TLS write costs per
 * call), and the copy is the display's own memory: bounded, so that a thousand displays behind
 * at once hold at most 64 MiB of copies.
 */
const JOIN_LIMIT = 64 * 1024;

/** The part of a connection a display writer needs. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
  /**
   * Writes all of the chunks, in order, without joining them (a native socket's writev),
   * resolving with their total length. Where a connection has it, a display's queued runs go
   * out without a copy of its own (see DisplayQueue's #flush).
   */
  readonly writev?: (chunks: readonly Uint8Array[]) => Promise<number>;
}

/** Called once when a display must go, with the reason for the log line. */
export type DropHandler = (reason: string) => void;

/** Where a queue reports the bytes it holds (lib/server/client_memory.ts). */
export interface Counter {
  change(bytes: number): void;
}

/** What a display queue tells its fan-out. */
interface QueueOwner {
  readonly memory: Counter | undefined;
  behindChanged(behind: boolean): void;
  overChanged(over: boolean): void;
}

/** One display's outgoing queue and writer. */
export class DisplayQueue {
  readonly littleEndian: boolean;
  #conn: Writable;
  #limits: BacklogLimits;
  #onDrop: DropHandler;
  #mark: number;
  #owner: QueueOwner | undefined;
  #queue: Uint8Array[] = [];
  /** Bytes of this display's own joined copy, counted in the client memory while it lives. */
  #own = 0;
  #backlog = 0;
  #behind = false;
  #over = false;
  #writing = false;
  /** When its last write completed, or the first one began. */
  #progressAt = 0;
  #dropped = false;
  /** When the backlog first passed the soft limit; 0 while under it. */
  #overSoftSince = 0;

  constructor(conn: Writable, littleEndian: boolean, limits: BacklogLimits, onDrop: DropHandler) {
    this.#conn = conn;
    this.littleEndian = littleEndian;
    this.#limits = limits;
    this.#onDrop = onDrop;
    this.#mark = Math.max(MIN_BEHIND_MARK, limits.softBacklog / 2);
  }

  /** Unsent bytes, queued or in a write that has not completed. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Whether the hard limit is passed: the fan-out decides whether that drops it. */
  get overLimit(): boolean {
    return this.#backlog > this.#limits.maxBacklog;
  }

  /**
   * Whether its peer has stopped taking bytes: a write has waited {@linkcode STALL_MS}. When
   * it is the server that is behind for it (encrypting, say), its writes complete, just late.
   */
  stalled(now: number): boolean {
    return this.#writing && now - this.#progressAt > STALL_MS;
  }

  /** Joins `owner`, which counts the displays that are behind or over the limit. */
  attach(owner: QueueOwner): void {
    this.#owner = owner;
    if (this.#behind) owner.behindChanged(true);
    if (this.#over) owner.overChanged(true);
  }

  /** Leaves the fan-out; a display no longer counted. */
  detach(): void {
    if (this.#behind) this.#owner?.behindChanged(false);
    if (this.#over) this.#owner?.overChanged(false);
    this.#owner = undefined;
  }

  /**
   * Bytes this display holds of its own, which dropping it would free: the joined copy it is
   * writing. Runs it shares with the other displays are not its own (see #flush).
   */
  get ownBytes(): number {
    return this.#own;
  }

  /** Queues a run for this display; never waits. */
  enqueue(run: Uint8Array): void {
    if (this.#dropped) return;
    this.#backlog += run.length;
    this.#queue.push(run);
    this.#updateBehind();
    if (!this.#writing) this.#flush();
  }

  /** Drops this display for passing the hard limit. */
  dropOverLimit(): void {
    this.#drop(
      `too slow: unsent backlog ${this.#backlog} bytes over the limit ${this.#limits.maxBacklog}`,
    );
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
    if (this.#dropped) return;
    this.#dropped = true;
    this.#queue = [];
    // Its copy goes as soon as the write on the closed connection fails: uncount it now, so
    // that a budget check dropping clients sees it go.
    this.#countOwn(0);
    this.detach();
  }

  #drop(reason: string): void {
    if (this.#dropped) return;
    this.discard();
    this.#onDrop(reason);
  }

  #updateBehind(): void {
    const behind = this.#backlog > this.#mark;
    if (behind !== this.#behind) {
      this.#behind = behind;
      this.#owner?.behindChanged(behind);
    }
    const over = this.overLimit;
    if (over !== this.#over) {
      this.#over = over;
      this.#owner?.overChanged(over);
    }
  }

  /**
   * The next write: the first queued run, with those after it up to {@linkcode JOIN_LIMIT}
   * bytes (one write for many small runs). Where the connection has `writev`, the runs go as
   * they are; else they are joined into a bounded copy of its own.
   */
  #takeChunk(): Uint8Array | Uint8Array[] {
    const queue = this.#queue;
    let count = 1;
    let size = queue[0].length;
    while (count < queue.length && size + queue[count].length <= JOIN_LIMIT) {
      size += queue[count++].length;
    }
    if (count === 1) return queue.shift()!;
    const taken = queue.splice(0, count);
    if (this.#conn.writev) return taken;
    this.#countOwn(size);
    return concatBytes(taken);
  }

  #countOwn(bytes: number): void {
    if (bytes === this.#own) return;
    this.#owner?.memory?.change(bytes - this.#own);
    this.#own = bytes;
  }

  /**
   * Writes everything queued, coalescing queued runs into one write each round. A single
   * run is written as it is, shared with the other displays; several are joined into a copy
   * of this display's own, counted in the client memory while it is written. The shared runs
   * are not counted: every display holds the same ones, within its backlog limits, so the
   * runs alive at once come to about the largest backlog, and dropping one display would
   * free none of them.
   */
  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      this.#progressAt = Date.now();
      while (this.#queue.length > 0 && !this.#dropped) {
        const chunk = this.#takeChunk();
        let length: number;
        if (Array.isArray(chunk)) {
          // Shared runs, written as they are (Writable.writev writes all of them).
          length = await this.#conn.writev!(chunk);
          this.#progressAt = Date.now();
        } else {
          length = chunk.length;
          try {
            let written = 0;
            while (written < length) {
              written += await this.#conn.write(chunk.subarray(written));
              this.#progressAt = Date.now();
            }
          } finally {
            this.#countOwn(0);
          }
        }
        this.#backlog -= length;
        this.#updateBehind();
      }
    } catch (error) {
      // A TLS error is the connection's, whichever of reading or writing met it first.
      const reason = error instanceof TlsError
        ? describeIoError(error)
        : `write failed: ${describeIoError(error)}`;
      if (!this.#dropped) this.#drop(reason);
    } finally {
      this.#writing = false;
    }
  }
}

/**
 * The registry of displays of one relay, and the fan-out over it. It also tells keyboards
 * when to stop reading: while most displays are behind, the server is writing slower than
 * keyboards send, and reading on would only pile up backlogs until every display is dropped.
 * Paused keyboards' bytes wait in their own sockets (TCP pushes back on them), as in a relay
 * that blocks on writes, and nothing is lost.
 */
export class Fanout implements Bus {
  readonly memory: Counter | undefined;
  #displays = new Set<DisplayQueue>();
  /** Runs published in this turn of the event loop, in order, not yet handed to displays. */
  #pending: { frames: Uint8Array; littleEndian: boolean }[] = [];
  /**
   * Displays subscribed while runs were pending: those runs were published before them, and
   * the bus's contract is "from the next run published" (a history replay relies on it).
   */
  #late: Set<DisplayQueue> | undefined;
  /** Displays whose backlog is above the mark. */
  #behind = 0;
  /** Displays over the hard limit, not yet dropped. */
  #over = 0;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** When most displays became behind; 0 while they are not. */
  #congestedSince = 0;
  #pauseTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters: (() => void)[] = [];
  #maxPauseMs: number;

  /**
   * `memory` counts the displays' own copies (lib/server/client_memory.ts); `maxPauseMs` is
   * the longest pause of the keyboards (default {@linkcode MAX_PAUSE_MS}).
   */
  constructor(memory?: Counter, maxPauseMs = MAX_PAUSE_MS) {
    this.memory = memory;
    this.#maxPauseMs = maxPauseMs;
  }

  get size(): number {
    return this.#displays.size;
  }

  subscribe(display: DisplayQueue): void {
    if (this.#displays.has(display)) return;
    this.#displays.add(display);
    if (this.#pending.length > 0) (this.#late ??= new Set()).add(display);
    display.attach(this);
    this.#updateCongestion();
  }

  unsubscribe(display: DisplayQueue): void {
    if (!this.#displays.delete(display)) return;
    display.detach();
    this.#updateCongestion();
  }

  /**
   * Whether keyboards should wait before reading more: most displays are behind, or one over
   * the hard limit is catching up (see #updateCongestion), and the pause has not run out.
   */
  get paused(): boolean {
    return this.#congestedSince !== 0 && Date.now() - this.#congestedSince < this.#maxPauseMs;
  }

  /**
   * Undefined when a keyboard may read on; else a promise that resolves when it may: once
   * most displays have caught up, or the longest pause after they fell behind.
   */
  ready(): Promise<void> | undefined {
    if (!this.paused) return undefined;
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** @internal Called by a display queue whose backlog crossed the mark. */
  behindChanged(behind: boolean): void {
    this.#behind += behind ? 1 : -1;
    this.#updateCongestion();
  }

  /** @internal Called by a display queue whose backlog crossed the hard limit. */
  overChanged(over: boolean): void {
    this.#over += over ? 1 : -1;
    this.#updateCongestion();
    // While keyboards wait for it, nothing is delivered: look again once it could be stalled.
    if (this.#over > 0 && !this.#closed) {
      this.#stallTimer ??= setTimeout(this.#recheck, STALL_MS + 10);
    }
  }

  #recheck = (): void => {
    this.#stallTimer = undefined;
    if (this.#over === 0 || this.#closed) return;
    this.#applyHardLimit(this.#displays, Date.now());
    if (this.#over > 0) this.#stallTimer = setTimeout(this.#recheck, STALL_MS + 10);
  };

  /**
   * Keyboards pause while most displays are behind, or while any display is over the hard
   * limit and not yet dropped: one whose peer still reads (not stalled) is behind because the
   * server is, and gets the pause to catch up in.
   */
  #updateCongestion(): void {
    const congested = this.#behind * 2 > this.#displays.size || this.#over > 0;
    if (congested === (this.#congestedSince !== 0) || this.#closed) return;
    if (congested) {
      this.#congestedSince = Date.now();
      this.#pauseTimer = setTimeout(this.#resume, this.#maxPauseMs);
    } else {
      this.#congestedSince = 0;
      this.#resume();
    }
  }

  #resume = (): void => {
    clearTimeout(this.#pauseTimer);
    this.#pauseTimer = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  };

  /**
   * Sends a run of complete frames, in `littleEndian` order, to every display. The runs
   * published in one turn of the event loop (several keyboards' reads often complete
   * together) are handed over together, in a microtask: joined once per byte order, never
   * once per display, so each display gets one write for all of them, and frames are
   * re-encoded at most once for the other byte order.
   */
  publish(frames: Uint8Array, littleEndian: boolean): void {
    if (this.#pending.length === 0) queueMicrotask(this.#deliver);
    this.#pending.push({ frames, littleEndian });
  }

  #deliver = (): void => {
    const runs = this.#pending;
    this.#pending = [];
    const late = this.#late;
    this.#late = undefined;
    let big: Uint8Array | undefined;
    let little: Uint8Array | undefined;
    for (const display of this.#displays) {
      if (late?.has(display)) continue;
      if (display.littleEndian) display.enqueue(little ??= joinRuns(runs, true));
      else display.enqueue(big ??= joinRuns(runs, false));
    }
    // The queues count themselves over the limit: the loop above does nothing more per display.
    if (this.#over > 0) this.#applyHardLimit(this.#displays, Date.now());
  };

  /**
   * Drops the displays over the hard limit whose peers stopped reading, and, once a pause has
   * run out, those still over it. Over the limit while its writes complete is the server's
   * doing, not the display's: the pause lets it catch up.
   */
  #applyHardLimit(displays: Iterable<DisplayQueue>, now: number): void {
    const paused = this.paused;
    for (const display of displays) {
      if (display.overLimit && (!paused || display.stalled(now))) display.dropOverLimit();
    }
  }

  /** Applies the soft backlog limit to every display, and the hard one (see #deliver). */
  checkLimits(now: number): void {
    for (const display of this.#displays) display.checkSoftLimit(now);
    if (this.#over > 0) this.#applyHardLimit(this.#displays, now);
  }

  /** Wakes every paused keyboard; the relay is closing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#congestedSince = 0;
    this.#resume();
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
