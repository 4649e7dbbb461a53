/**
 * `deno task history FILE`: reads or searches the server's --history-db database from
 * outside, read-only, while the server runs. Lines come out as the display prints them
 * (control characters escaped the same way); --json gives one JSON object per line.
 *
 * @module
 */

import {
  commandName,
  numberOption,
  type OptionSpec,
  parseDuration,
  parseOptions,
  runTool,
  stringOption,
} from "./lib/cli/args.ts";
import { UsageError } from "./lib/cli/user_errors.ts";
import { formatLine } from "./lib/client/display.ts";
import { formatTimestamp } from "./lib/protocol/time.ts";
import { type HistoryRow, openReadOnly, queryHistory } from "./lib/server/history/query.ts";

const USAGE = `Usage: ${commandName("history")} FILE [options]

Reads the messages the server kept in FILE (its --history-db), read-only: it may run while
the server does. Lines are printed as a display prints them, oldest first; a search prints
the best matches first.

Options:
  --last N        the newest N messages that pass the filters (default 50)
  --since TIME    received at or after TIME: 2026-12-01, "2026-12-01 18:30", an ISO time
                  with a zone, or a duration ago such as 2h or 7d
  --user NAME     sent by exactly NAME
  --search WORDS  containing every word (full-text, ranked, where SQLite has FTS5)
  --json          one JSON object per line: id, received, username, time, text
  --help          show this help
  --version       show the version
`;

const SPEC: OptionSpec = {
  last: { type: "string" },
  since: { type: "string" },
  user: { type: "string" },
  search: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

/** Parses --since: a local date (and time), an ISO time with its zone, or a duration ago. */
export function parseSince(text: string, now = Date.now()): number {
  const ago = parseDuration(text);
  if (ago !== undefined) return now - ago;
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text.trim());
  if (local) {
    const [, y, mo, d, h = "0", mi = "0", s = "0"] = local;
    return new Date(+y, +mo - 1, +d, +h, +mi, +s).getTime();
  }
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) {
    throw new UsageError(
      `--since must be a date such as 2026-12-01 or "2026-12-01 18:30", or a duration such as 2h, not "${text}".`,
    );
  }
  return parsed;
}

/**
 * JSON for one message. JSON escapes C0 controls itself; the rest of what the display escapes
 * (DEL, C1, line separators, bidi overrides) is escaped here as \\uXXXX, so that the output is
 * as safe in a terminal as the display's, and parses to the same text.
 */
export function jsonLine(row: HistoryRow): string {
  const { message } = row;
  return JSON.stringify({
    id: row.id,
    received: new Date(row.receivedMs).toISOString(),
    username: message.username,
    time: formatTimestamp(message.time),
    text: message.text,
  }).replace(
    /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const encoder = new TextEncoder();

/** Reads the database; returns the exit code. */
export function main(args: string[]): number {
  const { values, positionals } = parseOptions(args, SPEC);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "Give the history database to read, e.g. deno task history history/chat.db. Try --help."
        : `Unexpected argument "${positionals[1]}". Try --help.`,
    );
  }
  const last = numberOption(values, "last", 50, 1, 10_000_000);
  const since = stringOption(values, "since");
  // Every mistake on the command line is said before the file is opened.
  const sinceMs = since === undefined ? undefined : parseSince(since);
  const db = openReadOnly(positionals[0]);
  try {
    const { rows, note } = queryHistory(db, {
      last: Math.floor(last),
      sinceMs,
      user: stringOption(values, "user"),
      search: stringOption(values, "search"),
    });
    if (note) console.error(note);
    const lines = rows.map((row) => (values.json ? jsonLine(row) : formatLine(row.message)) + "\n");
    try {
      const bytes = encoder.encode(lines.join(""));
      for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
    } catch (error) {
      // A reader that went away (| head) is not a failure.
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
    }
  } finally {
    db.close();
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
