import assert from "node:assert/strict";
import { encodeFrame } from "../lib/protocol/frame.ts";
import {
  decodeRecords,
  encodeRecords,
  fingerprint,
  parseHello,
} from "../lib/protocol/web_records.ts";
import { backoffMs, colourIndex, fullTime, oneLine, shortTime } from "../web/chat_format.ts";
import { nameColor } from "../lib/protocol/name_colour.ts";
import { PALETTE } from "../lib/client/chat/render.ts";

const jason = encodeFrame({
  username: "Jason",
  time: { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 },
  text: "Hello World",
});

Deno.test("encodeRecords() writes the 8-byte sequence number before each frame", {
  permissions: "none",
}, () => {
  const bytes = encodeRecords([{ seq: 1, frame: jason }, { seq: 2 ** 40, frame: jason }]);
  assert.equal(bytes.length, 2 * (8 + 52));
  assert.deepEqual(bytes.subarray(0, 8), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(bytes.subarray(60, 68), Uint8Array.of(0, 0, 1, 0, 0, 0, 0, 0));
  const records = decodeRecords(bytes);
  assert.deepEqual(records.map((r) => r.seq), [1, 2 ** 40]);
  assert.deepEqual(records[1].frame, jason);
});

Deno.test("decodeRecords() refuses a record that runs off the message", {
  permissions: "none",
}, () => {
  const bytes = encodeRecords([{ seq: 1, frame: jason }]);
  assert.throws(() => decodeRecords(bytes.subarray(0, 50)), RangeError);
  assert.throws(() => decodeRecords(bytes.subarray(0, 10)), RangeError);
});

Deno.test("fingerprint() is 16 hex digits and tells frames apart", { permissions: "none" }, () => {
  assert.match(fingerprint(jason), /^[0-9a-f]{16}$/);
  assert.equal(fingerprint(jason), fingerprint(jason.slice()));
  const other = jason.slice();
  other[51] ^= 1;
  assert.notEqual(fingerprint(other), fingerprint(jason));
});

Deno.test("parseHello() takes a hello with or without a resume point, and nothing else", {
  permissions: "none",
}, () => {
  assert.deepEqual(parseHello('{"type":"hello"}'), { type: "hello" });
  const resume = { epoch: "ab12cd34", seq: 12, tail: "0123456789abcdef" };
  assert.deepEqual(parseHello(JSON.stringify({ type: "hello", resume })), {
    type: "hello",
    resume,
  });
  for (
    const bad of [
      "",
      "hello",
      "null",
      '{"type":"welcome"}',
      '{"type":"hello","resume":{"epoch":"e","seq":-1,"tail":"0123456789abcdef"}}',
      '{"type":"hello","resume":{"epoch":"e","seq":1,"tail":"xyz"}}',
    ]
  ) {
    assert.throws(() => parseHello(bad), SyntaxError, bad);
  }
});

Deno.test("the page's colours, times, lines and backoff", { permissions: "none" }, () => {
  assert.equal(colourIndex("alice"), colourIndex("alice"));
  const used = new Set(Array.from({ length: 200 }, (_, i) => colourIndex(`user${i}`)));
  assert.equal(used.size, 14, "names spread over the whole palette");
  for (const name of ["alice", "bob", "tty", "Jason", "名前"]) {
    assert.equal(colourIndex(name), nameColor(name, PALETTE.length), `the terminal's for ${name}`);
  }
  const time = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
  assert.equal(shortTime(time), "03:04");
  assert.equal(fullTime(time), "2024-01-02 03:04:05");
  assert.equal(oneLine(" a\r\nb\n "), "a b");
  assert.equal(backoffMs(1, 0), 500);
  assert.equal(backoffMs(1, 0.999), 500);
  assert.equal(backoffMs(3, 0.5), 1000);
  assert.equal(backoffMs(30, 0.999), 19_980);
  for (let attempt = 1; attempt < 40; attempt++) {
    const ms = backoffMs(attempt, Math.random());
    assert.ok(ms >= 500 && ms <= 20_000, `${ms}`);
  }
});
