/**
 * The history database's schema, its migrations, and the one place that turns SQLite's
 * errors into the sentence a user reads. Shared by the server (sqlite_store.ts) and the
 * read-only `deno task history` (main_history.ts), so both agree on what a version means.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/**
 * Migrations, in order: the schema version (PRAGMA user_version) is how many have run. A new
 * version appends one; a database from an older server is brought up to date on open, in one
 * transaction.
 */
const MIGRATIONS: readonly ((db: DatabaseSync) => void)[] = [
  // 1: the messages, as the runs of frames the keyboards' reads brought, byte for byte as
  // relayed. One row per run, not per message: a row per message took a third of a flood's
  // throughput on the relaying path. A message's number (its place in the one global order)
  // is its run's `first` plus its index in the run.
  (db) =>
    db.exec(`
      CREATE TABLE runs (
        first INTEGER PRIMARY KEY,
        count INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        little_endian INTEGER NOT NULL,
        frames BLOB NOT NULL
      );
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `),
  // 2: the full-text index (rowid: the message's number), filled in the background (see
  // SqliteStore), where SQLite has FTS5.
  (db) => {
    db.exec(`INSERT INTO meta (key, value) VALUES ('indexed_up_to', 0)`);
    if (hasFts5(db)) {
      db.exec(
        `CREATE VIRTUAL TABLE message_words USING fts5(text, content='', contentless_delete=1)`,
      );
    }
  },
];

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** The frames of a stored run (complete and validated when they were relayed), as views. */
export function framesOf(frames: Uint8Array, littleEndian: boolean): Uint8Array[] {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at < frames.length;) {
    const end = at + 4 + view.getInt32(at, littleEndian);
    out.push(frames.subarray(at, end));
    at = end;
  }
  return out;
}

/** The username and text of one stored frame. */
export function frameParts(frame: Uint8Array, littleEndian: boolean): [string, string] {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const ulen = view.getInt32(4, littleEndian);
  return [
    utf8.decode(frame.subarray(8, 8 + ulen)),
    utf8.decode(frame.subarray(8 + ulen + 28)),
  ];
}

/** The schema version this program writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Whether this SQLite was built with the FTS5 full-text index. */
export function hasFts5(db: DatabaseSync): boolean {
  const row = db.prepare(`SELECT sqlite_compileoption_used('ENABLE_FTS5') AS on_`).get();
  return row?.on_ === 1;
}

/** Whether the database has the full-text index (it was created where FTS5 was). */
export function hasIndex(db: DatabaseSync): boolean {
  const row = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'message_words'`)
    .get();
  return row?.n === 1 && hasFts5(db);
}

/** A history database that cannot be used, with the sentence that says why. */
export class HistoryDbError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HistoryDbError";
  }
}

/** The schema version of an open database. */
function versionOf(db: DatabaseSync): number {
  return Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
}

/**
 * Brings `db` up to {@linkcode SCHEMA_VERSION}, in one transaction that waits for no one
 * (BEGIN IMMEDIATE fails at once if another program holds the write lock).
 */
export function migrate(db: DatabaseSync, path: string): void {
  // Reading the header is what finds out that a file is not a database at all.
  const version = versionOf(db);
  if (version > SCHEMA_VERSION) {
    throw new HistoryDbError(
      `The history database ${path} has schema version ${version}, newer than this server's ${SCHEMA_VERSION}: use a newer wirechat, or another --history-db.`,
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (let v = versionOf(db); v < SCHEMA_VERSION; v++) MIGRATIONS[v](db);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** Checks that a database opened read-only is a history database this program can read. */
export function checkReadable(db: DatabaseSync, path: string): void {
  const version = versionOf(db);
  if (version === 0) {
    throw new HistoryDbError(
      `${path} is not a wirechat history database (it has no schema version): give the file the server's --history-db wrote.`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new HistoryDbError(
      `The history database ${path} has schema version ${version}, newer than this program's ${SCHEMA_VERSION}: use a newer wirechat.`,
    );
  }
}

/** SQLite's primary result codes that have a sentence of their own. */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/**
 * One sentence for an error met opening, writing or reading the history database at
 * `path`; `doing` is what failed ("open", "write to", "read"). Never a stack trace.
 */
export function explainHistoryError(error: unknown, path: string, doing = "open"): string {
  if (error instanceof HistoryDbError) return error.message;
  const where = `Cannot ${doing} the history database ${path}`;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return `${where}: permission denied (the server's deno task may write only under history/; put the database there, or run it with --allow-write=${path}).`;
  }
  const errcode = (error as { errcode?: unknown }).errcode;
  const code = typeof errcode === "number" ? errcode & 0xff : undefined;
  if (code === SQLITE_NOTADB || /file is not a database/.test(message)) {
    return `${where}: the file is not an SQLite database (move it away, or give another --history-db).`;
  }
  if (code === SQLITE_CORRUPT || /malformed/.test(message)) {
    return `${where}: the database is corrupt (move it away, or give another --history-db).`;
  }
  if (code === SQLITE_BUSY || code === SQLITE_LOCKED || /database is locked/.test(message)) {
    return `${where}: it is locked by another program (another server, or an open transaction in a sqlite3 shell).`;
  }
  if (code === SQLITE_FULL || /disk is full/.test(message)) {
    return `${where}: the disk is full.`;
  }
  if (code === SQLITE_READONLY) return `${where}: the file or its directory is read-only.`;
  if (code === SQLITE_CANTOPEN || error instanceof Deno.errors.NotFound) {
    return `${where}: no such file, or its directory cannot be written.`;
  }
  if (code === SQLITE_IOERR) return `${where}: an I/O error (${message}).`;
  const line = message.split("\n")[0].trim().replace(/\.$/, "");
  return `${where}: ${line}.`;
}
