/**
 * The bus every message goes through: keyboards (and the relay's own random-message source)
 * publish runs of validated frames; displays subscribe. The in-process implementation is the
 * fan-out (lib/server/fanout.ts); message history, a web gateway and a cluster of servers sharing one
 * room plug in here as further publishers and subscribers, and the relay does not change.
 *
 * **One global order** means: every subscriber receives every run published while it is
 * subscribed, whole, in the same order, the same order for all; the frames of one run stay
 * together and in their order; runs from one publisher keep the order it published them in.
 * A subscriber that cannot keep that order (it fell too far behind) is dropped, never skipped
 * over.
 *
 * @module
 */

import type { DisplayQueue } from "./fanout.ts";

/** A bus: publish runs of frames, subscribe displays, and hear when to hold back. */
export interface Bus {
  /**
   * Publishes a run of complete, validated frames, encoded in `littleEndian` order; each
   * subscriber receives them in its own byte order. Never waits.
   */
  publish(frames: Uint8Array, littleEndian: boolean): void;
  /** Starts delivering to `display`, from the next run published. */
  subscribe(display: DisplayQueue): void;
  /** Stops delivering to `display`. */
  unsubscribe(display: DisplayQueue): void;
  /**
   * Undefined while publishers may go on; else a promise that resolves when they may
   * (back-pressure: the bus's subscribers are behind because the server is).
   */
  ready(): Promise<void> | undefined;
  /** Applies the subscribers' time-based limits; called about once a second. */
  checkLimits(now: number): void;
  /** Stops: wakes every publisher waiting on {@linkcode Bus.ready}. */
  close(): void;
}
