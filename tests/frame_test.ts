/**
 * The frame codec of lib/protocol/frame.ts against the bytes PROTOCOL.md pins down. The incremental
 * decoder and the validation rules as a stream sees them are in frame_decoder_test.ts.
 */

import assert from "node:assert/strict";
import { ProtocolError, type ProtocolErrorKind } from "../lib/protocol/errors.ts";
import {
  checkFrameBody,
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  encodeFrameBytes,
  FIXED_BODY_SIZE,
  LENGTH_FIELD_SIZE,
  type Message,
  swapFrameByteOrder,
  TIME_FIELDS,
  type Timestamp,
} from "../lib/protocol/frame.ts";
import { JASON, JASON_BE, JASON_LE, TIME } from "./helpers/vectors.ts";

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

/** "Zoë" / "héllo 👋": 3 characters but 4 bytes, 7 code points but 11 bytes. */
// deno-fmt-ignore
const ZOE_BE = Uint8Array.of(
  0x00, 0x00, 0x00, 0x2f, // overall_length 47
  0x00, 0x00, 0x00, 0x04, // ulen 4
  0x5a, 0x6f, 0xc3, 0xab, // "Zoë"
  0x00, 0x00, 0x07, 0xe8, // year 2024
  0x00, 0x00, 0x00, 0x01, // month 1
  0x00, 0x00, 0x00, 0x02, // day 2
  0x00, 0x00, 0x00, 0x03, // hour 3
  0x00, 0x00, 0x00, 0x04, // minute 4
  0x00, 0x00, 0x00, 0x05, // second 5
  0x00, 0x00, 0x00, 0x0b, // tlen 11
  0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f, 0x20, 0xf0, 0x9f, 0x91, 0x8b, // "héllo 👋"
);

function body(frame: Uint8Array): Uint8Array {
  return frame.subarray(LENGTH_FIELD_SIZE);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A copy of `frame` with the int32 at `offset` replaced. */
function withInt32(frame: Uint8Array, offset: number, value: number, littleEndian = false) {
  const out = frame.slice();
  new DataView(out.buffer).setInt32(offset, value, littleEndian);
  return out;
}

function assertProtocolError(
  fn: () => unknown,
  expected: { kind: ProtocolErrorKind; field: string; offset?: number },
): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${caught}`);
  assert.equal(caught.kind, expected.kind, caught.message);
  assert.equal(caught.field, expected.field, caught.message);
  if (expected.offset !== undefined) assert.equal(caught.offset, expected.offset, caught.message);
  return caught;
}

test("the protocol constants match PROTOCOL.md", () => {
  assert.equal(LENGTH_FIELD_SIZE, 4);
  assert.equal(FIXED_BODY_SIZE, 32);
  assert.equal(DEFAULT_MAX_FRAME, 65536);
  assert.deepEqual(TIME_FIELDS.map(([field]) => field), [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
  ]);
});

test('encodeFrame() writes the 52-byte "Jason" frame big-endian by default', () => {
  assert.deepEqual(encodeFrame(JASON), JASON_BE);
  assert.deepEqual(encodeFrame(JASON, { littleEndian: false }), JASON_BE);
});

test('encodeFrame() writes the 52-byte "Jason" frame little-endian when asked', () => {
  assert.deepEqual(encodeFrame(JASON, { littleEndian: true }), JASON_LE);
});

test("encodeFrame() counts username and text lengths in UTF-8 bytes, not characters", () => {
  assert.deepEqual(
    encodeFrame({ username: "Zoë", time: TIME, text: "héllo 👋" }),
    ZOE_BE,
  );
});

test("encodeFrame() of an empty username and text is the 36-byte minimum frame", () => {
  // deno-fmt-ignore
  const expected = Uint8Array.of(
    0x00, 0x00, 0x00, 0x20, // overall_length 32
    0x00, 0x00, 0x00, 0x00, // ulen 0
    0x00, 0x00, 0x07, 0xe8, // year 2024
    0x00, 0x00, 0x00, 0x01, // month 1
    0x00, 0x00, 0x00, 0x02, // day 2
    0x00, 0x00, 0x00, 0x03, // hour 3
    0x00, 0x00, 0x00, 0x04, // minute 4
    0x00, 0x00, 0x00, 0x05, // second 5
    0x00, 0x00, 0x00, 0x00, // tlen 0
  );
  assert.deepEqual(encodeFrame({ username: "", time: TIME, text: "" }), expected);
});

test("encodeFrame() writes a lone surrogate as U+FFFD and counts its 3 bytes", () => {
  const frame = encodeFrame({ username: "a\ud800", time: TIME, text: "" });
  assert.deepEqual(frame.subarray(4, 12), Uint8Array.of(0, 0, 0, 4, 0x61, 0xef, 0xbf, 0xbd));
});

test("encodeFrameBytes() writes username and text bytes exactly, even invalid UTF-8", () => {
  const frame = encodeFrameBytes(Uint8Array.of(0xff), TIME, Uint8Array.of(0xc3, 0x00), {
    littleEndian: true,
  });
  assert.equal(frame.length, 36 + 1 + 2);
  assert.deepEqual(frame.subarray(0, 9), Uint8Array.of(35, 0, 0, 0, 1, 0, 0, 0, 0xff));
  assert.deepEqual(frame.subarray(33, 39), Uint8Array.of(2, 0, 0, 0, 0xc3, 0x00));
});

test('decodeFrameBody() reads the "Jason" body in both byte orders', () => {
  assert.deepEqual(decodeFrameBody(body(JASON_BE)), JASON);
  assert.deepEqual(decodeFrameBody(body(JASON_LE), { littleEndian: true }), JASON);
});

test("decodeFrameBody() reads a body that does not start its buffer", () => {
  const stream = concat(Uint8Array.of(1, 2, 3), JASON_BE, Uint8Array.of(4, 5));
  assert.deepEqual(decodeFrameBody(stream.subarray(3 + 4, 3 + 52)), JASON);
});

test("decodeFrameBody() turns invalid UTF-8 into U+FFFD instead of failing", () => {
  const frame = encodeFrameBytes(Uint8Array.of(0x41, 0xff), TIME, Uint8Array.of(0xc3, 0x28, 0xed));
  const message = decodeFrameBody(body(frame));
  assert.equal(message.username, "A\ufffd");
  assert.equal(message.text, "\ufffd(\ufffd");
});

test("decodeFrameBody() keeps a leading U+FEFF as content, not a byte-order mark", () => {
  const message = { username: "\ufeffZoë", time: TIME, text: "\ufeff" };
  const frame = encodeFrame(message);
  assert.deepEqual(frame.subarray(8, 11), Uint8Array.of(0xef, 0xbb, 0xbf));
  assert.deepEqual(decodeFrameBody(body(frame)), message);
});

test("encodeFrame() and decodeFrameBody() round-trip in both byte orders", () => {
  const messages: Message[] = [
    JASON,
    { username: "", time: TIME, text: "" },
    { username: "Zoë", time: TIME, text: "héllo 👋" },
    { username: "日本語", time: TIME, text: "👩‍👩‍👧 family, ZWJ and all \u202e" },
    { username: "x", time: TIME, text: "\x00\x1b[2J\r\n\x7f" },
    {
      username: "edge",
      time: { year: -2147483648, month: 12, day: 31, hour: 23, minute: 59, second: 60 },
      text: "leap second",
    },
    {
      username: "edge",
      time: { year: 2147483647, month: 1, day: 1, hour: 0, minute: 0, second: 0 },
      text: "min",
    },
  ];
  for (const littleEndian of [false, true]) {
    for (const message of messages) {
      const frame = encodeFrame(message, { littleEndian });
      assert.deepEqual(decodeFrameBody(body(frame), { littleEndian }), message);
    }
  }
});

test("encodeFrame() and decodeFrameBody() round-trip a text filling the 64 KiB limit", () => {
  const text = "é".repeat((DEFAULT_MAX_FRAME - FIXED_BODY_SIZE - 4) / 2);
  const message = { username: "Zoë", time: TIME, text };
  const frame = encodeFrame(message);
  assert.equal(frame.length, LENGTH_FIELD_SIZE + DEFAULT_MAX_FRAME);
  assert.equal(new DataView(frame.buffer).getInt32(0), DEFAULT_MAX_FRAME);
  assert.deepEqual(decodeFrameBody(body(frame)), message);
});

test("checkFrameBody() returns ulen and tlen and reports offsets from the frame start", () => {
  const stream = concat(JASON_BE, JASON_BE);
  const view = new DataView(stream.buffer);
  assert.deepEqual(checkFrameBody(view, 52 + 4, 48, false), { ulen: 5, tlen: 11 });
  const bad = concat(JASON_BE, withInt32(JASON_BE, 21, 0));
  assertProtocolError(
    () => checkFrameBody(new DataView(bad.buffer), 52 + 4, 48, false),
    { kind: "date-out-of-range", field: "day", offset: 21 },
  );
});

test("decodeFrameBody() rejects a negative ulen or tlen", () => {
  assertProtocolError(() => decodeFrameBody(body(withInt32(JASON_BE, 4, -1))), {
    kind: "negative-length",
    field: "ulen",
    offset: 4,
  });
  assertProtocolError(() => decodeFrameBody(body(withInt32(JASON_BE, 37, -11))), {
    kind: "negative-length",
    field: "tlen",
    offset: 37,
  });
});

test("decodeFrameBody() rejects a ulen that does not fit and lengths that do not add up", () => {
  assertProtocolError(() => decodeFrameBody(body(withInt32(JASON_BE, 4, 17))), {
    kind: "length-mismatch",
    field: "ulen",
    offset: 4,
  });
  assertProtocolError(() => decodeFrameBody(body(withInt32(JASON_BE, 4, 0x7fffffff))), {
    kind: "length-mismatch",
    field: "ulen",
  });
  assertProtocolError(() => decodeFrameBody(body(withInt32(JASON_BE, 37, 10))), {
    kind: "length-mismatch",
    field: "overall_length",
    offset: 0,
  });
});

test("decodeFrameBody() rejects each date field just outside its range, little-endian too", () => {
  const cases: [keyof Timestamp, number, number][] = [
    ["month", 17, 0],
    ["month", 17, 13],
    ["day", 21, 0],
    ["day", 21, 32],
    ["hour", 25, -1],
    ["hour", 25, 24],
    ["minute", 29, -1],
    ["minute", 29, 60],
    ["second", 33, -1],
    ["second", 33, 61],
  ];
  for (const [field, offset, value] of cases) {
    for (const [frame, littleEndian] of [[JASON_BE, false], [JASON_LE, true]] as const) {
      const error = assertProtocolError(
        () =>
          decodeFrameBody(body(withInt32(frame, offset, value, littleEndian)), { littleEndian }),
        { kind: "date-out-of-range", field, offset },
      );
      assert.match(error.message, new RegExp(`${field} ${value} is out of range`));
    }
  }
});

test("swapFrameByteOrder() maps a big-endian run to the little-endian encoding and back", () => {
  const messages: Message[] = [
    JASON,
    { username: "", time: TIME, text: "" },
    { username: "Zoë", time: { ...TIME, year: -1, second: 60 }, text: "héllo 👋" },
    { username: "a".repeat(300), time: TIME, text: "b".repeat(70000) },
  ];
  const be = concat(...messages.map((m) => encodeFrame(m)));
  const le = concat(...messages.map((m) => encodeFrame(m, { littleEndian: true })));
  const beCopy = be.slice();
  assert.deepEqual(swapFrameByteOrder(be, false), le);
  assert.deepEqual(swapFrameByteOrder(le, true), be);
  assert.deepEqual(be, beCopy, "the input is left untouched");
});

test("swapFrameByteOrder() reads a run that does not start its buffer", () => {
  const stream = concat(Uint8Array.of(9, 9, 9), JASON_BE, ZOE_BE);
  const swapped = swapFrameByteOrder(stream.subarray(3), false);
  assert.deepEqual(swapped.subarray(0, 52), JASON_LE);
  assert.deepEqual(decodeFrameBody(swapped.subarray(52 + 4), { littleEndian: true }), {
    username: "Zoë",
    time: TIME,
    text: "héllo 👋",
  });
});

test("swapFrameByteOrder() of an empty run is empty", () => {
  assert.deepEqual(swapFrameByteOrder(new Uint8Array(0), false), new Uint8Array(0));
});
