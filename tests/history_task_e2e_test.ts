/**
 * `deno task history` against a database the real server is writing: the display's line
 * format with control characters escaped, ranked search, --user, --since, --json, and one
 * sentence for a file it cannot read.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { run, ServerProcess } from "./helpers/processes.ts";
import { FIXED_TIME_TEXT, frameOf, RawClient } from "./helpers/raw_client.ts";
import { HistoryDir } from "./helpers/history_files.ts";
import { bounded, Watch } from "../tools/harness/wait.ts";
import { concatBytes } from "../lib/protocol/bytes.ts";

/** Runs the history task (with its deno.json permissions: read only) on `file`. */
function history(file: string, ...args: string[]) {
  return run("main_history.ts", [file, ...args]);
}

Deno.test(
  "deno task history reads, filters and searches while the server runs",
  bounded(60_000, async () => {
    await using files = await HistoryDir.create();
    await using server = await ServerProcess.start(["--history-db", files.file()]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using display = await RawClient.identified(server, server.port, "display");
    await keyboard.send(concatBytes([
      frameOf("alice", "the quick brown fox"),
      frameOf("bob", "a slow dog"),
      frameOf("alice", "quick quick quick"),
      frameOf("eve", "clear\x1b[2J screen \u202ereversed"),
    ]));
    await display.waitForMessages(4);
    // Ranking needs the server's background index: wait until it has every message.
    const db = new DatabaseSync(join(files.dir, "chat.db"), { readOnly: true });
    const watch = new Watch("the index", () => "");
    const timer = setInterval(() => watch.changed(), 50);
    try {
      await watch.until(
        () => db.prepare("SELECT value FROM meta WHERE key = 'indexed_up_to'").get()?.value === 4,
        "four messages indexed",
      );
    } finally {
      clearInterval(timer);
      db.close();
    }

    const all = await history(files.file());
    assert.equal(all.code, 0, all.stderr);
    assert.equal(
      all.stdout,
      [
        `alice ${FIXED_TIME_TEXT} the quick brown fox`,
        `bob ${FIXED_TIME_TEXT} a slow dog`,
        `alice ${FIXED_TIME_TEXT} quick quick quick`,
        `eve ${FIXED_TIME_TEXT} clear\\x1b[2J screen \\u202ereversed`,
        "",
      ].join("\n"),
    );
    const last = await history(files.file(), "--last", "1", "--user", "alice");
    assert.equal(last.stdout, `alice ${FIXED_TIME_TEXT} quick quick quick\n`);

    const found = await history(files.file(), "--search", "quick");
    assert.equal(found.code, 0, found.stderr);
    assert.equal(found.stderr, "");
    assert.deepEqual(found.stdout.trim().split("\n"), [
      `alice ${FIXED_TIME_TEXT} quick quick quick`,
      `alice ${FIXED_TIME_TEXT} the quick brown fox`,
    ]);
    assert.equal((await history(files.file(), "--search", "quick", "--user", "bob")).stdout, "");

    const json = await history(files.file(), "--json", "--user", "eve", "--since", "1h");
    assert.equal(json.code, 0, json.stderr);
    // deno-lint-ignore no-control-regex -- looking for raw control characters is the point
    assert.doesNotMatch(json.stdout, /[\x00-\x09\x0b-\x1f\u202e]/, "no raw control characters");
    const rows = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(rows.length, 1);
    assert.deepEqual(
      { ...rows[0], received: undefined, id: undefined },
      {
        id: undefined,
        received: undefined,
        username: "eve",
        time: FIXED_TIME_TEXT,
        text: "clear\x1b[2J screen \u202ereversed",
      },
    );
    assert.ok(Math.abs(Date.parse(rows[0].received) - Date.now()) < 60_000);
    assert.equal((await history(files.file(), "--since", "2999-01-01")).stdout, "");
  }),
);

Deno.test(
  "deno task history says in one sentence what is wrong with its file or its options",
  bounded(30_000, async () => {
    await using files = await HistoryDir.create();
    const missing = await history(files.file("none.db"));
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `Cannot read the history database ${files.file("none.db")}: no such file.\n`,
    );
    await Deno.writeTextFile(join(files.dir, "junk.db"), "junk ".repeat(200));
    const junk = await history(files.file("junk.db"));
    assert.equal(junk.code, 1);
    assert.match(
      junk.stderr,
      /^Cannot read the history database .*: the file is not an SQLite database .*\.\n$/,
    );
    const since = await history(files.file(), "--since", "yesterday-ish");
    assert.equal(since.code, 2);
    assert.match(since.stderr, /^--since must be a date such as 2026-12-01/);
  }),
);
