/**
 * Reading the history database from outside the server, read-only (the server may be
 * writing meanwhile: WAL lets readers and the writer go on together). The database holds runs
 * of frames (schema.ts); this file turns them back into numbered messages. Search uses the
 * FTS5 index, ranked by bm25, for the messages the server has indexed, and a substring match
 * by LIKE's rule (case-insensitive for ASCII) for the newest few it has not yet; without FTS5,
 * that match for all, newest first.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { decodeFrameBody, type Message } from "../../protocol/frame.ts";
import {
  checkReadable,
  explainHistoryError,
  framesOf,
  hasIndex,
  HistoryDbError,
} from "./schema.ts";

/** What to read: the newest `last` messages that pass every filter given. */
export interface HistoryQuery {
  last: number;
  /** Received by the server at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** Sent by exactly this user. */
  user?: string;
  /** Messages containing every one of these words. */
  search?: string;
}

/** One message read back. */
export interface HistoryRow {
  /** Its place in the one global order. */
  id: number;
  receivedMs: number;
  message: Message;
}

/** The rows found, and a note for stderr about how they were found, if there is one. */
export interface HistoryResult {
  rows: HistoryRow[];
  note?: string;
}

/** Opens `path` read-only; throws a {@linkcode HistoryDbError} with the sentence to show. */
export function openReadOnly(path: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    Deno.statSync(path);
    db = new DatabaseSync(path, { readOnly: true });
    checkReadable(db, path);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof Deno.errors.NotFound) {
      throw new HistoryDbError(`Cannot read the history database ${path}: no such file.`);
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new HistoryDbError(`Cannot read the history database ${path}: permission denied.`);
    }
    throw new HistoryDbError(explainHistoryError(error, path, "read"), { cause: error });
  }
}

/** A stored run's messages, numbered. */
function explode(row: Record<string, unknown>): HistoryRow[] {
  const littleEndian = row.little_endian === 1;
  const first = Number(row.first);
  const receivedMs = Number(row.received_ms);
  return framesOf(row.frames as Uint8Array, littleEndian).map((frame, i) => ({
    id: first + i,
    receivedMs,
    message: decodeFrameBody(frame.subarray(4), { littleEndian }),
  }));
}

/** Every message numbered above `after`, newest first, received at or after `sinceMs`. */
function* newestFirst(db: DatabaseSync, after: number, sinceMs = 0): Generator<HistoryRow> {
  const runs = db.prepare(
    `SELECT first, received_ms, little_endian, frames FROM runs
     WHERE first + count > ? AND received_ms >= ? ORDER BY first DESC`,
  );
  for (const row of runs.iterate(after + 1, sinceMs)) {
    for (const message of explode(row).reverse()) {
      if (message.id > after) yield message;
    }
  }
}

/** The message numbered `id`, if it is still kept. */
function messageAt(db: DatabaseSync, id: number): HistoryRow | undefined {
  const row = db.prepare(
    "SELECT first, received_ms, little_endian, frames FROM runs WHERE first <= ? ORDER BY first DESC LIMIT 1",
  ).get(id);
  return row ? explode(row).find((m) => m.id === id) : undefined;
}

/** An FTS5 query matching every word, each quoted so that no word is taken for syntax. */
function ftsWords(words: string[]): string {
  return words.map((word) => `"${word.replaceAll('"', '""')}"`).join(" ");
}

/** LIKE's rule for `%word%`: a substring, case-insensitive for ASCII letters only. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Reads what `query` asks for. Without a search: oldest first, as a display shows them.
 * With one: best match first.
 */
export function queryHistory(db: DatabaseSync, query: HistoryQuery): HistoryResult {
  const passes = (row: HistoryRow) =>
    (query.sinceMs === undefined || row.receivedMs >= query.sinceMs) &&
    (query.user === undefined || row.message.username === query.user);
  const words = query.search?.split(/\s+/).filter((w) => w !== "").map(asciiLower) ?? [];
  const contains = (row: HistoryRow) => {
    const text = asciiLower(row.message.text);
    return words.every((word) => text.includes(word));
  };
  const take = (rows: Iterable<HistoryRow>, test: (row: HistoryRow) => boolean, max: number) => {
    const out: HistoryRow[] = [];
    if (max <= 0) return out;
    for (const row of rows) {
      if (!test(row)) continue;
      out.push(row);
      if (out.length >= max) break;
    }
    return out;
  };
  if (words.length === 0) {
    return { rows: take(newestFirst(db, 0, query.sinceMs), passes, query.last).reverse() };
  }
  if (!hasIndex(db)) {
    return {
      rows: take(newestFirst(db, 0, query.sinceMs), (r) => passes(r) && contains(r), query.last),
      note:
        "This SQLite has no FTS5 full-text index: searched by LIKE's rule, newest first, unranked.",
    };
  }
  const indexedUpTo = Number(
    db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value ?? 0,
  );
  // The newest messages, not yet indexed by the server's background steps.
  const recent = take(
    newestFirst(db, indexedUpTo, query.sinceMs),
    (r) => passes(r) && contains(r),
    query.last,
  );
  const ranked = db.prepare(
    "SELECT rowid FROM message_words WHERE message_words MATCH ? AND rowid <= ? ORDER BY rank",
  );
  function* matches(): Generator<HistoryRow> {
    for (const { rowid } of ranked.iterate(ftsWords(words), indexedUpTo)) {
      const row = messageAt(db, Number(rowid));
      if (row) yield row;
    }
  }
  return { rows: [...recent, ...take(matches(), passes, query.last - recent.length)] };
}
