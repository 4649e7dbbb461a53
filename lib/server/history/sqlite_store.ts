/**
 * The persistent history: every message relayed, in an SQLite database (node:sqlite, built
 * into Deno) in WAL mode, committed once per turn of the event loop before the bus delivers
 * it. The replay comes from a ring (ring.ts) filled from the database on open, so a display
 * joining costs no query. Pruning, the full-text index and WAL checkpoints run in the
 * background in small steps, so that none stalls relaying for long.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { concatBytes } from "../../protocol/bytes.ts";
import { dirname } from "node:path";
import type { Logger } from "../../cli/log.ts";
import { RingStore } from "./ring.ts";
import {
  explainHistoryError,
  frameParts,
  framesOf,
  hasIndex,
  HistoryDbError,
  migrate,
} from "./schema.ts";
import type { HistoryRun, HistoryStore } from "./store.ts";

/** How the database's commits reach the disk (PRAGMA synchronous). */
export type HistorySync = "normal" | "full";

/** Options for {@linkcode SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** How many messages a joining display is replayed. */
  replayCount: number;
  /** Rows older than this (ms) are pruned; 0 keeps them however old. */
  maxAgeMs?: number;
  /** Rows beyond the newest this many are pruned; 0 keeps them all. */
  maxRows?: number;
  /**
   * "normal" (the default, as ergo and most WAL users choose): a commit survives the
   * process being killed, and the database stays consistent, but the last commits before a
   * power loss may be lost. "full": each commit is also on the disk (one fsync per commit).
   */
  sync?: HistorySync;
  /** Where background errors are said, once per episode. */
  log: Logger;
  /** Milliseconds between background steps while nothing is behind (default 200). */
  stepMs?: number;
}

/** Runs pruned, or messages indexed, per background step: a few milliseconds of work. */
const STEP_ROWS = 500;
/** Milliseconds without an append after which background work catches up at full speed. */
const IDLE_MS = 250;
/** Rows indexed per background step while messages flow. */
const BUSY_INDEX_ROWS = 100;
/** Commits after which a checkpoint runs even while messages flow (bounds the WAL). */
const CHECKPOINT_COMMITS = 2000;

/** The SQLite history store. */
export class SqliteStore implements HistoryStore {
  readonly path: string;
  readonly indexed: boolean;
  #db: DatabaseSync;
  #lock: Deno.FsFile;
  #ring: RingStore;
  #options: Required<Omit<SqliteStoreOptions, "log">>;
  #log: Logger;
  #begin: StatementSync;
  #commit: StatementSync;
  #insert: StatementSync;
  /** The number the next message kept gets (its place in the one global order). */
  #next: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Commits since the last checkpoint. */
  #unchecked = 0;
  /** When the last append was; background steps hurry only once appends have paused. */
  #appendedAt = 0;
  #troubled = false;
  #closed = false;

  private constructor(
    path: string,
    db: DatabaseSync,
    lock: Deno.FsFile,
    options: SqliteStoreOptions,
  ) {
    this.path = path;
    this.#db = db;
    this.#lock = lock;
    this.#log = options.log;
    this.#options = {
      replayCount: options.replayCount,
      maxAgeMs: options.maxAgeMs ?? 0,
      maxRows: options.maxRows ?? 0,
      sync: options.sync ?? "normal",
      stepMs: options.stepMs ?? 200,
    };
    this.indexed = hasIndex(db);
    this.#ring = new RingStore(options.replayCount, { maxAgeMs: this.#options.maxAgeMs });
    this.#begin = db.prepare("BEGIN");
    this.#commit = db.prepare("COMMIT");
    this.#insert = db.prepare(
      "INSERT INTO runs (first, count, received_ms, little_endian, frames) VALUES (?, ?, ?, ?, ?)",
    );
    const last = db.prepare("SELECT first, count FROM runs ORDER BY first DESC LIMIT 1").get();
    // After pruning emptied the table, numbers go on past the last pruned (#prune moves
    // indexed_up_to past it), not from 1 again: the index would take new ones for indexed.
    const indexedUpTo = Number(
      db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value ?? 0,
    );
    this.#next = Math.max(last ? Number(last.first) + Number(last.count) : 1, indexedUpTo + 1);
    // The replay: the newest runs, until they hold replayCount messages.
    const newest = db.prepare(
      "SELECT count, received_ms, little_endian, frames FROM runs ORDER BY first DESC",
    );
    const recent: { frames: Uint8Array[]; littleEndian: boolean; receivedMs: number }[] = [];
    let held = 0;
    if (options.replayCount > 0) {
      for (const row of newest.iterate()) {
        const littleEndian = row.little_endian === 1;
        recent.push({
          frames: framesOf(row.frames as Uint8Array, littleEndian),
          littleEndian,
          receivedMs: Number(row.received_ms),
        });
        held += Number(row.count);
        if (held >= options.replayCount) break;
      }
    }
    for (const run of recent.reverse()) {
      for (const frame of run.frames) this.#ring.restore(frame, run.littleEndian, run.receivedMs);
    }
    this.#schedule(this.#options.stepMs);
  }

  /**
   * Opens (creating it and its directory if need be) and migrates the database at `path`.
   * Throws a {@linkcode HistoryDbError} whose message is the one sentence to show: not a
   * database, in use by another server, locked, disk full, no permission.
   */
  static open(path: string, options: SqliteStoreOptions): SqliteStore {
    let lock: Deno.FsFile | undefined;
    let db: DatabaseSync | undefined;
    try {
      try {
        Deno.mkdirSync(dirname(path), { recursive: true });
      } catch {
        // Opening says what is wrong, in its own words.
      }
      // A second server on the same file would interleave two rooms' messages: an advisory
      // lock (flock, apart from SQLite's own fcntl locks) says that one already has it.
      lock = Deno.openSync(path, { read: true, write: true, create: true });
      if (!lock.tryLockSync(true)) {
        throw new HistoryDbError(
          `The history database ${path} is in use by another wirechat server: stop it, or give another --history-db.`,
        );
      }
      db = new DatabaseSync(path);
      db.exec("PRAGMA busy_timeout = 0");
      migrate(db, path);
      const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal") {
        throw new HistoryDbError(
          `Cannot open the history database ${path}: it cannot be put in WAL mode (it is in ${mode} mode).`,
        );
      }
      db.exec(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
      // Checkpoints run in the background steps, not inside a commit on the relaying path.
      db.exec("PRAGMA wal_autocheckpoint = 0");
      return new SqliteStore(path, db, lock, options);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // It was not open.
      }
      lock?.close();
      throw new HistoryDbError(explainHistoryError(error, path), { cause: error });
    }
  }

  /** What the server logs once the store is open. */
  get description(): string {
    // What SQLite says it runs with, not what was asked for.
    const level = Number(this.#db.prepare("PRAGMA synchronous").get()?.synchronous);
    const sync = ["OFF", "NORMAL", "FULL", "EXTRA"][level] ?? String(level);
    return `the last ${this.#options.replayCount} messages replayed from ${this.path} (WAL, synchronous=${sync}, ${
      this.indexed ? "FTS5 index" : "no FTS5: search uses LIKE"
    })`;
  }

  append(runs: readonly HistoryRun[], now: number): void {
    if (this.#closed) return;
    this.#appendedAt = now;
    try {
      this.#write(runs, now);
    } catch (error) {
      if (this.#db.isTransaction) {
        try {
          this.#db.exec("ROLLBACK");
        } catch {
          // Rolled back by SQLite itself.
        }
      }
      throw new HistoryDbError(explainHistoryError(error, this.path, "write to"), {
        cause: error,
      });
    } finally {
      // The replay is what was relayed, whether or not the disk took it.
      this.#ring.append(runs, now);
    }
  }

  #write(runs: readonly HistoryRun[], now: number): void {
    let next = this.#next;
    this.#begin.run();
    for (const { frames, littleEndian } of runs) {
      const count = countFrames(frames, littleEndian);
      this.#insert.run(next, count, now, littleEndian ? 1 : 0, frames);
      next += count;
    }
    this.#commit.run();
    // Only once committed: a failed turn's numbers are used again.
    this.#next = next;
    this.#unchecked += 1;
  }

  replay(littleEndian: boolean, now: number): Uint8Array {
    return this.#ring.replay(littleEndian, now);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#ring.close();
    try {
      this.#db.close();
    } catch (error) {
      this.#log.error(explainHistoryError(error, this.path, "close"));
    }
    // Only now: closing another descriptor of the file would drop SQLite's own locks.
    this.#lock.close();
  }

  /**
   * Runs one background step now; tests call it rather than wait. Returns whether more is due.
   * While messages flow (`busy`), the step is small and the WAL is left to grow a while: the
   * index costs more per message than relaying, and a checkpoint's fsync stalls the thread.
   */
  step(now = Date.now(), busy = false): boolean {
    if (this.#closed) return false;
    try {
      const more = this.#prune(now) | this.#index(busy ? BUSY_INDEX_ROWS : STEP_ROWS);
      if (!busy || this.#unchecked >= CHECKPOINT_COMMITS) {
        if (this.#unchecked > 0) this.#db.exec("PRAGMA wal_checkpoint(PASSIVE)");
        this.#unchecked = 0;
      }
      if (this.#troubled) this.#log.info(`history: ${this.path} maintained again`);
      this.#troubled = false;
      return more === 1;
    } catch (error) {
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch {
        // The database is in trouble; the next step tries again (and says so once, below).
      }
      if (!this.#troubled) {
        this.#log.error(
          `history: ${
            explainHistoryError(error, this.path, "prune or index")
          } Relaying goes on; retrying in the background.`,
        );
      }
      this.#troubled = true;
      return false;
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      // During a flood, one small step per period: the reader finds what is not indexed yet
      // by LIKE. Once appends pause, catch up.
      const now = Date.now();
      const busy = now - this.#appendedAt < IDLE_MS;
      const more = this.step(now, busy);
      this.#schedule(more && !busy ? 5 : this.#options.stepMs);
    }, ms);
  }

  /**
   * Deletes the oldest messages past the limits, up to STEP_ROWS runs a step; 1 if more are
   * due. Age prunes whole runs (one run's messages arrived together); --history-max-rows is
   * exact: the run it cuts through is rewritten without its older frames.
   */
  #prune(now: number): number {
    const { maxRows, maxAgeMs } = this.#options;
    if (maxRows === 0 && maxAgeMs === 0) return 0;
    const db = this.#db;
    // The first message number to keep.
    let keep = maxRows > 0 ? this.#next - maxRows : 0;
    let moreByAge = false;
    if (maxAgeMs > 0) {
      // Only the oldest runs one step may delete are looked at, by the primary key: a search
      // for the first young run would scan every old one, each step, however many there are.
      const oldest = db.prepare("SELECT first, received_ms FROM runs ORDER BY first LIMIT ?")
        .all(STEP_ROWS + 1);
      const young = oldest.find((row) => Number(row.received_ms) >= now - maxAgeMs);
      moreByAge = !young && oldest.length > STEP_ROWS;
      const byAge = young ?? (moreByAge ? oldest[STEP_ROWS] : undefined);
      keep = Math.max(keep, byAge ? Number(byAge.first) : this.#next);
    }
    const oldest = db.prepare("SELECT first FROM runs ORDER BY first LIMIT 1").get();
    if (!oldest || Number(oldest.first) >= keep) return 0;
    const doomed = db.prepare(
      "SELECT first, count, little_endian, frames FROM runs WHERE first < ? ORDER BY first LIMIT ?",
    ).all(keep, STEP_ROWS + 1);
    const more = doomed.length > STEP_ROWS;
    db.exec("BEGIN");
    let upTo = 0;
    for (const row of doomed.slice(0, STEP_ROWS)) {
      const first = Number(row.first);
      const count = Number(row.count);
      if (first + count <= keep) {
        db.prepare("DELETE FROM runs WHERE first = ?").run(first);
        upTo = first + count;
        continue;
      }
      // The run the limit cuts through keeps its newer frames, under the number of the first.
      const littleEndian = row.little_endian === 1;
      const kept = framesOf(row.frames as Uint8Array, littleEndian).slice(keep - first);
      db.prepare("UPDATE runs SET first = ?, count = ?, frames = ? WHERE first = ?")
        .run(keep, kept.length, concatBytes(kept), first);
      upTo = keep;
    }
    if (this.indexed) db.prepare("DELETE FROM message_words WHERE rowid < ?").run(upTo);
    // What is pruned needs no indexing: the index goes on after it (else it would look for
    // messages no longer there forever), and so do the numbers after a restart.
    db.prepare("UPDATE meta SET value = max(value, ?) WHERE key = 'indexed_up_to'").run(upTo - 1);
    db.exec("COMMIT");
    return more || moreByAge ? 1 : 0;
  }

  /** Adds up to `rows` messages to the full-text index; 1 if more are due. */
  #index(rows: number): number {
    if (!this.indexed) return 0;
    const db = this.#db;
    const from = Number(
      db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value ?? 0,
    );
    if (from + 1 >= this.#next) return 0;
    // From the run that holds message from + 1 (the last starting at or before it), found by
    // the primary key: `first + count > ?` would scan every run before it.
    const found = db.prepare(
      "SELECT first, little_endian, frames FROM runs WHERE first >= " +
        "(SELECT coalesce(max(first), 0) FROM runs WHERE first <= ?) ORDER BY first",
    );
    const add = db.prepare("INSERT INTO message_words (rowid, text) VALUES (?, ?)");
    let to = from;
    db.exec("BEGIN");
    outer: for (const row of found.iterate(from + 1)) {
      const littleEndian = row.little_endian === 1;
      const first = Number(row.first);
      const frames = framesOf(row.frames as Uint8Array, littleEndian);
      for (let i = Math.max(0, from + 1 - first); i < frames.length; i++) {
        if (to - from >= rows) break outer;
        add.run(first + i, frameParts(frames[i], littleEndian)[1]);
        to = first + i;
      }
    }
    db.prepare("UPDATE meta SET value = ? WHERE key = 'indexed_up_to'").run(to);
    db.exec("COMMIT");
    return to + 1 < this.#next ? 1 : 0;
  }
}

/** How many frames a run of complete frames holds. */
function countFrames(frames: Uint8Array, littleEndian: boolean): number {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  let n = 0;
  for (let at = 0; at < frames.length; n++) at += 4 + view.getInt32(at, littleEndian);
  return n;
}
