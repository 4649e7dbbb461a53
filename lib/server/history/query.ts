/**
 * Reading the history database from outside the server, read-only (the server may be
 * writing meanwhile: WAL lets readers and the writer go on together). Search uses the FTS5
 * index, ranked by bm25, for the messages the server has indexed, and LIKE for the newest few
 * it has not yet; without FTS5, LIKE for all, newest first.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { decodeFrameBody, type Message } from "../../protocol/frame.ts";
import { checkReadable, explainHistoryError, hasIndex, HistoryDbError } from "./schema.ts";

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

/** An FTS5 query matching every word, each quoted so that no word is taken for syntax. */
function ftsWords(words: string[]): string {
  return words.map((word) => `"${word.replaceAll('"', '""')}"`).join(" ");
}

/** A LIKE pattern matching `word` anywhere, with LIKE's own characters escaped. */
function likeWord(word: string): string {
  return `%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The filters other than the search, as SQL over `m` and its parameters. */
function filters(query: HistoryQuery): { sql: string; params: SQLInputValue[] } {
  const parts: string[] = [];
  const params: SQLInputValue[] = [];
  if (query.sinceMs !== undefined) {
    parts.push("m.received_ms >= ?");
    params.push(query.sinceMs);
  }
  if (query.user !== undefined) {
    parts.push("m.username = ?");
    params.push(query.user);
  }
  return { sql: parts.map((p) => ` AND ${p}`).join(""), params };
}

function toRow(row: Record<string, SQLInputValue>): HistoryRow {
  const frame = row.frame as Uint8Array;
  return {
    id: Number(row.id),
    receivedMs: Number(row.received_ms),
    message: decodeFrameBody(frame.subarray(4), { littleEndian: row.little_endian === 1 }),
  };
}

const COLUMNS = "m.id, m.received_ms, m.frame, m.little_endian";

/**
 * Reads what `query` asks for. Without a search: oldest first, as a display shows them.
 * With one: best match first.
 */
export function queryHistory(db: DatabaseSync, query: HistoryQuery): HistoryResult {
  const { sql, params } = filters(query);
  const words = query.search?.split(/\s+/).filter((w) => w !== "") ?? [];
  if (words.length === 0) {
    const rows = db.prepare(
      `SELECT ${COLUMNS} FROM messages m WHERE 1${sql} ORDER BY m.id DESC LIMIT ?`,
    ).all(...params, query.last);
    return { rows: rows.map(toRow).reverse() };
  }
  const like = words.map(() => " AND m.text LIKE ? ESCAPE '\\'").join("");
  const likeParams = words.map(likeWord);
  if (!hasIndex(db)) {
    const rows = db.prepare(
      `SELECT ${COLUMNS} FROM messages m WHERE 1${sql}${like} ORDER BY m.id DESC LIMIT ?`,
    ).all(...params, ...likeParams, query.last);
    return {
      rows: rows.map(toRow),
      note: "This SQLite has no FTS5 full-text index: searched with LIKE, newest first, unranked.",
    };
  }
  const indexedUpTo = Number(
    db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value ?? 0,
  );
  // The newest messages, not yet indexed by the server's background steps, by LIKE.
  const recent = db.prepare(
    `SELECT ${COLUMNS} FROM messages m WHERE m.id > ?${sql}${like} ORDER BY m.id DESC LIMIT ?`,
  ).all(indexedUpTo, ...params, ...likeParams, query.last).map(toRow);
  const ranked = db.prepare(
    `SELECT ${COLUMNS} FROM message_words w JOIN messages m ON m.id = w.rowid
     WHERE message_words MATCH ? AND m.id <= ?${sql} ORDER BY w.rank LIMIT ?`,
  ).all(ftsWords(words), indexedUpTo, ...params, query.last - recent.length).map(toRow);
  return { rows: [...recent, ...ranked] };
}
