/**
 * History through the real server: off by default, replayed to late displays in both byte
 * orders byte for byte, one contiguous sequence for displays joining during a flood, and
 * kept across a restart with --history-db.
 *
 * @module
 */

import assert from "node:assert/strict";
import { concatBytes } from "../lib/protocol/bytes.ts";
import { encodeFrame } from "../lib/protocol/frame.ts";
import { encodeIdentify } from "../lib/protocol/identify.ts";
import { CertificateDir, ServerProcess } from "./helpers/processes.ts";
import { frameOf, RawClient } from "./helpers/raw_client.ts";
import { firstBreak, HistoryDir, numberedFrames } from "./helpers/history_files.ts";
import { bounded } from "../tools/harness/wait.ts";

Deno.test(
  "without --history a display that connects late receives only what comes after",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using early = await RawClient.identified(server, server.port, "display");
    await keyboard.send(frameOf("k", "before"));
    await early.waitForMessages(1);
    await using late = await RawClient.identified(server, server.port, "display");
    await keyboard.send(frameOf("k", "after"));
    assert.deepEqual((await late.waitForMessages(1)).map((m) => m.text), ["after"]);
    await early.waitForMessages(2);
    assert.deepEqual(late.messages.map((m) => m.text), ["after"]);
  }),
);

Deno.test(
  "--history 3 replays the last 3 frames byte for byte, in each display's byte order, then live ones",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start(["--history", "3"]);
    await using big = await RawClient.identified(server, server.port, "keyboard");
    await using little = await RawClient.identified(server, server.port, "keyboard", {
      littleEndian: true,
    });
    await using witness = await RawClient.identified(server, server.port, "display");
    // Each keyboard's own timestamp must come back, not the server's.
    const stamped = (text: string, littleEndian: boolean, second: number) => {
      const time = { year: 2023, month: 12, day: 31, hour: 23, minute: 59, second };
      return { text, littleEndian, time };
    };
    const sent = [
      stamped("one", false, 1),
      stamped("two", true, 2),
      stamped("three", false, 3),
      stamped("four", true, 4),
    ];
    const bytesOf = (s: typeof sent[number], le: boolean) =>
      encodeFrame({ username: "kb", time: s.time, text: s.text }, { littleEndian: le });
    for (const s of sent) {
      await (s.littleEndian ? little : big).send(bytesOf(s, s.littleEndian));
      await witness.waitForMessages(sent.indexOf(s) + 1);
    }
    for (const littleEndian of [false, true]) {
      await using late = await RawClient.identified(server, server.port, "display", {
        littleEndian,
      });
      const expected = concatBytes(sent.slice(1).map((s) => bytesOf(s, littleEndian)));
      assert.deepEqual(await late.waitForBytes(expected.length), expected);
    }
    await using last = await RawClient.identified(server, server.port, "display");
    await big.send(frameOf("kb", "live"));
    const texts = (await last.waitForMessages(4)).map((m) => m.text);
    assert.deepEqual(texts, ["two", "three", "four", "live"]);
  }),
);

Deno.test(
  "displays connecting while a keyboard floods each receive one contiguous sequence, from the first",
  bounded(60_000, async () => {
    const TOTAL = 20_000;
    await using server = await ServerProcess.start([
      "--history",
      "100000",
      "--keyboard-rate",
      "0",
    ]);
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    await using watcher = await RawClient.identified(server, server.port, "display");
    watcher.read();
    const late: RawClient[] = [];
    try {
      for (let at = 0; at < TOTAL; at += 500) {
        const sending = keyboard.send(numberedFrames("k", at, 500));
        // Displays join mid-flood, their identify racing the keyboard's frames.
        if (at % 4000 === 2000) {
          late.push((await RawClient.connect(server.port)).read());
          await late.at(-1)!.send(encodeIdentify("display"));
        }
        await sending;
      }
      await watcher.waitForMessages(TOTAL, 30_000);
      assert.equal(late.length, 5);
      for (const display of late) {
        const texts = (await display.waitForMessages(TOTAL, 30_000)).map((m) => m.text);
        assert.equal(firstBreak(texts), undefined);
        assert.equal(texts[0], "0");
        assert.equal(display.messages.length, TOTAL, "no duplicate at the end");
      }
    } finally {
      for (const display of late) await display[Symbol.asyncDispose]();
    }
  }),
);

Deno.test(
  "--history-db keeps the history across a restart",
  bounded(45_000, async () => {
    await using files = await HistoryDir.create();
    const args = ["--history", "10", "--history-db", files.file()];
    {
      await using server = await ServerProcess.start(args);
      await using keyboard = await RawClient.identified(server, server.port, "keyboard");
      await using display = await RawClient.identified(server, server.port, "display");
      await keyboard.send(numberedFrames("k", 0, 3));
      await display.waitForMessages(3);
      assert.equal((await server.stop()).code, 0);
    }
    await using server = await ServerProcess.start([...args, "--history-sync", "full"]);
    assert.equal(
      server.log.matching(
        /history: the last 10 messages replayed from .*chat\.db \(WAL, synchronous=FULL, FTS5 index\)$/,
      ).length,
      1,
    );
    await using late = await RawClient.identified(server, server.port, "display");
    assert.deepEqual((await late.waitForMessages(3)).map((m) => m.text), ["0", "1", "2"]);
  }),
);

Deno.test(
  "in --reference mode --history keeps the full servers' history, not the random messages",
  bounded(45_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.startReference([
      "--certs",
      certs.dir,
      "--history",
      "5",
    ]);
    const full = server.portOf("full server");
    const random = server.portOf("random-message server");
    await using keyboard = await RawClient.identified(server, full, "keyboard");
    await using witness = await RawClient.identified(server, full, "display");
    await keyboard.send(frameOf("k", "kept"));
    await witness.waitForMessages(1);
    await using onRandom = await RawClient.identified(server, random, "display");
    await onRandom.waitForMessages(1);
    await using late = await RawClient.identified(server, full, "display");
    assert.deepEqual((await late.waitForMessages(1)).map((m) => m.text), ["kept"]);
    await using lateRandom = await RawClient.identified(server, random, "display");
    const first = (await lateRandom.waitForMessages(1))[0];
    assert.ok(
      first.text !== onRandom.messages[0].text,
      "a random message sent before it joined is not replayed",
    );
  }),
);
