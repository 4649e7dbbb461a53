/**
 * The clients' pure parts and the one-sentence errors, without a socket: LineReader over any
 * chunking, splitText at character boundaries, formatLine's exact line, explainError's wording.
 */

import assert from "node:assert/strict";
import { explainError, UsageError } from "../lib/cli/user_errors.ts";
import { formatLine } from "../lib/client/display.ts";
import { LineReader, splitText } from "../lib/client/keyboard.ts";
import type { Reader } from "../lib/net/wire_io.ts";
import { TIME } from "./helpers/vectors.ts";

function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, permissions: "none", fn });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A reader that hands out `bytes` in the given chunk sizes (cycling), then the end. */
function chunked(bytes: Uint8Array, sizes: number[]): Reader {
  let at = 0;
  let turn = 0;
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(sizes[turn++ % sizes.length], buffer.length, bytes.length - at);
      buffer.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

async function allLines(reader: LineReader): Promise<string[]> {
  const lines: string[] = [];
  for (let line = await reader.nextLine(); line !== null; line = await reader.nextLine()) {
    lines.push(line);
  }
  return lines;
}

test("LineReader gives the same lines for any chunking, CRLF or LF, and a last unterminated line", async () => {
  const text = "héllo\r\nwörld 👋\n\nlast";
  const want = ["héllo", "wörld 👋", "", "last"];
  for (const sizes of [[1], [2, 3], [7], [1000]]) {
    assert.deepEqual(await allLines(new LineReader(chunked(encoder.encode(text), sizes))), want);
  }
});

test("LineReader.nextLines() hands over every complete line at once, then null at the end", async () => {
  const reader = new LineReader(chunked(encoder.encode("a\nb\nc\n"), [1000]));
  assert.deepEqual(await reader.nextLines(), ["a", "b", "c"]);
  assert.equal(await reader.nextLines(), null);
});

test("splitText() cuts a long text into pieces that fit, never inside a character", () => {
  const text = encoder.encode("aé👋".repeat(100)); // 1 + 2 + 4 bytes, 700 in all
  for (const max of [4, 5, 7, 10, 64]) {
    const pieces = splitText(text, max);
    assert.ok(pieces.every((p) => p.length <= max && p.length > 0), `max ${max}`);
    assert.equal(
      pieces.map((p) => decoder.decode(p)).join(""),
      "aé👋".repeat(100),
    );
  }
  assert.deepEqual(splitText(encoder.encode("short"), 10), [encoder.encode("short")]);
});

test("formatLine() prints the brief's exact line, with control characters neutralised", () => {
  assert.equal(
    formatLine({ username: "Jason", time: TIME, text: "Hello World" }),
    "Jason 2024-01-02 03:04:05 Hello World",
  );
  const line = formatLine({ username: "e\x1b[31mvil", time: TIME, text: "bell\x07 and\nnewline" });
  assert.doesNotMatch(
    line,
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f]/,
    "no raw control character reaches the terminal",
  );
  assert.match(line, /^e.*vil 2024-01-02 03:04:05 bell/);
});

test("explainError() turns runtime errors into one sentence naming what was being done", () => {
  const at = { action: "connect to", target: "127.0.0.1:55200" };
  const cases: [unknown, RegExp][] = [
    [new UsageError("--port must be a number."), /^--port must be a number\.$/],
    [
      new Deno.errors.ConnectionRefused("refused"),
      /^Cannot connect to 127\.0\.0\.1:55200: connection refused/,
    ],
    [new Deno.errors.AddrInUse("in use"), /the port is already in use/],
    [
      new Deno.errors.NotCapable("Requires net access, run again with the --allow-net flag"),
      /permission denied \(the program was not granted --allow-net\)/,
    ],
    [new Error("invalid peer certificate: UnknownIssuer"), /not trusted \(pass --ca/],
    [
      new Error("failed to lookup address information: Name or service not known"),
      /could not be resolved/,
    ],
    [
      new Error("keys may not be consistent: KeyMismatch"),
      /the private key does not belong to the certificate \(they come from different pairs\)\.$/,
    ],
  ];
  for (const [error, want] of cases) {
    const sentence = explainError(error, at);
    assert.match(sentence, want);
    assert.equal(sentence.includes("\n"), false, "one line");
    assert.match(sentence, /[.!?]$/, "a full sentence");
  }
  assert.equal(explainError(new Error("something odd\n    at stack")), "something odd.");
});

test("splitText() refuses a room too small for any character instead of looping", () => {
  assert.throws(() => splitText(new TextEncoder().encode("hello"), 0), RangeError);
  assert.throws(() => splitText(new TextEncoder().encode("hello"), -5), RangeError);
  // A text that fits needs no room check.
  assert.deepEqual(splitText(new TextEncoder().encode(""), 0), [new Uint8Array()]);
});
