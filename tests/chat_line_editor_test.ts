/** The chat's input line (lib/client/chat/line_editor.ts): keys in, text and cursor out. */

import assert from "node:assert/strict";
import type { Key, KeyName } from "../lib/client/chat/input_keys.ts";
import { HISTORY_SIZE, LineEditor } from "../lib/client/chat/line_editor.ts";

const pure = { permissions: "none" } as const;
const text = (t: string): Key => ({ type: "text", text: t });
const key = (name: KeyName, mods: { ctrl?: boolean; alt?: boolean } = {}): Key => ({
  type: "key",
  name,
  ...mods,
});
const ctrl = (letter: string): Key => ({ type: "ctrl", letter });

/** The line with a | where the cursor is. */
function show(editor: LineEditor): string {
  return editor.text.slice(0, editor.cursor) + "|" + editor.text.slice(editor.cursor);
}

function typed(line: string, ...keys: Key[]): LineEditor {
  const editor = new LineEditor();
  editor.apply(text(line));
  for (const k of keys) editor.apply(k);
  return editor;
}

Deno.test(
  "LineEditor inserts at the cursor and moves by characters, not UTF-16 units",
  pure,
  () => {
    assert.equal(show(typed("ab👋c", key("left"), key("left"), text("X"))), "abX|👋c");
    assert.equal(
      show(typed("e\u0301x", key("left"), key("left"))),
      "|e\u0301x",
      "a mark stays on its letter",
    );
    assert.equal(show(typed("abc", key("home"), key("right"))), "a|bc");
    assert.equal(show(typed("abc", ctrl("a"))), "|abc");
    assert.equal(show(typed("abc", ctrl("a"), ctrl("e"))), "abc|");
  },
);

Deno.test("LineEditor deletes with Backspace, Delete, Ctrl+K, Ctrl+U and Ctrl+W", pure, () => {
  assert.equal(show(typed("ab👋", key("backspace"))), "ab|");
  assert.equal(show(typed("abc", key("home"), key("delete"))), "|bc");
  assert.equal(show(typed("hello world", key("left"), key("left"), ctrl("k"))), "hello wor|");
  assert.equal(show(typed("hello world", key("left"), key("left"), ctrl("u"))), "|ld");
  assert.equal(show(typed("hello big world  ", ctrl("w"))), "hello big |");
  assert.equal(show(typed("one two", key("backspace", { alt: true }))), "one |");
});

Deno.test("LineEditor moves by words with Alt+B and Alt+F", pure, () => {
  assert.equal(show(typed("one two three", key("word-left"))), "one two |three");
  assert.equal(show(typed("one two three", key("word-left"), key("word-left"))), "one |two three");
  assert.equal(
    show(typed("one two three", key("home"), key("word-right"), key("word-right"))),
    "one two| three",
  );
  assert.equal(show(typed("one two", key("left", { ctrl: true }))), "one |two");
});

Deno.test(
  "LineEditor's Enter submits the line and empties it; Ctrl+D quits only on an empty line",
  pure,
  () => {
    const editor = typed("hi there");
    assert.deepEqual(editor.apply(key("enter")), { type: "submit", lines: ["hi there"] });
    assert.equal(show(editor), "|");
    assert.deepEqual(editor.apply(ctrl("d")), { type: "quit" });
    editor.apply(text("ab"));
    editor.apply(key("home"));
    assert.deepEqual(editor.apply(ctrl("d")), { type: "none" });
    assert.equal(show(editor), "|b", "Ctrl+D deletes under the cursor on a non-empty line");
    assert.deepEqual(editor.apply(ctrl("c")), { type: "quit" });
  },
);

Deno.test("LineEditor walks the sent lines with Up and Down and gives the draft back", pure, () => {
  const editor = new LineEditor();
  for (const line of ["first", "second", "third"]) editor.remember(line);
  editor.apply(text("draft"));
  editor.apply(key("up"));
  assert.equal(show(editor), "third|");
  editor.apply(key("up"));
  editor.apply(key("up"));
  editor.apply(key("up"));
  assert.equal(show(editor), "first|", "Up stops at the oldest");
  editor.apply(key("down"));
  assert.equal(editor.text, "second");
  editor.apply(key("down"));
  editor.apply(key("down"));
  assert.equal(show(editor), "draft|");
  editor.apply(key("down"));
  assert.equal(editor.text, "draft", "Down stops at the draft");
});

Deno.test(`LineEditor keeps the last ${HISTORY_SIZE} sent lines, without repeats`, pure, () => {
  const editor = new LineEditor();
  for (let i = 0; i < HISTORY_SIZE + 20; i++) editor.remember(`line ${i}`);
  editor.remember(`line ${HISTORY_SIZE + 19}`);
  editor.remember("");
  assert.equal(editor.history.length, HISTORY_SIZE);
  assert.equal(editor.history[0], "line 20");
  assert.equal(editor.history.at(-1), `line ${HISTORY_SIZE + 19}`);
});

Deno.test(
  "LineEditor submits every complete line of a paste and keeps the rest in the input",
  pure,
  () => {
    const editor = typed("say: ");
    const result = editor.apply({ type: "paste", text: "one\r\ntwo\nthree" });
    assert.deepEqual(result, { type: "submit", lines: ["say: one", "two"] });
    assert.equal(show(editor), "three|");
    assert.deepEqual(typed("x").apply({ type: "paste", text: "no newline" }), { type: "none" });
  },
);

Deno.test("LineEditor leaves scrolling keys to the chat", pure, () => {
  const editor = new LineEditor();
  assert.deepEqual(editor.apply(key("pageup")), { type: "unhandled", key: key("pageup") });
  const shiftUp: Key = { type: "key", name: "up", shift: true };
  assert.deepEqual(editor.apply(shiftUp), { type: "unhandled", key: shiftUp });
});
