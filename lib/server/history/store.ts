/**
 * What every history store offers the bus (lib/server/history/history_bus.ts): append the
 * runs of one turn of the event loop, and hand a new display its replay. The in-memory ring
 * (ring.ts) and the SQLite store (sqlite_store.ts) implement it; a cluster store can be a
 * third, whose append returns a promise the bus waits on before delivering.
 *
 * @module
 */

/** A run of complete, validated frames as a keyboard sent it, in its byte order. */
export interface HistoryRun {
  frames: Uint8Array;
  littleEndian: boolean;
}

/** A history store: the last messages relayed, in the one global order. */
export interface HistoryStore {
  /**
   * Keeps `runs`, in order, received at `now` (ms since the epoch). A durable store has
   * committed them when it returns (or when its promise resolves): the bus delivers them
   * only then. Throws (or rejects) if they could not be kept; they are delivered anyway.
   */
  append(runs: readonly HistoryRun[], now: number): void | Promise<void>;
  /**
   * The replay for a display that joins now: the last messages kept, oldest first, joined in
   * `littleEndian` order, each frame byte for byte as relayed. Empty when there are none.
   */
  replay(littleEndian: boolean, now: number): Uint8Array;
  /** Stops background work and releases the store; appends after it are ignored. */
  close(): void;
}
