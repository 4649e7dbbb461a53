/**
 * The chat (main_chat.ts) end to end, in a real terminal: tmux on a private socket per test,
 * keys typed with send-keys, the screen read with capture-pane, against the real server and
 * next to the real display and keyboard programs.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CertificateDir,
  clientArgs,
  displayLine,
  run,
  ServerProcess,
  startDisplay,
  startKeyboard,
} from "./helpers/processes.ts";
import { type TmuxOptions, TmuxProgram } from "./helpers/tmux.ts";
import { bounded } from "../tools/harness/wait.ts";
import { textWidth } from "../lib/client/chat/width.ts";

const IDENTIFIED = / identified as (display|keyboard)\b/;
/** A message row: `HH:mm:ss user text`. */
const MESSAGE_ROW = /^\d{2}:\d{2}:\d{2} (\S+) (.*)$/;

/** Starts a chat in tmux and waits until the server has seen both of its connections. */
async function startChat(
  server: ServerProcess,
  args: string[],
  options: TmuxOptions = {},
): Promise<TmuxProgram> {
  const before = server.log.matching(IDENTIFIED).length;
  const chat = await TmuxProgram.start("main_chat.ts", args, options);
  try {
    await server.log.waitForCount(IDENTIFIED, before + 2);
    await chat.waitForLine(/ connected \| /);
  } catch (error) {
    await chat[Symbol.asyncDispose]();
    throw error;
  }
  return chat;
}

/** The message rows on screen as `user text`, top to bottom. */
function conversation(lines: string[]): string[] {
  return lines.flatMap((line) => {
    const match = MESSAGE_ROW.exec(line);
    return match ? [`${match[1]} ${match[2]}`] : [];
  });
}

/** The status bar: the row before the last. */
function statusBar(lines: string[]): string {
  return lines.at(-2) ?? "";
}

Deno.test(
  "two chats and a plain display see the same conversation, in the same order",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    await using alice = await startChat(server, [...clientArgs(server.port), "--user", "alice"]);
    await using bob = await startChat(server, [...clientArgs(server.port), "--user", "bob"]);
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "carol"]);
    // Typed without waiting in between, so the server's order is the only order there is.
    for (let i = 1; i <= 4; i++) {
      await alice.type(`alice says ${i}`);
      await alice.press("Enter");
      await bob.type(`bob says ${i}`);
      await bob.press("Enter");
      await keyboard.write(`carol says ${i}\n`);
    }
    const shown = await display.stdout.waitForCount(/ says \d$/, 12);
    const order = shown.map((line) => line.replace(/^(\S+) \S+ \S+ /, "$1 "));
    for (const chat of [alice, bob]) {
      const lines = await chat.waitFor(
        "all twelve messages",
        (l) => conversation(l).length >= 12,
      );
      assert.deepEqual(conversation(lines), order);
      assert.match(statusBar(lines), /connected \| 12 messages \| 127\.0\.0\.1:\d+ plain/);
    }
    assert.equal(new Set(order).size, 12);
  }),
);

Deno.test(
  "typing with the editing keys sends the edited line; Up brings sent lines back",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    // No --user: the input line asks for the name first.
    await using chat = await startChat(server, clientArgs(server.port));
    await chat.waitFor("the username prompt", (l) => l.at(-1) === "Username:");
    await chat.type("dave");
    await chat.press("Enter");
    await chat.waitFor("dave's prompt", (l) => l.at(-1) === "dave>");
    const sent: [string[], string][] = [
      // Left/Right, Home/End
      [[
        "T:helo wrld",
        "Left",
        "Left",
        "Left",
        "T:o",
        "Home",
        "Right",
        "Right",
        "Right",
        "T:l",
        "End",
        "T:!",
      ], "hello world!"],
      // Ctrl+A, Ctrl+E, Ctrl+K, Ctrl+U
      [[
        "T:junk keep tail",
        "C-a",
        "C-k",
        "T:keep tail",
        "Left",
        "Left",
        "Left",
        "Left",
        "C-u",
        "C-e",
        "T:!",
      ], "tail!"],
      // Ctrl+W, Alt+B, Alt+F, Backspace, Delete
      [[
        "T:one two three",
        "C-w",
        "T:3",
        "M-b",
        "M-b",
        "T:1 ",
        "M-f",
        "BSpace",
        "T:o",
        "Home",
        "DC",
        "T:O",
      ], "One 1 two 3"],
    ];
    for (const [keys, expected] of sent) {
      for (const key of keys) {
        if (key.startsWith("T:")) await chat.type(key.slice(2));
        else await chat.press(key);
      }
      await chat.press("Enter");
      await display.stdout.waitFor(displayLine("dave", expected));
    }
    await chat.press("Up");
    await chat.waitFor("the last line back", (l) => l.at(-1) === "dave> One 1 two 3");
    await chat.press("Up", "Up");
    await chat.waitFor("the first line back", (l) => l.at(-1) === "dave> hello world!");
    await chat.press("Down");
    await chat.waitFor("the second line", (l) => l.at(-1) === "dave> tail!");
    await chat.press("Enter");
    await display.stdout.waitForCount(displayLine("dave", "tail!"), 2);
    const own = await chat.waitFor("own messages", (l) => conversation(l).length === 4);
    assert.deepEqual(conversation(own), [
      "dave hello world!",
      "dave tail!",
      "dave One 1 two 3",
      "dave tail!",
    ]);
  }),
);

Deno.test(
  "a paste of more than five lines asks once, then sends them all in order",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    await using chat = await startChat(server, [...clientArgs(server.port), "--user", "erin"]);
    const lines = Array.from({ length: 7 }, (_, i) => `pasted ${i}`);
    await chat.paste(lines.join("\n") + "\n");
    await chat.waitFor("the question", (l) => l.at(-1) === "Send 7 pasted lines? (y/n)");
    assert.equal(display.stdout.all.length, 0, "nothing is sent before the answer");
    await chat.type("y");
    const shown = await display.stdout.waitForCount(/^erin /, 7);
    shown.forEach((line, i) => assert.match(line, displayLine("erin", lines[i])));
  }),
);

Deno.test(
  "scrolling back holds the view while messages arrive, counts them, and End returns to live",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using chat = await startChat(server, [...clientArgs(server.port), "--user", "fay"], {
      columns: 60,
      rows: 12,
    });
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "gus"]);
    await keyboard.write(Array.from({ length: 40 }, (_, i) => `old ${i}\n`).join(""));
    await chat.waitFor("the 40th message", (l) => conversation(l).at(-1) === "gus old 39");
    await chat.press("PageUp");
    const held = await chat.waitFor("a page back", (l) => conversation(l).at(-1) === "gus old 30");
    await keyboard.write("new 1\nnew 2\nnew 3\n");
    const after = await chat.waitFor("3 unread", (l) => /scrolled up, 3 unread/.test(statusBar(l)));
    assert.deepEqual(after.slice(0, 10), held.slice(0, 10), "the view did not move");
    assert.match(statusBar(after), /43 messages/);
    await chat.press("S-Up");
    await chat.waitFor("one line further", (l) => conversation(l).at(-1) === "gus old 29");
    await chat.press("C-Down");
    await chat.waitFor("one line back", (l) => conversation(l).at(-1) === "gus old 30");
    await chat.press("PageDown");
    await chat.waitFor("a page forward", (l) => conversation(l).at(-1) === "gus old 39");
    await chat.press("End");
    const live = await chat.waitFor("live", (l) => conversation(l).at(-1) === "gus new 3");
    assert.doesNotMatch(statusBar(live), /unread/);
  }),
);

Deno.test(
  "a resize redraws at the new size, wrapping again, keeping the input and the scroll position",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using chat = await startChat(server, [...clientArgs(server.port), "--user", "hal"]);
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "ivy"]);
    const long = "a long message that needs more than one line at forty columns, surely";
    await keyboard.write(Array.from({ length: 30 }, (_, i) => `m${i}\n`).join("") + long + "\n");
    await chat.waitForLine(/^ +surely$/);
    await chat.type("half typed");
    await chat.resize(40, 10);
    const small = await chat.waitFor(
      "the 40x10 layout",
      (l) => l.length === 10 && l.at(-1) === "hal> half typed",
    );
    for (const line of small) assert.ok(textWidth(line) <= 40, `too wide: ${line}`);
    assert.match(small.at(-3)!, /^ {13}\S/, "the message wraps with a hanging indent");
    await chat.press("PageUp");
    const back = await chat.waitFor("scrolled up", (l) => /scrolled up/.test(statusBar(l)));
    const top = conversation(back)[0];
    await chat.resize(100, 10);
    const wide = await chat.waitFor(
      "the 100x10 layout",
      (l) => l[0].length > 0 && statusBar(l).length > 60,
    );
    assert.match(statusBar(wide), /scrolled up/, "still scrolled up after the resize");
    assert.ok(conversation(wide).includes(top), `${top} is still in view`);
    assert.equal(wide.at(-1), "hal> half typed");
    assert.equal(await chat.format("#{cursor_x}"), String("hal> half typed".length));
  }),
);

Deno.test(
  "wide characters wrap at the edge, and an escape-sequence message is shown, not obeyed",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using chat = await startChat(server, [...clientArgs(server.port), "--user", "jo"], {
      columns: 60,
      rows: 12,
    });
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "kim"]);
    const title = await chat.format("#{pane_title}");
    await keyboard.write(`${"世界".repeat(12)}👋👋\n`);
    await keyboard.write("\x1b[2J\x1b]2;pwned\x07\x1b[31mred\n");
    const shown = await chat.waitForLine(/red$/);
    assert.match(shown, /^\d{2}:\d{2}:\d{2} kim \\x1b\[2J\\x1b\]2;pwned\\x07\\x1b\[31mred$/);
    const screen = await chat.screen();
    const wide = screen.filter((line) => /[世界👋]/.test(line));
    assert.ok(wide.length >= 2, `the wide message took ${wide.length} rows`);
    for (const line of screen) assert.ok(textWidth(line) <= 60, `too wide: ${line}`);
    assert.equal(
      wide.map((line) => line.replace(/^\S+ kim |^ +/, "")).join(""),
      `${"世界".repeat(12)}👋👋`,
    );
    assert.equal(await chat.format("#{pane_title}"), title, "the title was not changed");
    assert.ok(screen.some((line) => line.startsWith("-- ")), "the screen was not cleared");
  }),
);

Deno.test(
  "with the server gone the chat says it is reconnecting, keeps the input, and carries on when it is back",
  bounded(90_000, async () => {
    const first = await ServerProcess.start([]);
    const port = first.port;
    let second: ServerProcess | undefined;
    try {
      await using chat = await startChat(first, [...clientArgs(port), "--user", "lee"]);
      await first[Symbol.asyncDispose]();
      await chat.waitFor(
        "reconnecting",
        (l) => /^ reconnecting \(attempt \d+\)/.test(statusBar(l)),
      );
      await chat.type("typed while away");
      await chat.press("Enter");
      await chat.waitFor(
        "the line kept",
        (l) => /Not connected: the line is kept/.test(statusBar(l)),
      );
      await chat.waitFor(
        "attempt 2",
        (l) => /reconnecting \(attempt [2-9]/.test(statusBar(l)),
        20_000,
      );
      second = await ServerProcess.start([], { port });
      await second.log.waitForCount(IDENTIFIED, 2, 30_000);
      await chat.waitFor("connected again", (l) => /^ connected \| /.test(statusBar(l)), 30_000);
      await using display = await startDisplay(second, clientArgs(port));
      assert.equal((await chat.screen()).at(-1), "lee> typed while away");
      await chat.press("Enter");
      await display.stdout.waitFor(displayLine("lee", "typed while away"));
      await chat.waitFor(
        "its own message back",
        (l) => conversation(l).includes("lee typed while away"),
      );
    } finally {
      await first[Symbol.asyncDispose]();
      await second?.[Symbol.asyncDispose]();
    }
  }),
);

for (
  const [how, keys] of [["Ctrl+C", ["C-c"]], ["Ctrl+D on an empty line", ["C-d"]], [
    "SIGTERM",
    [],
  ]] as const
) {
  Deno.test(
    `quitting with ${how} restores the terminal (stty -a, main screen, cursor) and exits 0`,
    bounded(60_000, async () => {
      await using server = await ServerProcess.start([]);
      await using chat = await startChat(server, [...clientArgs(server.port), "--user", "max"]);
      assert.equal(
        await chat.format("#{alternate_on}"),
        "1",
        "the chat draws on the alternate screen",
      );
      if (keys.length > 0) {
        if (how.includes("Ctrl+D")) {
          await chat.type("x");
          await chat.press("C-d");
          await chat.press("Left", "C-d");
          await chat.waitFor("the line empty", (l) => l.at(-1) === "max>");
        }
        await chat.press(...keys);
      } else {
        Deno.kill(await chat.programPid(), "SIGTERM");
      }
      assert.equal(await chat.exitCode(), 0);
      const { before, after } = await chat.stty();
      assert.equal(after, before);
      assert.match(after, / icanon /);
      assert.match(after, / echo /);
      assert.equal(await chat.format("#{alternate_on}"), "0");
      assert.equal(await chat.format("#{cursor_flag}"), "1", "the cursor is visible");
      await server.log.waitForCount(/ disconnected \((display|keyboard)\): closed by peer/, 2);
    }),
  );
}

Deno.test(
  "the server gone with --no-reconnect: the terminal is restored and one sentence is left, exit 1",
  bounded(60_000, async () => {
    const server = await ServerProcess.start([]);
    try {
      await using chat = await startChat(server, [
        ...clientArgs(server.port),
        "--user",
        "ned",
        "--no-reconnect",
      ]);
      await server[Symbol.asyncDispose]();
      assert.equal(await chat.exitCode(), 1);
      const screen = (await chat.screen()).filter((line) => line !== "");
      assert.deepEqual(screen, ["The server closed the connection.", "program exited with 1"]);
      const { before, after } = await chat.stty();
      assert.equal(after, before);
      assert.equal(await chat.format("#{alternate_on}"), "0");
    } finally {
      await server[Symbol.asyncDispose]();
    }
  }),
);

Deno.test(
  "a mistake (nothing listening, an untrusted certificate, a TLS port) is one sentence on the ordinary screen",
  bounded(60_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.start(certs.serverArgs);
    const port = server.port;
    const cases: [string[], RegExp][] = [
      [["--port", "1"], /^Cannot connect to 127\.0\.0\.1:1: connection refused/],
      [["--port", String(port), "--tls"], /certificate is not trusted \(pass --ca/],
      [
        ["--port", String(port), "--user", "x"],
        /^The server answered with TLS: connect with --tls/,
      ],
    ];
    for (const [args, sentence] of cases) {
      await using chat = await TmuxProgram.start("main_chat.ts", ["--host", "127.0.0.1", ...args], {
        columns: 200,
      });
      assert.equal(await chat.exitCode(), 1);
      const screen = (await chat.screen()).filter((line) => line !== "");
      assert.equal(screen.length, 2, screen.join("\n"));
      assert.match(screen[0], sentence);
      const { before, after } = await chat.stty();
      assert.equal(after, before);
    }
  }),
);

Deno.test(
  "over TLS the chat verifies the server and says TLS in its status bar",
  bounded(60_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.start(certs.serverArgs);
    await using display = await startDisplay(server, clientArgs(server.port, { ca: certs.caFile }));
    await using chat = await startChat(server, [
      ...clientArgs(server.port, { ca: certs.caFile }),
      "--user",
      "olga",
    ]);
    assert.match(statusBar(await chat.screen()), /127\.0\.0\.1:\d+ TLS/);
    await chat.type("secret hello");
    await chat.press("Enter");
    await display.stdout.waitFor(displayLine("olga", "secret hello"));
  }),
);

Deno.test(
  "names are coloured, and NO_COLOR leaves the colours out",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using plain = await startChat(server, [...clientArgs(server.port), "--user", "pat"], {
      env: { NO_COLOR: "1" },
    });
    await using colored = await startChat(server, [...clientArgs(server.port), "--user", "quinn"]);
    await plain.type("hi from pat");
    await plain.press("Enter");
    for (const chat of [plain, colored]) await chat.waitForLine(/pat hi from pat$/);
    assert.match(await colored.screenWithColors(), /\[38;5;\d+mpat/);
    assert.doesNotMatch(await plain.screenWithColors(), /\[38;5;\d+m/);
  }),
);

Deno.test(
  "without a terminal the chat works in line mode: lines in, display lines out, then it exits",
  bounded(60_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const result = await run("main_chat.ts", clientArgs(server.port), {
      input: "rita\nfirst line\nsecond line\n",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2, result.stdout);
    assert.match(lines[0], displayLine("rita", "first line"));
    assert.match(lines[1], displayLine("rita", "second line"));
    await display.stdout.waitFor(displayLine("rita", "second line"));
    assert.ok(!result.stdout.includes("\x1b"), "nothing drawn");
  }),
);

Deno.test(
  "--help describes every key",
  bounded(30_000, async () => {
    const { code, stdout } = await run("main_chat.ts", ["--help"]);
    assert.equal(code, 0);
    for (
      const key of [
        "Enter",
        "Left",
        "Right",
        "Alt+B",
        "Alt+F",
        "Home",
        "Ctrl+A",
        "End",
        "Ctrl+E",
        "Backspace",
        "Delete",
        "Ctrl+K",
        "Ctrl+U",
        "Ctrl+W",
        "Up",
        "Down",
        "PageUp",
        "PageDown",
        "Shift+Up",
        "Ctrl+Up",
        "Ctrl+C",
        "Ctrl+D",
        "--reconnect",
        "--user",
        "--tls",
        "--ca",
        "--little-endian",
        "--no-color",
      ]
    ) {
      assert.ok(stdout.includes(key), `--help does not mention ${key}`);
    }
  }),
);
