/**
 * The persistent history: every message relayed, in an SQLite database (node:sqlite, built
 * into Deno) in WAL mode, committed once per turn of the event loop before the bus delivers
 * it. The replay comes from a ring (ring.ts) filled from the database on open, so a display
 * joining costs no query. Pruning, the full-text index and WAL checkpoints run in the
 * background in small steps, so that none stalls relaying for long.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import type { Logger } from "../../cli/log.ts";
import { RingStore } from "./ring.ts";
import { explainHistoryError, hasIndex, HistoryDbError, migrate } from "./schema.ts";
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

/**
 * Rows per INSERT statement: one call into SQLite for many rows writes about twice as many
 * messages a second as one call per row (measured in the bench's write-rate row).
 */
const ROWS_PER_INSERT = 16;
/** Rows pruned, or indexed, per background step: a few milliseconds of work. */
const STEP_ROWS = 500;
/** Milliseconds without an append after which background work catches up at full speed. */
const IDLE_MS = 250;
/** Background steps between two passive WAL checkpoints. */
const CHECKPOINT_EVERY = 5;

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

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
  #insertMany: StatementSync;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #steps = 0;
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
    const insert =
      "INSERT INTO messages (received_ms, username, text, frame, little_endian) VALUES ";
    this.#insert = db.prepare(insert + "(?, ?, ?, ?, ?)");
    this.#insertMany = db.prepare(
      insert + Array(ROWS_PER_INSERT).fill("(?, ?, ?, ?, ?)").join(", "),
    );
    const recent = db.prepare(
      "SELECT frame, little_endian, received_ms FROM messages ORDER BY id DESC LIMIT ?",
    ).all(options.replayCount).reverse();
    for (const row of recent) {
      this.#ring.restore(row.frame as Uint8Array, row.little_endian === 1, Number(row.received_ms));
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
    const values: SQLInputValue[] = [];
    this.#begin.run();
    for (const { frames, littleEndian } of runs) {
      const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
      for (let at = 0; at < frames.length;) {
        const end = at + 4 + view.getInt32(at, littleEndian);
        const ulen = view.getInt32(at + 4, littleEndian);
        const textAt = at + 8 + ulen + 28;
        values.push(
          now,
          utf8.decode(frames.subarray(at + 8, at + 8 + ulen)),
          utf8.decode(frames.subarray(textAt, end)),
          frames.subarray(at, end),
          littleEndian ? 1 : 0,
        );
        if (values.length === ROWS_PER_INSERT * 5) {
          this.#insertMany.run(...values);
          values.length = 0;
        }
        at = end;
      }
    }
    for (let at = 0; at < values.length; at += 5) this.#insert.run(...values.slice(at, at + 5));
    this.#commit.run();
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

  /** Runs one background step now; tests call it rather than wait. Returns whether more is due. */
  step(now = Date.now()): boolean {
    if (this.#closed) return false;
    try {
      const more = this.#prune(now) | this.#index();
      if (++this.#steps % CHECKPOINT_EVERY === 0 || !more) {
        this.#db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      }
      if (this.#troubled) this.#log.info(`history: ${this.path} maintained again`);
      this.#troubled = false;
      return more === 1;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
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
      const more = this.step();
      // During a flood, one small step per period: indexing costs more than relaying, and
      // the reader finds what is not indexed yet by LIKE. Once appends pause, catch up.
      const idle = Date.now() - this.#appendedAt > IDLE_MS;
      this.#schedule(more && idle ? 5 : this.#options.stepMs);
    }, ms);
  }

  /** Deletes up to STEP_ROWS of the oldest rows past the limits; 1 if more are due. */
  #prune(now: number): number {
    const { maxRows, maxAgeMs } = this.#options;
    if (maxRows === 0 && maxAgeMs === 0) return 0;
    const db = this.#db;
    const range = db.prepare("SELECT min(id) AS lo, max(id) AS hi FROM messages").get();
    if (range?.lo === null || range?.lo === undefined) return 0;
    const lo = Number(range.lo);
    const hi = Number(range.hi);
    let upTo = maxRows > 0 ? hi - maxRows : lo - 1;
    if (maxAgeMs > 0) {
      // Received times rise with id: look at the oldest rows only.
      const old = db.prepare(
        "SELECT max(id) AS id FROM (SELECT id, received_ms FROM messages ORDER BY id LIMIT ?) WHERE received_ms < ?",
      ).get(STEP_ROWS, now - maxAgeMs);
      if (old?.id !== null && old?.id !== undefined) upTo = Math.max(upTo, Number(old.id));
    }
    const bound = Math.min(upTo, lo + STEP_ROWS - 1);
    if (bound < lo) return 0;
    db.exec("BEGIN");
    db.prepare("DELETE FROM messages WHERE id <= ?").run(bound);
    if (this.indexed) db.prepare("DELETE FROM message_words WHERE rowid <= ?").run(bound);
    db.exec("COMMIT");
    return bound < upTo ? 1 : 0;
  }

  /** Adds up to STEP_ROWS messages to the full-text index; 1 if more are due. */
  #index(): number {
    if (!this.indexed) return 0;
    const db = this.#db;
    const from = Number(
      db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value ?? 0,
    );
    const last = db.prepare(
      "SELECT max(id) AS id, count(*) AS n FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
    ).get(from, STEP_ROWS);
    if (!last || last.id === null) return 0;
    const to = Number(last.id);
    db.exec("BEGIN");
    db.prepare(
      "INSERT INTO message_words (rowid, text) SELECT id, text FROM messages WHERE id > ? AND id <= ?",
    ).run(from, to);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'indexed_up_to'").run(to);
    db.exec("COMMIT");
    return Number(last.n) === STEP_ROWS ? 1 : 0;
  }
}
