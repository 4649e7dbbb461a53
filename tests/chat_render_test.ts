/**
 * The chat's screen as a pure function of its state (lib/client/chat/state.ts, render.ts):
 * layout, wrapping, colours, scrolling and the status bar, all without a terminal.
 */

import assert from "node:assert/strict";
import type { Message } from "../lib/protocol/frame.ts";
import type { Key } from "../lib/client/chat/input_keys.ts";
import {
  layoutScreen,
  paintScreen,
  PALETTE,
  plainText,
  type ScreenSize,
} from "../lib/client/chat/render.ts";
import { ChatState, type ChatStateOptions, PASTE_CONFIRM_LINES } from "../lib/client/chat/state.ts";
import { nameColor } from "../lib/protocol/name_colour.ts";
import { textWidth } from "../lib/client/chat/width.ts";

const pure = { permissions: "none" } as const;
const SIZE: ScreenSize = { columns: 60, rows: 8 };

function message(username: string, text: string, day = 2, second = 5): Message {
  return { username, time: { year: 2026, month: 12, day, hour: 14, minute: 3, second }, text };
}

function chat(options: Partial<ChatStateOptions> = {}): ChatState {
  const state = new ChatState({
    server: "127.0.0.1:55200",
    tls: false,
    username: "alice",
    paletteSize: PALETTE.length,
    ...options,
  });
  state.status = { state: "connected" };
  return state;
}

function screenText(state: ChatState, size: ScreenSize = SIZE): string[] {
  return layoutScreen(state, size).lines.map(plainText);
}

const numbered = (count: number) =>
  Array.from({ length: count }, (_, i) => message("bob", `line ${i}`));

Deno.test(
  "the screen is the conversation, a status bar and the input line, in that order",
  pure,
  () => {
    const state = chat();
    state.add([message("bob", "Hello World"), message("alice", "hi bob")]);
    const lines = screenText(state);
    assert.equal(lines.length, SIZE.rows);
    assert.deepEqual(lines.slice(-5), [
      "-- 2026-12-02 --",
      "14:03:05 bob Hello World",
      "14:03:05 alice hi bob",
      " connected | 2 messages | 127.0.0.1:55200 plain ".padEnd(60),
      "alice> ",
    ]);
    assert.deepEqual(lines.slice(0, 3), ["", "", ""], "a short conversation sits at the bottom");
  },
);

Deno.test("a date line separates messages of different days", pure, () => {
  const state = chat();
  state.add([message("bob", "late", 1), message("bob", "early", 2)]);
  const lines = screenText(state);
  assert.deepEqual(lines.slice(2, 6), [
    "-- 2026-12-01 --",
    "14:03:05 bob late",
    "-- 2026-12-02 --",
    "14:03:05 bob early",
  ]);
});

Deno.test("--brief-format shows the display's own line and no date lines", pure, () => {
  const state = chat({ briefFormat: true });
  state.add([message("bob", "Hello World")]);
  assert.equal(screenText(state).at(-3), "bob 2026-12-02 14:03:05 Hello World");
});

Deno.test("a long message wraps at the width with a hanging indent under its text", pure, () => {
  const state = chat();
  state.add([message("bob", "one two three four five six seven eight nine ten eleven")]);
  const lines = screenText(state, { columns: 40, rows: 8 }).slice(-5, -2);
  assert.equal(lines.at(-2), "14:03:05 bob one two three four five six");
  assert.equal(lines.at(-1), "             seven eight nine ten eleven");
});

Deno.test("wide characters and emoji count two cells: no line runs past the width", pure, () => {
  const state = chat();
  state.add([message("bob", "世界".repeat(20) + "👋".repeat(10))]);
  const lines = screenText(state, { columns: 40, rows: 8 });
  for (const line of lines) assert.ok(textWidth(line) <= 40, `${line} is too wide`);
  const body = lines.filter((line) => line.includes("世") || line.includes("👋"));
  assert.ok(body.length >= 3, "the message took several lines");
  assert.equal(textWidth(body[0]), 13 + 26, "13 cells of head, then 13 wide characters");
});

Deno.test("control characters in names and texts are neutralised as the display does", pure, () => {
  const state = chat({ username: "me" });
  state.add([message("ev\x1bil", "\x1b[2J\x1b]0;pwned\x07 \u202egnp.exe")]);
  const line = screenText(state, { columns: 120, rows: 8 }).find((l) => l.includes("pwned"))!;
  assert.ok(line.includes("ev\\x1bil"));
  assert.ok(line.includes("\\x1b[2J\\x1b]0;pwned\\x07 \\u202egnp.exe"), line);
  assert.ok(
    !paintScreen(layoutScreen(state, { columns: 120, rows: 8 }), { color: true }).includes("\x1b]"),
  );
});

Deno.test(
  `names get a stable colour from a palette of ${PALETTE.length}; the own name is underlined`,
  pure,
  () => {
    assert.ok(PALETTE.length >= 12);
    assert.equal(nameColor("bob", PALETTE.length), nameColor("bob", PALETTE.length));
    const colours = new Set(
      Array.from({ length: 200 }, (_, i) => nameColor(`user${i}`, PALETTE.length)),
    );
    assert.equal(colours.size, PALETTE.length, "names spread over the whole palette");
    const state = chat();
    state.add([message("bob", "hi"), message("alice", "hello")]);
    const painted = paintScreen(layoutScreen(state, SIZE), { color: true });
    assert.ok(
      painted.includes(`\x1b[38;5;${PALETTE[nameColor("bob", PALETTE.length)]}mbob\x1b[0m`),
    );
    assert.ok(
      painted.includes(`\x1b[1;4;38;5;${PALETTE[nameColor("alice", PALETTE.length)]}malice\x1b[0m`),
    );
  },
);

Deno.test("without colour (NO_COLOR, --no-color) no colour code is written", pure, () => {
  const state = chat();
  state.add([message("bob", "hi"), message("alice", "hello")]);
  const painted = paintScreen(layoutScreen(state, SIZE), { color: false });
  assert.doesNotMatch(painted, /\[[0-9;]*3[0-9];|38;5;/);
  assert.ok(painted.includes("\x1b[1;4malice"), "the own name is still marked");
});

Deno.test(
  "PageUp scrolls back; new messages then leave the view still and count as unread",
  pure,
  () => {
    const state = chat();
    state.add(numbered(30));
    const height = SIZE.rows - 2;
    assert.equal(screenText(state).at(-3), "14:03:05 bob line 29");
    state.press({ type: "key", name: "pageup" }, height);
    const before = screenText(state).slice(0, height);
    assert.equal(before.at(-1), "14:03:05 bob line 24");
    state.add([message("carol", "new one"), message("carol", "new two")]);
    assert.deepEqual(screenText(state).slice(0, height), before, "the view did not move");
    assert.match(screenText(state).at(-2)!, /scrolled up, 2 unread, End: live/);
    assert.match(screenText(state).at(-2)!, /32 messages/);
    state.press({ type: "key", name: "end" }, height);
    assert.equal(state.scroll, 0);
    assert.equal(screenText(state).at(-3), "14:03:05 carol new two");
    assert.doesNotMatch(screenText(state).at(-2)!, /unread/);
  },
);

Deno.test(
  "Shift+Up and Ctrl+Down scroll by one line; the view stops at the oldest line",
  pure,
  () => {
    const state = chat();
    state.add(numbered(10));
    const height = SIZE.rows - 2;
    state.press({ type: "key", name: "up", shift: true }, height);
    assert.equal(screenText(state).at(-3), "14:03:05 bob line 8");
    state.press({ type: "key", name: "down", ctrl: true }, height);
    assert.equal(screenText(state).at(-3), "14:03:05 bob line 9");
    for (let i = 0; i < 50; i++) state.press({ type: "key", name: "up", ctrl: true }, height);
    assert.equal(screenText(state)[0], "-- 2026-12-02 --", "the top is the first line");
  },
);

Deno.test("the scrollback keeps at least 5000 lines", pure, () => {
  const state = chat();
  state.add(numbered(6000));
  assert.ok(state.totalLines() >= 5000);
  for (let i = 0; i < 2000; i++) state.press({ type: "key", name: "pageup" }, 6);
  assert.equal(screenText(state)[0], "-- 2026-12-02 --");
  assert.equal(screenText(state)[1], "14:03:05 bob line 0");
});

Deno.test("a resize keeps a scrolled-up view on the same messages", pure, () => {
  const state = chat();
  state.add(Array.from({ length: 40 }, (_, i) => message("bob", `line ${i} and some more words`)));
  state.scrollBy(10, 6);
  assert.equal(screenText(state).slice(0, 6).at(-1), "14:03:05 bob line 29 and some more words");
  const narrow = screenText(state, { columns: 30, rows: 10 }).slice(0, 8);
  assert.ok(state.scroll >= 20, "ten messages of two lines below the view");
  assert.equal(narrow.at(-1), "             more words", narrow.join("\n"));
  assert.equal(narrow.at(-2), "14:03:05 bob line 29 and some");
});

Deno.test(
  "the input line shows the prompt, and scrolls sideways to keep the cursor on screen",
  pure,
  () => {
    const state = chat();
    state.press({ type: "text", text: "x".repeat(60) }, 6);
    const screen = layoutScreen(state, SIZE);
    assert.equal(screen.cursor.row, SIZE.rows - 1);
    assert.equal(screen.cursor.column, SIZE.columns - 1);
    assert.equal(plainText(screen.lines.at(-1)!), "alice> " + "x".repeat(SIZE.columns - 8));
    state.press({ type: "key", name: "home" }, 6);
    assert.equal(layoutScreen(state, SIZE).cursor.column, "alice> ".length);
  },
);

Deno.test("without --user the input line asks for the username first", pure, () => {
  const state = chat({ username: undefined });
  assert.equal(screenText(state).at(-1), "Username: ");
  assert.deepEqual(state.press({ type: "key", name: "enter" }, 6), { type: "none" });
  state.press({ type: "text", text: " dave " }, 6);
  assert.deepEqual(state.press({ type: "key", name: "enter" }, 6), {
    type: "username",
    name: "dave",
  });
  assert.equal(screenText(state).at(-1), "dave> ");
  assert.deepEqual(state.editor.history, [], "the username is not history");
});

Deno.test(
  `a paste of more than ${PASTE_CONFIRM_LINES} lines asks once; y sends them all`,
  pure,
  () => {
    const state = chat();
    const lines = Array.from({ length: 7 }, (_, i) => `p${i}`);
    assert.deepEqual(state.press({ type: "paste", text: lines.join("\n") + "\n" }, 6), {
      type: "none",
    });
    assert.equal(screenText(state).at(-1), "Send 7 pasted lines? (y/n) ");
    assert.deepEqual(state.press({ type: "text", text: "y" }, 6), { type: "send", lines });
    assert.equal(screenText(state).at(-1), "alice> ");
    state.press({ type: "paste", text: lines.join("\n") + "\n" }, 6);
    assert.deepEqual(state.press({ type: "text", text: "n" }, 6), { type: "none" });
    assert.match(
      screenText(state, { columns: 100, rows: 8 }).at(-2)!,
      /The 7 pasted lines were not sent/,
    );
    const few = ["a", "b", "c"];
    assert.deepEqual(state.press({ type: "paste", text: few.join("\n") + "\n" }, 6), {
      type: "send",
      lines: few,
    });
  },
);

Deno.test(
  "the status bar says TLS, reconnecting and the attempt; Enter then keeps the line",
  pure,
  () => {
    const state = chat({ tls: true });
    state.status = {
      state: "reconnecting",
      attempt: 3,
      reason: "the server closed the connection",
    };
    state.press({ type: "text", text: "keep me" }, 6);
    const enter: Key = { type: "key", name: "enter" };
    assert.deepEqual(state.press(enter, 6), { type: "none" });
    assert.equal(state.editor.text, "keep me");
    const bar = screenText(state, { columns: 200, rows: 8 }).at(-2)!;
    assert.match(bar, /^ Not connected: the line is kept; press Enter again once connected\. \| /);
    assert.match(
      bar,
      / \| reconnecting \(attempt 3\): the server closed the connection \| 0 messages \| 127\.0\.0\.1:55200 TLS +$/,
    );
    state.status = { state: "connected" };
    assert.deepEqual(state.press(enter, 6), { type: "send", lines: ["keep me"] });
  },
);

Deno.test("an empty Enter sends nothing; Ctrl+C quits", pure, () => {
  const state = chat();
  assert.deepEqual(state.press({ type: "key", name: "enter" }, 6), { type: "none" });
  assert.deepEqual(state.press({ type: "ctrl", letter: "c" }, 6), { type: "quit" });
});
