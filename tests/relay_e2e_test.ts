/**
 * End to end through the real programs: the server relays keyboards to displays, in one
 * global order, across byte orders, from its random-message source, and past a display too
 * slow to keep.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DISPLAY,
  format_date_time,
  get_time_now,
  KEYBOARD,
  receive_message,
  send_message,
  sendall,
} from "../lib/brief_api.ts";
import { concatBytes } from "../lib/protocol/bytes.ts";
import {
  clientArgs,
  displayLine,
  run,
  ServerProcess,
  startDisplay,
  startDisplays,
} from "./helpers/processes.ts";
import { FIXED_TIME, FIXED_TIME_TEXT, frameOf, RawClient } from "./helpers/raw_client.ts";
import { bounded } from "../tools/harness/wait.ts";

Deno.test(
  "a keyboard's line reaches a display through the server as `Jason <date time> Hello World`",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const keyboard = await run(
      "main_keyboard.ts",
      [...clientArgs(server.port), "--user", "Jason"],
      {
        input: "Hello World\n",
      },
    );
    assert.equal(keyboard.code, 0, keyboard.stderr);
    assert.equal(keyboard.stderr, "");
    assert.match(await display.stdout.waitFor(/Hello World/), displayLine("Jason", "Hello World"));
  }),
);

/** `count` numbered frames from `user`, as one buffer. */
function numbered(user: string, count: number, littleEndian: boolean): Uint8Array {
  return concatBytes(
    Array.from({ length: count }, (_, i) => frameOf(user, `message ${i}`, littleEndian)),
  );
}

/** Sends `bytes` in pieces of random sizes, so that frames are split across writes. */
async function sendInPieces(client: RawClient, bytes: Uint8Array, seed: number): Promise<void> {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(random() * 700);
    await client.send(bytes.subarray(at, at + size));
    at += size;
    if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test(
  "every display sees the same global order, and each keyboard's messages in the order sent",
  bounded(60_000, async () => {
    const KEYBOARDS = 4;
    const EACH = 200;
    const total = KEYBOARDS * EACH;
    await using server = await ServerProcess.start([]);
    const [first, second] = await startDisplays(server, [
      clientArgs(server.port),
      clientArgs(server.port, { host: "localhost" }),
    ]);
    await using _first = first;
    await using _second = second;
    await using bigEndian = await RawClient.identified(server, server.port, "display");
    await using littleEndian = await RawClient.identified(server, server.port, "display", {
      littleEndian: true,
    });
    bigEndian.read();
    littleEndian.read({ littleEndian: true });
    const keyboards = await Promise.all(
      Array.from(
        { length: KEYBOARDS },
        (_, k) =>
          RawClient.identified(server, server.port, "keyboard", { littleEndian: k % 2 === 1 }),
      ),
    );
    try {
      await Promise.all(
        keyboards.map((keyboard, k) =>
          sendInPieces(keyboard, numbered(`k${k}`, EACH, k % 2 === 1), k + 1)
        ),
      );
      const [big, little, firstLines, secondLines] = await Promise.all([
        bigEndian.waitForMessages(total),
        littleEndian.waitForMessages(total),
        first.stdout.waitForCount(/ message \d+$/, total),
        second.stdout.waitForCount(/ message \d+$/, total),
      ]);
      const order = big.map((m) => `${m.username} ${FIXED_TIME_TEXT} ${m.text}`);
      assert.deepEqual(little.map((m) => `${m.username} ${FIXED_TIME_TEXT} ${m.text}`), order);
      assert.deepEqual(firstLines, order);
      assert.deepEqual(secondLines, order);
      for (let k = 0; k < KEYBOARDS; k++) {
        const mine = big.filter((m) => m.username === `k${k}`).map((m) => m.text);
        assert.deepEqual(mine, Array.from({ length: EACH }, (_, i) => `message ${i}`));
      }
      assert.ok(
        big.every((m) => JSON.stringify(m.time) === JSON.stringify(FIXED_TIME)),
        "every timestamp arrives as sent",
      );
    } finally {
      for (const keyboard of keyboards) await keyboard[Symbol.asyncDispose]();
    }
  }),
);

Deno.test(
  "a display that never reads is dropped once, while the others receive everything",
  bounded(60_000, async () => {
    // Batches of 16 KB, each awaited on the healthy displays, keep their backlogs far under
    // the limits, so only the display that never reads can pass them.
    const TEXT = "x".repeat(4000);
    const BATCH = 4;
    await using server = await ServerProcess.start([
      "--max-backlog",
      "65536",
      "--soft-backlog",
      "32768",
      "--soft-seconds",
      "1",
    ]);
    await using display = await startDisplay(server, clientArgs(server.port));
    await using healthy = await RawClient.identified(server, server.port, "display");
    healthy.read();
    await using stalled = await RawClient.identified(server, server.port, "display");
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    const dropped = / dropped \(display\): too slow/;
    let sent = 0;
    const sendBatch = async () => {
      const frames = Array.from({ length: BATCH }, () => frameOf("flood", `${sent++} ${TEXT}`));
      await keyboard.send(concatBytes(frames));
      await healthy.waitForMessages(sent);
      await display.stdout.waitForCount(/^flood /, sent);
    };
    while (server.log.matching(dropped).length === 0) {
      assert.ok(sent * TEXT.length < 64e6, "the stalled display is dropped before 64 MB are sent");
      await sendBatch();
    }
    for (let i = 0; i < 10; i++) await sendBatch();
    const drops = server.log.matching(/ dropped /);
    assert.equal(drops.length, 1, drops.join("\n"));
    assert.match(drops[0], new RegExp(` ${stalled.peer} dropped \\(display\\): too slow`));
    assert.equal(healthy.messages.length, sent);
    assert.deepEqual(healthy.messages.map((m) => Number(m.text.split(" ")[0])), [
      ...Array(sent).keys(),
    ]);
    assert.equal(display.stdout.matching(/^flood /).length, sent);
    await stalled.closedByServer();
  }),
);

Deno.test(
  "little-endian and big-endian clients talk to each other, each in its own byte order",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    const [bigProgram, littleProgram] = await startDisplays(server, [
      clientArgs(server.port),
      [...clientArgs(server.port), "--little-endian"],
    ]);
    await using _big = bigProgram;
    await using _little = littleProgram;
    await using big = (await RawClient.identified(server, server.port, "display")).read();
    await using little = (await RawClient.identified(server, server.port, "display", {
      littleEndian: true,
    })).read({ littleEndian: true });
    await using leKeyboard = await RawClient.identified(server, server.port, "keyboard", {
      littleEndian: true,
    });
    await using beKeyboard = await RawClient.identified(server, server.port, "keyboard");

    // Two connections have no order between them: the second waits for the first to arrive.
    await leKeyboard.send(frameOf("lee", "from a little-endian keyboard", true));
    await big.waitForMessages(1);
    await beKeyboard.send(frameOf("bea", "from a big-endian keyboard", false));
    const sent = [
      ["lee", "from a little-endian keyboard"],
      ["bea", "from a big-endian keyboard"],
    ];
    const expect = (littleEndian: boolean) =>
      concatBytes(sent.map(([user, text]) => frameOf(user, text, littleEndian)));
    assert.deepEqual(await big.waitForBytes(expect(false).length), expect(false));
    assert.deepEqual(await little.waitForBytes(expect(true).length), expect(true));
    for (const display of [bigProgram, littleProgram]) {
      const lines = await display.stdout.waitForCount(/ keyboard$/, 2);
      assert.deepEqual(lines, sent.map(([user, text]) => `${user} ${FIXED_TIME_TEXT} ${text}`));
    }

    // The keyboard program, in each byte order, reaches displays of the other.
    for (const [user, flags] of [["lek", ["--little-endian"]], ["bek", []]] as const) {
      const keyboard = await run("main_keyboard.ts", [
        ...clientArgs(server.port),
        "--user",
        user,
        ...flags,
      ], { input: `hello from ${user}\n` });
      assert.equal(keyboard.code, 0, keyboard.stderr);
    }
    for (const display of [bigProgram, littleProgram]) {
      await display.stdout.waitFor(displayLine("lek", "hello from lek"));
      await display.stdout.waitFor(displayLine("bek", "hello from bek"));
    }
    const [, , lek, bek] = await big.waitForMessages(4);
    const [, , lekLittle, bekLittle] = await little.waitForMessages(4);
    assert.deepEqual([lek.text, bek.text], ["hello from lek", "hello from bek"]);
    assert.deepEqual([lekLittle, bekLittle], [lek, bek]);
    const now = new Date().getFullYear();
    assert.ok(Math.abs(lek.time.year - now) <= 1, `a current year, not ${lek.time.year}`);
  }),
);

const RANDOM_USERS =
  /^(alice|bob|carol|dave|erin|frank|grace|heidi|ivan|judy) \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} .+ \(#(\d+)\)$/;

Deno.test(
  "the random-message source sends displays messages from made-up users",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start(["--random-every", "0.2"]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const lines = await display.stdout.waitForCount(/./, 3);
    for (const line of lines) assert.match(line, RANDOM_USERS);
    const numbers = lines.map((line) => Number(RANDOM_USERS.exec(line)![2]));
    assert.ok(numbers[0] < numbers[1] && numbers[1] < numbers[2], `counting up: ${numbers}`);
  }),
);

Deno.test(
  "the brief's send_message() and receive_message() work over a real connection through the server",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    const identify = (code: number) => {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setInt32(0, code);
      return bytes;
    };
    await using display = await RawClient.connect(server.port);
    assert.equal(await sendall(display.conn, identify(DISPLAY)), true);
    await server.sawIdentify(display.peer, "display");
    await using keyboard = await RawClient.connect(server.port);
    assert.equal(await sendall(keyboard.conn, identify(KEYBOARD)), true);
    await server.sawIdentify(keyboard.peer, "keyboard");

    const before = get_time_now();
    assert.equal(await send_message(keyboard.conn, "Jason", "Hello World"), true);
    const message = await receive_message(display.conn);
    assert.ok(message, "a message arrives");
    assert.equal(message.username, "Jason");
    assert.equal(message.text, "Hello World");
    assert.equal(message.date_time.length, 6);
    assert.equal(format_date_time(message.date_time).length, "YYYY-MM-DD HH:mm:ss".length);
    assert.ok(
      format_date_time(message.date_time) >= format_date_time(before),
      "stamped when sent",
    );

    assert.equal((await server.stop()).code, 0);
    assert.equal(await receive_message(display.conn), null, "null once the server is gone");
  }),
);
