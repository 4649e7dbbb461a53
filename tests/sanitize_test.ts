/** Control characters neutralised before they reach a terminal (lib/protocol/sanitize.ts). */

import assert from "node:assert/strict";
import { neutralizeControls } from "../lib/protocol/sanitize.ts";

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

test("neutralizeControls() escapes ESC, CR, BEL and DEL as \\xNN", () => {
  assert.equal(neutralizeControls("a\x1b[2Jb"), "a\\x1b[2Jb");
  assert.equal(neutralizeControls("over\rwrite"), "over\\x0dwrite");
  assert.equal(neutralizeControls("ding\x07"), "ding\\x07");
  assert.equal(neutralizeControls("\x7f"), "\\x7f");
});

test("neutralizeControls() escapes NUL, tab, newline and the C1 CSI \\x9b", () => {
  assert.equal(neutralizeControls("\x00\t\n"), "\\x00\\x09\\x0a");
  assert.equal(neutralizeControls("\x9b31m red"), "\\x9b31m red");
  assert.equal(neutralizeControls("\x80\x9f"), "\\x80\\x9f");
});

test("neutralizeControls() escapes bidi overrides and line separators as \\uNNNN", () => {
  assert.equal(neutralizeControls("abc\u202edef"), "abc\\u202edef");
  assert.equal(neutralizeControls("\u202a\u2066\u2069"), "\\u202a\\u2066\\u2069");
  assert.equal(neutralizeControls("one\u2028two\u2029"), "one\\u2028two\\u2029");
});

test("neutralizeControls() leaves ordinary text, accents, CJK and emoji alone", () => {
  for (
    const text of [
      "Hello World",
      "",
      "Zoë héllo ¡¿ ÿ",
      "日本語のテキスト",
      "👋 👩‍👩‍👧 🇳🇿",
      "a\\x1b literal backslash",
      "\u00a0non-breaking space",
    ]
  ) {
    assert.equal(neutralizeControls(text), text);
  }
});

test("neutralizeControls() gives the same answer on repeated calls", () => {
  const input = "\x1b]0;title\x07 \x1b]0;again\x07";
  const expected = "\\x1b]0;title\\x07 \\x1b]0;again\\x07";
  for (let i = 0; i < 3; i++) assert.equal(neutralizeControls(input), expected);
});
