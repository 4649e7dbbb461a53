/** Terminal bytes to keys (lib/client/chat/input_keys.ts), in any split: pure, no terminal. */

import assert from "node:assert/strict";
import { type Key, KeyDecoder } from "../lib/client/chat/input_keys.ts";

const pure = { permissions: "none" } as const;
const bytes = (text: string) => new TextEncoder().encode(text);

function decode(text: string): Key[] {
  const decoder = new KeyDecoder();
  return [...decoder.push(bytes(text)), ...decoder.flush()];
}

/** Decodes `text` fed one byte at a time. */
function decodeBytewise(text: string): Key[] {
  const decoder = new KeyDecoder();
  const keys = [...bytes(text)].flatMap((b) => decoder.push(Uint8Array.of(b)));
  return [...keys, ...decoder.flush()];
}

Deno.test("KeyDecoder turns typed text into one text key, UTF-8 whole", pure, () => {
  assert.deepEqual(decode("héllo 世界 👋"), [{ type: "text", text: "héllo 世界 👋" }]);
});

Deno.test(
  "KeyDecoder decodes arrows, Home/End, PageUp/Down and Delete as xterm and tmux send them",
  pure,
  () => {
    const cases: [string, Key][] = [
      ["\x1b[A", { type: "key", name: "up" }],
      ["\x1b[B", { type: "key", name: "down" }],
      ["\x1b[C", { type: "key", name: "right" }],
      ["\x1b[D", { type: "key", name: "left" }],
      ["\x1bOA", { type: "key", name: "up" }],
      ["\x1b[H", { type: "key", name: "home" }],
      ["\x1b[F", { type: "key", name: "end" }],
      ["\x1b[1~", { type: "key", name: "home" }],
      ["\x1b[4~", { type: "key", name: "end" }],
      ["\x1bOH", { type: "key", name: "home" }],
      ["\x1b[5~", { type: "key", name: "pageup" }],
      ["\x1b[6~", { type: "key", name: "pagedown" }],
      ["\x1b[3~", { type: "key", name: "delete" }],
      ["\x1b[1;2A", { type: "key", name: "up", shift: true }],
      ["\x1b[1;5B", { type: "key", name: "down", ctrl: true }],
      ["\x1b[1;5D", { type: "key", name: "left", ctrl: true }],
      ["\x1bb", { type: "key", name: "word-left" }],
      ["\x1bf", { type: "key", name: "word-right" }],
      ["\x1b\x7f", { type: "key", name: "backspace", alt: true }],
    ];
    for (const [sequence, key] of cases) {
      assert.deepEqual(decode(sequence), [key], JSON.stringify(sequence));
      assert.deepEqual(decodeBytewise(sequence), [key], `${JSON.stringify(sequence)} byte by byte`);
    }
  },
);

Deno.test("KeyDecoder decodes control keys: Enter, Backspace, Ctrl+letters", pure, () => {
  assert.deepEqual(decode("\r"), [{ type: "key", name: "enter" }]);
  assert.deepEqual(decode("\r\n"), [{ type: "key", name: "enter" }], "CR LF is one Enter");
  assert.deepEqual(decode("\x7f"), [{ type: "key", name: "backspace" }]);
  assert.deepEqual(decode("\x08"), [{ type: "key", name: "backspace" }]);
  assert.deepEqual(
    decode("\x01\x05\x0b\x15\x17\x03\x04"),
    [
      ..."aekuwcd",
    ].map((letter) => ({ type: "ctrl", letter })),
  );
});

Deno.test("KeyDecoder keeps text and keys in order within one read", pure, () => {
  assert.deepEqual(decode("ab\x1b[Dc\r"), [
    { type: "text", text: "ab" },
    { type: "key", name: "left" },
    { type: "text", text: "c" },
    { type: "key", name: "enter" },
  ]);
});

Deno.test("KeyDecoder holds a lone ESC until flush() decides it is the Escape key", pure, () => {
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.push(bytes("\x1b")), []);
  assert.equal(decoder.pending, true);
  assert.deepEqual(decoder.flush(), [{ type: "key", name: "escape" }]);
  assert.equal(decoder.pending, false);
});

Deno.test(
  "KeyDecoder holds a split UTF-8 character and a split sequence until they complete",
  pure,
  () => {
    const decoder = new KeyDecoder();
    const wave = bytes("👋");
    assert.deepEqual(decoder.push(wave.subarray(0, 2)), []);
    assert.deepEqual(decoder.push(wave.subarray(2)), [{ type: "text", text: "👋" }]);
    assert.deepEqual(decoder.push(bytes("\x1b[1;")), []);
    assert.deepEqual(decoder.push(bytes("2A")), [{ type: "key", name: "up", shift: true }]);
  },
);

Deno.test(
  "KeyDecoder returns a bracketed paste as one paste key, newlines and escapes inside",
  pure,
  () => {
    const paste = "\x1b[200~one\rtwo\n\x1b[Athree\x1b[201~x";
    const expected: Key[] = [
      { type: "paste", text: "one\rtwo\n\x1b[Athree" },
      { type: "text", text: "x" },
    ];
    assert.deepEqual(decode(paste), expected);
    assert.deepEqual(decodeBytewise(paste), expected);
  },
);

Deno.test("KeyDecoder reports a sequence it does not know as unknown, and goes on", pure, () => {
  assert.deepEqual(decode("\x1b[99Zq"), [
    { type: "unknown", sequence: "\x1b[99Z" },
    { type: "text", text: "q" },
  ]);
});
