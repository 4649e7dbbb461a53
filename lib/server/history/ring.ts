/**
 * The in-memory history: the last N frames relayed, as a ring, and the replay joined once
 * per byte order until the next append (displays that join together share one buffer).
 *
 * @module
 */

import { concatBytes } from "../../protocol/bytes.ts";
import { LENGTH_FIELD_SIZE, swapFrameByteOrder } from "../../protocol/frame.ts";
import type { HistoryRun, HistoryStore } from "./store.ts";

/**
 * One kept frame: a view into the run it came in (runs are never reused: the fan-out shares
 * them too). Frames leave in order, so at most the oldest run is held for part of it.
 */
interface Kept {
  frame: Uint8Array;
  littleEndian: boolean;
  receivedMs: number;
}

/** Options for {@linkcode RingStore}. */
export interface RingOptions {
  /** Frames older than this (ms) are not replayed; 0 keeps them however old. */
  maxAgeMs?: number;
}

/** The byte offsets of each frame in a run of complete, validated frames. */
export function* frameSpans(
  frames: Uint8Array,
  littleEndian: boolean,
): Generator<[start: number, end: number]> {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  for (let at = 0; at < frames.length;) {
    const end = at + LENGTH_FIELD_SIZE + view.getInt32(at, littleEndian);
    yield [at, end];
    at = end;
  }
}

/** The last `capacity` frames relayed, in memory. */
export class RingStore implements HistoryStore {
  readonly capacity: number;
  #kept: Kept[] = [];
  /** Index of the oldest kept frame in #kept (the ring's head; compacted now and then). */
  #head = 0;
  #maxAgeMs: number;
  #joined: [big: Uint8Array | undefined, little: Uint8Array | undefined] = [undefined, undefined];
  #joinedAt = 0;

  constructor(capacity: number, options: RingOptions = {}) {
    this.capacity = capacity;
    this.#maxAgeMs = options.maxAgeMs ?? 0;
  }

  /** How many frames are kept. */
  get size(): number {
    return this.#kept.length - this.#head;
  }

  append(runs: readonly HistoryRun[], now: number): void {
    if (this.capacity === 0) return;
    for (const { frames, littleEndian } of runs) {
      for (const [start, end] of frameSpans(frames, littleEndian)) {
        this.#kept.push({ frame: frames.subarray(start, end), littleEndian, receivedMs: now });
      }
    }
    this.#trim(this.size - this.capacity);
    this.#joined = [undefined, undefined];
  }

  /** Adds frames kept elsewhere (the database, on start), oldest first. */
  restore(frame: Uint8Array, littleEndian: boolean, receivedMs: number): void {
    this.#kept.push({ frame, littleEndian, receivedMs });
    this.#trim(this.size - this.capacity);
    this.#joined = [undefined, undefined];
  }

  replay(littleEndian: boolean, now: number): Uint8Array {
    if (this.#maxAgeMs > 0) {
      let old = this.#head;
      while (old < this.#kept.length && this.#kept[old].receivedMs < now - this.#maxAgeMs) old++;
      if (old > this.#head) {
        this.#trim(old - this.#head);
        this.#joined = [undefined, undefined];
      }
      // A cached replay may hold frames that have aged out since.
      if (now - this.#joinedAt > 1000) this.#joined = [undefined, undefined];
    }
    const slot = littleEndian ? 1 : 0;
    const cached = this.#joined[slot];
    if (cached) return cached;
    const parts: Uint8Array[] = [];
    for (let i = this.#head; i < this.#kept.length; i++) {
      const kept = this.#kept[i];
      parts.push(
        kept.littleEndian === littleEndian
          ? kept.frame
          : swapFrameByteOrder(kept.frame, kept.littleEndian),
      );
    }
    const joined = concatBytes(parts);
    this.#joined[slot] = joined;
    this.#joinedAt = now;
    return joined;
  }

  close(): void {
    this.#kept = [];
    this.#head = 0;
    this.#joined = [undefined, undefined];
  }

  /** Forgets the oldest `count` frames; compacts the array once the dead part is large. */
  #trim(count: number): void {
    if (count <= 0) return;
    this.#head = Math.min(this.#head + count, this.#kept.length);
    if (this.#head > 1024 && this.#head * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#head);
      this.#head = 0;
    }
  }
}
