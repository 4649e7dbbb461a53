/**
 * The history database under trouble, through the real server: killed with SIGKILL in the
 * middle of a flood (nothing any display received is missing), a file that is not a
 * database, a database another server has, one locked by another program while the server
 * runs (relaying goes on, and the log says so), and pruning by rows and by age.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { run, ServerProcess } from "./helpers/processes.ts";
import { frameOf, RawClient } from "./helpers/raw_client.ts";
import { firstBreak, HistoryDir, numberedFrames } from "./helpers/history_files.ts";
import { bounded, Watch } from "../tools/harness/wait.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test(
  "SIGKILL in the middle of a flood loses nothing any display received",
  bounded(60_000, async () => {
    await using files = await HistoryDir.create();
    await using server = await ServerProcess.start([
      "--history-db",
      files.file(),
      "--keyboard-rate",
      "0",
    ]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using big = await RawClient.identified(server, server.port, "display");
    await using little = await RawClient.identified(server, server.port, "display", {
      littleEndian: true,
    });
    big.read();
    little.read({ littleEndian: true });
    let stop = false;
    // As fast as the displays take it: a keyboard further ahead than the test reads would get
    // the displays dropped as too slow (the backlog rules), which is not what is under test.
    const behind = () => Math.min(big.messages.length, little.messages.length);
    const flood = (async () => {
      for (let at = 0; !stop && !big.ended && !little.ended; at += 1000) {
        // A timer, not only promises: the test's reads and its deadline must get their turns.
        while (at - behind() > 4000 && !stop) await sleep(5);
        await keyboard.send(numberedFrames("k", at, 1000));
      }
    })().catch(() => {});
    await big.waitForMessages(20_000, 30_000).catch((error) => {
      throw new Error(`${error.message}\nthe server's log:\n${server.log.tail.join("\n")}`);
    });
    server.kill("SIGKILL");
    await server.stop();
    stop = true;
    await flood;
    await Promise.all([big.closedByServer(), little.closedByServer()]);
    const kept = files.texts();
    for (const display of [big, little]) {
      const seen = display.messages.map((m) => m.text);
      assert.ok(seen.length >= 20_000);
      assert.equal(firstBreak(seen), undefined);
      assert.ok(kept.length >= seen.length, `${kept.length} kept, ${seen.length} seen`);
      assert.deepEqual(kept.slice(0, seen.length), seen);
    }
  }),
);

Deno.test(
  "a history file that is not a database, or that another server has, is one sentence",
  bounded(45_000, async () => {
    await using files = await HistoryDir.create();
    await Deno.writeTextFile(join(files.dir, "junk.db"), "not a database, ".repeat(100));
    const junk = await run("main_server.ts", [
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--history-db",
      files.file("junk.db"),
    ]);
    assert.equal(junk.code, 1);
    assert.equal(
      junk.stderr,
      `Cannot open the history database ${
        files.file("junk.db")
      }: the file is not an SQLite database (move it away, or give another --history-db).\n`,
    );
    await using _first = await ServerProcess.start(["--history-db", files.file()]);
    const second = await run("main_server.ts", [
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--history-db",
      files.file(),
    ]);
    assert.equal(second.code, 1);
    assert.equal(
      second.stderr,
      `The history database ${files.file()} is in use by another wirechat server: stop it, or give another --history-db.\n`,
    );
    const outside = await run("main_server.ts", ["--port", "0", "--history-db", "/tmp/x.db"]);
    assert.equal(outside.code, 1);
    assert.match(
      outside.stderr,
      /^Cannot open the history database \/tmp\/x\.db: permission denied \(the server's deno task may write only under history\/; .*\)\.\n$/,
    );
  }),
);

Deno.test(
  "a database locked by another program: relaying goes on, the log says so once, and recovers",
  bounded(45_000, async () => {
    await using files = await HistoryDir.create();
    await using server = await ServerProcess.start([
      "--history",
      "5",
      "--history-db",
      files.file(),
    ]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using display = await RawClient.identified(server, server.port, "display");
    await keyboard.send(frameOf("k", "kept 1"));
    await display.waitForMessages(1);
    const other = new DatabaseSync(join(files.dir, "chat.db"));
    other.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
    try {
      await keyboard.send(frameOf("k", "not kept"));
      await display.waitForMessages(2);
      await server.log.waitFor(
        /error +history: Cannot write to the history database .*: it is locked by another program .* Relaying goes on; these messages are not kept\.$/,
      );
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    await keyboard.send(frameOf("k", "kept 2"));
    await display.waitForMessages(3);
    await server.log.waitFor(/history: keeping messages again \(1 relayed meanwhile not kept\)/);
    assert.equal(server.log.matching(/ error /).length, 1);
    assert.deepEqual(files.texts(), ["kept 1", "kept 2"]);
  }),
);

/** Resolves once `check` holds on the database, looked at each time the server logs or 50 ms pass. */
async function untilDb(what: string, check: () => boolean): Promise<void> {
  const watch = new Watch(what, () => "");
  const timer = setInterval(() => watch.changed(), 50);
  try {
    await watch.until(check, what, 15_000);
  } finally {
    clearInterval(timer);
  }
}

Deno.test(
  "--history-max-rows and --history-max-age prune the database in the background",
  bounded(45_000, async () => {
    await using files = await HistoryDir.create();
    {
      await using server = await ServerProcess.start([
        "--history-db",
        files.file("rows.db"),
        "--history-max-rows",
        "100",
        "--keyboard-rate",
        "0",
      ]);
      await using keyboard = await RawClient.identified(server, server.port, "keyboard");
      await using display = await RawClient.identified(server, server.port, "display");
      await keyboard.send(numberedFrames("k", 0, 3000));
      await display.waitForMessages(3000);
      await untilDb("100 rows left", () => files.texts("rows.db").length === 100);
      assert.deepEqual(
        files.texts("rows.db"),
        Array.from({ length: 100 }, (_, i) => `${2900 + i}`),
      );
    }
    await using server = await ServerProcess.start([
      "--history",
      "10",
      "--history-db",
      files.file("age.db"),
      "--history-max-age",
      "1s",
    ]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using display = await RawClient.identified(server, server.port, "display");
    await keyboard.send(frameOf("k", "soon gone"));
    await display.waitForMessages(1);
    await untilDb("the old message pruned", () => files.texts("age.db").length === 0);
    await using late = await RawClient.identified(server, server.port, "display");
    await keyboard.send(frameOf("k", "fresh"));
    assert.deepEqual((await late.waitForMessages(1)).map((m) => m.text), ["fresh"]);
    assert.equal(late.messages.length, 1, "the old one is not replayed either");
  }),
);
