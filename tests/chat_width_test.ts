/** Cell widths and wrapping for the chat (lib/client/chat/width.ts): pure, no terminal. */

import assert from "node:assert/strict";
import { codePointWidth, fitWidth, textWidth, wrapText } from "../lib/client/chat/width.ts";

const pure = { permissions: "none" } as const;

Deno.test(
  "textWidth() counts ASCII as one cell, CJK and emoji as two, combining marks as none",
  pure,
  () => {
    assert.equal(textWidth("hello"), 5);
    assert.equal(textWidth("世界"), 4);
    assert.equal(textWidth("한국"), 4);
    assert.equal(textWidth("ｆｕｌｌ"), 8);
    assert.equal(textWidth("👋🎉"), 4);
    assert.equal(textWidth("e\u0301"), 1, "e + combining acute");
    assert.equal(textWidth("\u200d\ufe0f"), 0, "joiner and variation selector");
    assert.equal(codePointWidth("é"), 1);
  },
);

Deno.test(
  "fitWidth() never cuts a wide character in half and keeps marks with their letter",
  pure,
  () => {
    assert.deepEqual(fitWidth("a世界", 2), { text: "a", cells: 1 });
    assert.deepEqual(fitWidth("a世界", 3), { text: "a世", cells: 3 });
    assert.deepEqual(fitWidth("e\u0301x", 1), { text: "e\u0301", cells: 1 });
  },
);

Deno.test("wrapText() breaks at the last space that fits, and drops it", pure, () => {
  assert.deepEqual(wrapText("the quick brown fox", 10), ["the quick", "brown fox"]);
  assert.deepEqual(wrapText("short", 10), ["short"]);
  assert.deepEqual(wrapText("", 10), [""]);
});

Deno.test("wrapText() cuts a word longer than the line between characters", pure, () => {
  assert.deepEqual(wrapText("abcdefghij", 4), ["abcd", "efgh", "ij"]);
});

Deno.test(
  "wrapText() counts wide characters as two cells, and takes a width for later lines",
  pure,
  () => {
    const lines = wrapText("世界世界世界", 5);
    assert.deepEqual(lines, ["世界", "世界", "世界"]);
    for (const line of lines) assert.ok(textWidth(line) <= 5);
    assert.deepEqual(wrapText("aaaa bbbb cccc", 9, 4), ["aaaa bbbb", "cccc"]);
  },
);

Deno.test(
  "wrapText() puts a wide character on a one-cell line rather than loop forever",
  pure,
  () => {
    assert.deepEqual(wrapText("世界", 1), ["世", "界"]);
  },
);
