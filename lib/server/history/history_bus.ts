/**
 * History as one more subscriber of the bus, and the source of a new display's replay: a
 * {@linkcode Bus} in front of another (the fan-out), which keeps every run in a
 * {@linkcode HistoryStore} before handing it on. The fan-out learns nothing of it; a relay
 * without history uses the fan-out directly, so history off costs nothing.
 *
 * **Kept before delivered.** The runs of one turn of the event loop are appended together
 * (one transaction), and only then published to the fan-out: no display can receive a
 * message the store does not have.
 *
 * **No gap, no duplicate.** Outside of `#commit`, the store holds exactly the runs published
 * to the fan-out. A joining display is sent the store's replay and subscribed in the same
 * synchronous step; the fan-out delivers to it only runs published after that (the bus's
 * contract), which are the ones the replay does not have. While an asynchronous store
 * commits, joining displays wait for it, so they see the same boundary.
 *
 * **Bounded.** The replay goes into the display's own queue like any run: the backlog rules
 * of live traffic (lib/server/fanout.ts) apply to it.
 *
 * @module
 */

import type { Bus } from "../bus.ts";
import type { DisplayQueue } from "../fanout.ts";
import type { Logger } from "../../cli/log.ts";
import type { HistoryRun, HistoryStore } from "./store.ts";

/** A bus that keeps history in front of another bus. */
export class HistoryBus implements Bus {
  #inner: Bus;
  #store: HistoryStore;
  #log: Logger;
  #pending: HistoryRun[] = [];
  /** Whether an asynchronous append is in flight (delivery and joins wait for it). */
  #busy = false;
  #joining = new Set<DisplayQueue>();
  /** Messages relayed without being kept, in the current episode of failures. */
  #unkept = 0;

  constructor(inner: Bus, store: HistoryStore, log: Logger) {
    this.#inner = inner;
    this.#store = store;
    this.#log = log;
  }

  publish(frames: Uint8Array, littleEndian: boolean): void {
    if (this.#pending.length === 0 && !this.#busy) queueMicrotask(this.#commit);
    this.#pending.push({ frames, littleEndian });
  }

  #commit = (): void => {
    const runs = this.#pending;
    this.#pending = [];
    if (runs.length === 0) return;
    let done: void | Promise<void>;
    try {
      done = this.#store.append(runs, Date.now());
    } catch (error) {
      this.#failed(error, runs);
      return this.#hand(runs);
    }
    if (!done) {
      if (this.#unkept > 0) this.#recovered();
      return this.#hand(runs);
    }
    this.#busy = true;
    done.then(() => this.#unkept > 0 && this.#recovered(), (error) => this.#failed(error, runs))
      .finally(() => {
        this.#busy = false;
        this.#hand(runs);
        for (const display of this.#joining) this.#join(display);
        this.#joining.clear();
        if (this.#pending.length > 0) this.#commit();
      });
  };

  #hand(runs: readonly HistoryRun[]): void {
    for (const run of runs) this.#inner.publish(run.frames, run.littleEndian);
  }

  /** Relaying goes on without history: said once per episode, with the count at its end. */
  #failed(error: unknown, runs: readonly HistoryRun[]): void {
    if (this.#unkept === 0) {
      const sentence = error instanceof Error ? error.message : String(error);
      this.#log.error(`history: ${sentence} Relaying goes on; these messages are not kept.`);
    }
    this.#unkept += runs.reduce((n, run) => n + countFrames(run), 0);
  }

  #recovered(): void {
    this.#log.info(`history: keeping messages again (${this.#unkept} relayed meanwhile not kept)`);
    this.#unkept = 0;
  }

  subscribe(display: DisplayQueue): void {
    if (this.#busy) this.#joining.add(display);
    else this.#join(display);
  }

  #join(display: DisplayQueue): void {
    const replay = this.#store.replay(display.littleEndian, Date.now());
    if (replay.length > 0) display.enqueue(replay);
    this.#inner.subscribe(display);
  }

  unsubscribe(display: DisplayQueue): void {
    this.#joining.delete(display);
    this.#inner.unsubscribe(display);
  }

  ready(): Promise<void> | undefined {
    return this.#inner.ready();
  }

  checkLimits(now: number): void {
    this.#inner.checkLimits(now);
  }

  /** Closes the bus in front of which it stands; the store's owner closes the store. */
  close(): void {
    this.#inner.close();
  }
}

/** How many frames a run holds. */
function countFrames(run: HistoryRun): number {
  const view = new DataView(run.frames.buffer, run.frames.byteOffset, run.frames.byteLength);
  let n = 0;
  for (let at = 0; at < run.frames.length; n++) at += 4 + view.getInt32(at, run.littleEndian);
  return n;
}
