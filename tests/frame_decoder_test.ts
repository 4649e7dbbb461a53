/**
 * The incremental decoder of lib/protocol/frame_decoder.ts: validation as a stream sees it, any split of
 * the input, buffers that are never aliased, and seeded randomised runs.
 */

import assert from "node:assert/strict";
import { ProtocolError, type ProtocolErrorKind } from "../lib/protocol/errors.ts";
import {
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  encodeFrameBytes,
  type Message,
  type Timestamp,
} from "../lib/protocol/frame.ts";
import { countFrames, FrameDecoder, splitFrames } from "../lib/protocol/frame_decoder.ts";
import { JASON, JASON_BE, JASON_LE, TIME } from "./helpers/vectors.ts";

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

const ZOE: Message = { username: "Zoë", time: TIME, text: "héllo 👋" };
const EMPTY: Message = { username: "", time: TIME, text: "" };

/** Offsets of the int32 fields in the "Jason" frame. */
const AT = { overall: 0, ulen: 4, year: 13, month: 17, day: 21, hour: 25, minute: 29 } as const;
const SECOND_AT = 33;
const TLEN_AT = 37;

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

function int32(value: number, littleEndian = false): Uint8Array {
  return withInt32(new Uint8Array(4), 0, value, littleEndian);
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

// --- Validation -------------------------------------------------------------------------------

test("FrameDecoder rejects a negative overall_length as soon as its 4 bytes arrive", () => {
  for (const littleEndian of [false, true]) {
    for (const value of [-1, -2147483648]) {
      const decoder = new FrameDecoder({ littleEndian });
      assertProtocolError(() => decoder.push(int32(value, littleEndian)), {
        kind: "negative-length",
        field: "overall_length",
        offset: 0,
      });
    }
  }
});

test("FrameDecoder rejects an overall_length below 32 as soon as its 4 bytes arrive", () => {
  for (const value of [0, 1, 31]) {
    assertProtocolError(() => new FrameDecoder().push(int32(value)), {
      kind: "length-mismatch",
      field: "overall_length",
      offset: 0,
    });
  }
});

test("FrameDecoder rejects an overall_length over 64 KiB before the body is sent", () => {
  for (const littleEndian of [false, true]) {
    const decoder = new FrameDecoder({ littleEndian });
    const error = assertProtocolError(() => decoder.push(int32(65537, littleEndian)), {
      kind: "frame-too-large",
      field: "overall_length",
      offset: 0,
    });
    assert.match(error.message, /65537 exceeds the maximum frame size 65536/);
  }
  const huge = new FrameDecoder();
  assertProtocolError(() => huge.push(int32(0x7fffffff)), {
    kind: "frame-too-large",
    field: "overall_length",
  });
});

test("FrameDecoder rejects an oversized header split across pushes on its fourth byte", () => {
  const decoder = new FrameDecoder();
  const header = int32(65537);
  assert.deepEqual(decoder.push(header.subarray(0, 1)), []);
  assert.deepEqual(decoder.push(header.subarray(1, 3)), []);
  assert.equal(decoder.buffered, 3);
  assertProtocolError(() => decoder.push(header.subarray(3)), {
    kind: "frame-too-large",
    field: "overall_length",
  });
});

test("FrameDecoder accepts a header of exactly 64 KiB and waits for its body", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(int32(DEFAULT_MAX_FRAME)), []);
  assert.equal(decoder.buffered, 4);
});

test("FrameDecoder honours a custom maxFrame on both sides of the bound", () => {
  const atLimit = encodeFrame({ username: "ab", time: TIME, text: "c".repeat(100 - 32 - 2) });
  assert.deepEqual(new FrameDecoder({ maxFrame: 100 }).pushFrames(atLimit), atLimit);
  const overLimit = encodeFrame({ username: "ab", time: TIME, text: "c".repeat(100 - 32 - 1) });
  assertProtocolError(() => new FrameDecoder({ maxFrame: 100 }).push(overLimit.subarray(0, 4)), {
    kind: "frame-too-large",
    field: "overall_length",
  });
});

test("FrameDecoder decodes a text filling the 64 KiB limit and refuses one byte more", () => {
  const fits = { username: "", time: TIME, text: "x".repeat(DEFAULT_MAX_FRAME - 32) };
  assert.deepEqual(new FrameDecoder().push(encodeFrame(fits)), [fits]);
  const tooBig = encodeFrame({ ...fits, text: fits.text + "x" });
  assertProtocolError(() => new FrameDecoder().push(tooBig), {
    kind: "frame-too-large",
    field: "overall_length",
  });
});

test("FrameDecoder decodes a 64 KiB text when maxFrame leaves room for the fixed fields", () => {
  const message = { username: "Zoë", time: TIME, text: "👋".repeat(16384) };
  const decoder = new FrameDecoder({ maxFrame: 65536 + 32 + 4 });
  assert.deepEqual(decoder.push(encodeFrame(message)), [message]);
});

test("FrameDecoder rejects a negative ulen or tlen", () => {
  for (const [littleEndian, frame] of [[false, JASON_BE], [true, JASON_LE]] as const) {
    assertProtocolError(
      () => new FrameDecoder({ littleEndian }).push(withInt32(frame, AT.ulen, -1, littleEndian)),
      { kind: "negative-length", field: "ulen", offset: 4 },
    );
    assertProtocolError(
      () => new FrameDecoder({ littleEndian }).push(withInt32(frame, TLEN_AT, -1, littleEndian)),
      { kind: "negative-length", field: "tlen", offset: TLEN_AT },
    );
  }
});

test("FrameDecoder rejects a ulen larger than overall_length leaves room for", () => {
  for (const ulen of [17, 48, 0x7fffffff]) {
    assertProtocolError(() => new FrameDecoder().push(withInt32(JASON_BE, AT.ulen, ulen)), {
      kind: "length-mismatch",
      field: "ulen",
      offset: 4,
    });
  }
});

test("FrameDecoder rejects an overall_length that is not 32 + ulen + tlen", () => {
  for (const tlen of [0, 10, 12, 0x7fffffff]) {
    const error = assertProtocolError(
      () => new FrameDecoder().push(withInt32(JASON_BE, TLEN_AT, tlen)),
      { kind: "length-mismatch", field: "overall_length", offset: 0 },
    );
    assert.match(error.message, /overall_length says 48/);
  }
  // A ulen one short shifts every later field: month then reads `e8 00 00 00`.
  assertProtocolError(() => new FrameDecoder().push(withInt32(JASON_BE, AT.ulen, 4)), {
    kind: "date-out-of-range",
    field: "month",
    offset: 16,
  });
});

test("FrameDecoder rejects each date field just outside its range, in both byte orders", () => {
  const cases: [keyof Timestamp, number, number][] = [
    ["month", AT.month, 0],
    ["month", AT.month, 13],
    ["day", AT.day, 0],
    ["day", AT.day, 32],
    ["hour", AT.hour, -1],
    ["hour", AT.hour, 24],
    ["minute", AT.minute, -1],
    ["minute", AT.minute, 60],
    ["second", SECOND_AT, -1],
    ["second", SECOND_AT, 61],
  ];
  for (const [field, offset, value] of cases) {
    for (const [littleEndian, frame] of [[false, JASON_BE], [true, JASON_LE]] as const) {
      const bad = withInt32(frame, offset, value, littleEndian);
      assertProtocolError(() => new FrameDecoder({ littleEndian }).push(bad), {
        kind: "date-out-of-range",
        field,
        offset,
      });
    }
  }
});

test("FrameDecoder accepts every date field at both ends of its range, second 60 included", () => {
  const edges: Timestamp[] = [
    { year: -2147483648, month: 1, day: 1, hour: 0, minute: 0, second: 0 },
    { year: 2147483647, month: 12, day: 31, hour: 23, minute: 59, second: 60 },
    { year: 2024, month: 2, day: 31, hour: 12, minute: 30, second: 59 },
  ];
  for (const littleEndian of [false, true]) {
    const decoder = new FrameDecoder({ littleEndian });
    const messages = edges.map((time) => ({ username: "u", time, text: "t" }));
    const stream = concat(...messages.map((m) => encodeFrame(m, { littleEndian })));
    assert.deepEqual(decoder.push(stream), messages);
  }
});

test("FrameDecoder errors say where in the stream the bad frame started", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(concat(JASON_BE, JASON_BE.subarray(0, 10))), [JASON]);
  const bad = withInt32(JASON_BE, AT.month, 13);
  const error = assertProtocolError(() => decoder.push(concat(JASON_BE.subarray(10), bad)), {
    kind: "date-out-of-range",
    field: "month",
    offset: AT.month,
  });
  assert.match(
    error.message,
    /^malformed frame at stream byte 104: month 13 is out of range 1-12$/,
  );
});

// --- Splits -----------------------------------------------------------------------------------

test("FrameDecoder decodes frames fed one byte at a time", () => {
  for (const littleEndian of [false, true]) {
    const messages = [JASON, EMPTY, ZOE];
    const stream = concat(...messages.map((m) => encodeFrame(m, { littleEndian })));
    const decoder = new FrameDecoder({ littleEndian });
    const decoded: Message[] = [];
    for (let i = 0; i < stream.length; i++) {
      const out = decoder.push(stream.subarray(i, i + 1));
      decoded.push(...out);
      assert.equal(out.length > 0, decoder.buffered === 0, `byte ${i}`);
    }
    assert.deepEqual(decoded, messages);
    assert.equal(decoder.buffered, 0);
  }
});

test("FrameDecoder decodes many frames pushed in one chunk, in order", () => {
  const messages = Array.from({ length: 200 }, (_, i) => ({
    username: `user${i % 7}`,
    time: { ...TIME, second: i % 61 },
    text: "é".repeat(i),
  }));
  const decoder = new FrameDecoder({ littleEndian: true });
  const stream = concat(...messages.map((m) => encodeFrame(m, { littleEndian: true })));
  assert.deepEqual(decoder.push(stream), messages);
  assert.equal(decoder.buffered, 0);
});

test("FrameDecoder returns nothing for an empty chunk", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(new Uint8Array(0)), []);
  assert.deepEqual(decoder.pushFrames(new Uint8Array(0)), new Uint8Array(0));
  decoder.push(JASON_BE.subarray(0, 6));
  assert.deepEqual(decoder.push(new Uint8Array(0)), []);
  assert.equal(decoder.buffered, 6);
  assert.deepEqual(decoder.push(JASON_BE.subarray(6)), [JASON]);
});

test("FrameDecoder reads chunks that are views into a larger buffer", () => {
  const backing = concat(Uint8Array.of(0xff, 0xff, 0xff), JASON_BE, Uint8Array.of(0xff, 0xff));
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(backing.subarray(3, 3 + 20)), []);
  assert.deepEqual(decoder.push(backing.subarray(3 + 20, 3 + 52)), [JASON]);
  assert.deepEqual(new FrameDecoder().push(backing.subarray(3, 3 + 52)), [JASON]);
});

test("pushFrames() returns the complete frames as one contiguous copy", () => {
  const frames = [JASON_BE, encodeFrame(ZOE), encodeFrame(EMPTY), encodeFrame(JASON)];
  const stream = concat(...frames);
  const cut = frames[0].length + frames[1].length + frames[2].length + 20;
  const decoder = new FrameDecoder();
  const first = decoder.pushFrames(stream.subarray(0, cut));
  assert.deepEqual(first, concat(frames[0], frames[1], frames[2]));
  assert.equal(countFrames(first), 3);
  assert.deepEqual(splitFrames(first), frames.slice(0, 3).map((f) => f.subarray(4)));
  assert.equal(decoder.buffered, 20);
  assert.deepEqual(decoder.pushFrames(stream.subarray(cut)), frames[3]);
  assert.equal(decoder.buffered, 0);
});

test("splitFrames() and countFrames() read little-endian runs", () => {
  const run = concat(JASON_LE, encodeFrame(EMPTY, { littleEndian: true }), JASON_LE);
  assert.equal(countFrames(run, { littleEndian: true }), 3);
  assert.deepEqual(
    splitFrames(run, { littleEndian: true }).map((b) => b.length),
    [48, 32, 48],
  );
  assert.equal(countFrames(new Uint8Array(0)), 0);
});

// --- Aliasing ---------------------------------------------------------------------------------

test("pushFrames() output does not change when the caller overwrites its chunk", () => {
  const chunk = concat(JASON_BE, JASON_BE);
  const frames = new FrameDecoder().pushFrames(chunk);
  chunk.fill(0xaa);
  assert.deepEqual(frames, concat(JASON_BE, JASON_BE));
});

test("FrameDecoder copies a held partial frame, so the caller may reuse its read buffer", () => {
  const stream = concat(JASON_BE, encodeFrame(ZOE), JASON_BE);
  const readBuffer = new Uint8Array(40);
  const decoder = new FrameDecoder();
  const decoded: Message[] = [];
  for (let at = 0; at < stream.length; at += readBuffer.length) {
    const n = Math.min(readBuffer.length, stream.length - at);
    readBuffer.set(stream.subarray(at, at + n));
    decoded.push(...decoder.push(readBuffer.subarray(0, n)));
    readBuffer.fill(0xee);
  }
  assert.deepEqual(decoded, [JASON, ZOE, JASON]);
});

test("earlier large frames stay intact while later large chunks reuse the decoder", () => {
  const decoder = new FrameDecoder();
  const readBuffer = new Uint8Array(50_000);
  const kept: { frames: Uint8Array; expected: Uint8Array }[] = [];
  const messages = Array.from({ length: 12 }, (_, i) => ({
    username: `big${i}`,
    time: TIME,
    text: String.fromCharCode(0x41 + i).repeat(40_000 + i * 1_500),
  }));
  const stream = concat(...messages.map((m) => encodeFrame(m)));
  const decoded: Message[] = [];
  let expectedAt = 0;
  for (let at = 0; at < stream.length; at += readBuffer.length) {
    const n = Math.min(readBuffer.length, stream.length - at);
    readBuffer.set(stream.subarray(at, at + n));
    const chunk = readBuffer.subarray(0, n);
    const frames = decoder.pushFrames(chunk);
    decoded.push(...splitFrames(frames).map((body) => decodeFrameBody(body)));
    kept.push({ frames, expected: stream.slice(expectedAt, expectedAt + frames.length) });
    expectedAt += frames.length;
    readBuffer.fill(0x00);
  }
  assert.equal(expectedAt, stream.length);
  assert.deepEqual(decoded, messages);
  for (const { frames, expected } of kept) assert.deepEqual(frames, expected);
});

// --- Seeded randomised runs -------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  bytes(length: number): Uint8Array {
    return Uint8Array.from({ length }, () => this.int(0, 255));
  }
  /** A length biased towards 0 and small values, sometimes large. */
  length(max: number): number {
    const r = this.next();
    if (r < 0.15) return 0;
    if (r < 0.6) return this.int(1, 16);
    if (r < 0.95) return this.int(1, Math.min(max, 400));
    return this.int(1, max);
  }
  /** Code points from every UTF-8 length class, controls and U+FEFF included. */
  text(codePoints: number): string {
    const ranges: [number, number][] = [
      [0x20, 0x7e],
      [0x00, 0x1f],
      [0x80, 0x7ff],
      [0x800, 0xd7ff],
      [0xe000, 0xffff],
      [0x10000, 0x10ffff],
      [0xfeff, 0xfeff],
    ];
    let out = "";
    for (let i = 0; i < codePoints; i++) {
      const [lo, hi] = this.pick(ranges);
      out += String.fromCodePoint(this.int(lo, hi));
    }
    return out;
  }
  time(): Timestamp {
    return {
      year: this.int(-2147483648, 2147483647),
      month: this.int(1, 12),
      day: this.int(1, 31),
      hour: this.int(0, 23),
      minute: this.int(0, 59),
      second: this.int(0, 60),
    };
  }
  /** Splits `stream` into chunks of random sizes, some empty, most small, a few large. */
  chunks(stream: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length;) {
      const r = this.next();
      let size = this.int(1, 30_000);
      if (r < 0.05) size = 0;
      else if (r < 0.55) size = this.int(1, 8);
      else if (r < 0.9) size = this.int(1, 300);
      out.push(stream.subarray(at, at + size));
      at += size;
    }
    return out;
  }
}

const lenientUtf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Two fixed seeds that always run, and a fresh one per run to widen coverage. */
const SEEDS = [0x5eed, 20240102, crypto.getRandomValues(new Uint32Array(1))[0]];

/**
 * Checks the decoder is not sitting on a complete frame: it holds fewer than 4 bytes, or a valid
 * header whose frame is still incomplete. `pushed` is every byte pushed so far.
 */
function assertOnlyIncompleteHeld(decoder: FrameDecoder, pushed: Uint8Array, context: string) {
  const held = decoder.buffered;
  if (held < 4) return;
  const view = new DataView(pushed.buffer, pushed.byteOffset + pushed.length - held, 4);
  const overall = view.getInt32(0, decoder.littleEndian);
  assert.ok(overall >= 32 && overall <= decoder.maxFrame, `${context}: held a bad header`);
  assert.ok(held < 4 + overall, `${context}: held a complete frame of ${overall} bytes`);
}

for (const seed of SEEDS) {
  const littleEndian = mulberry32(seed)() < 0.5;
  test(
    `500 random frames in random splits decode to themselves (seed ${seed}, ${
      littleEndian ? "little" : "big"
    }-endian)`,
    () => {
      const random = new Random(seed);
      random.next(); // the byte-order draw above
      const messages: Message[] = [];
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 500; i++) {
        const time = random.time();
        if (random.next() < 0.5) {
          const message = {
            username: random.text(random.length(40)),
            time,
            text: random.text(random.length(4000)),
          };
          messages.push(message);
          frames.push(encodeFrame(message, { littleEndian }));
        } else {
          const username = random.bytes(random.length(120));
          const text = random.bytes(random.length(16000));
          messages.push({
            username: lenientUtf8.decode(username),
            time,
            text: lenientUtf8.decode(text),
          });
          frames.push(encodeFrameBytes(username, time, text, { littleEndian }));
        }
      }
      const stream = concat(...frames);
      const forMessages = new FrameDecoder({ littleEndian });
      const forFrames = new FrameDecoder({ littleEndian });
      const decoded: Message[] = [];
      const raw: Uint8Array[] = [];
      let pushed = 0;
      for (const chunk of random.chunks(stream)) {
        decoded.push(...forMessages.push(chunk));
        raw.push(forFrames.pushFrames(chunk));
        pushed += chunk.length;
        assertOnlyIncompleteHeld(forFrames, stream.subarray(0, pushed), `seed ${seed}`);
      }
      assert.equal(forMessages.buffered, 0, `seed ${seed}`);
      assert.equal(forFrames.buffered, 0, `seed ${seed}`);
      assert.deepEqual(concat(...raw), stream, `seed ${seed}: raw frames differ`);
      assert.equal(decoded.length, messages.length, `seed ${seed}`);
      for (let i = 0; i < messages.length; i++) {
        assert.deepEqual(decoded[i], messages[i], `seed ${seed}: message ${i} differs`);
      }
    },
  );
}

/** A stream of a few valid frames with random damage, or plain random bytes. */
function garbage(random: Random, littleEndian: boolean): Uint8Array {
  if (random.next() < 0.25) return random.bytes(random.int(0, 2000));
  const frames: Uint8Array[] = [];
  for (let n = random.int(1, 6); n > 0; n--) {
    const username = random.bytes(random.length(50));
    const text = random.bytes(random.length(600));
    frames.push(encodeFrameBytes(username, random.time(), text, { littleEndian }));
  }
  const stream = concat(...frames);
  const view = new DataView(stream.buffer);
  const edges = [0, 1, -1, 31, 32, 33, 60, 61, 65536, 65537, 0x7fffffff, -2147483648];
  for (let n = random.int(1, 4); n > 0; n--) {
    const at = random.int(0, stream.length - 4);
    const r = random.next();
    if (r < 0.4) view.setInt32(at, random.pick(edges), littleEndian);
    else if (r < 0.7) view.setInt32(at, random.int(-100, 100_000), littleEndian);
    else stream[at] = random.int(0, 255);
  }
  return random.next() < 0.2 ? stream.subarray(0, random.int(0, stream.length)) : stream;
}

const DECODER_KINDS: ReadonlySet<ProtocolErrorKind> = new Set([
  "negative-length",
  "length-mismatch",
  "frame-too-large",
  "date-out-of-range",
]);

for (const seed of SEEDS) {
  test(`random garbage yields only ProtocolError, never RangeError or a stall (seed ${seed})`, () => {
    const random = new Random(seed);
    const kinds = new Set<string>();
    for (let run = 0; run < 400; run++) {
      const context = `seed ${seed}, run ${run}`;
      const littleEndian = random.next() < 0.5;
      const maxFrame = random.pick([DEFAULT_MAX_FRAME, 32, 100, 0x7fffffff]);
      const stream = garbage(random, littleEndian);
      const forMessages = new FrameDecoder({ littleEndian, maxFrame });
      const forFrames = new FrameDecoder({ littleEndian, maxFrame });
      let pushed = 0;
      let returned = 0;
      for (const chunk of random.chunks(stream)) {
        let messageError: unknown;
        let frameError: unknown;
        try {
          forMessages.push(chunk);
        } catch (error) {
          messageError = error;
        }
        try {
          returned += forFrames.pushFrames(chunk).length;
        } catch (error) {
          frameError = error;
        }
        if (messageError === undefined && frameError === undefined) {
          pushed += chunk.length;
          assert.equal(returned + forFrames.buffered, pushed, `${context}: bytes lost`);
          assertOnlyIncompleteHeld(forFrames, stream.subarray(0, pushed), context);
          continue;
        }
        for (const error of [messageError, frameError]) {
          if (!(error instanceof ProtocolError)) throw error ?? new Error(`${context}: no error`);
          assert.ok(DECODER_KINDS.has(error.kind), `${context}: kind ${error.kind}`);
          assert.ok(error.offset >= 0, `${context}: offset ${error.offset}`);
          assert.match(error.message, /^malformed frame at stream byte \d+: /);
          kinds.add(error.kind);
        }
        assert.equal(
          (messageError as ProtocolError).message,
          (frameError as ProtocolError).message,
          `${context}: push() and pushFrames() disagree`,
        );
        break;
      }
    }
    assert.deepEqual([...kinds].sort(), [...DECODER_KINDS].sort(), `seed ${seed}: kinds seen`);
  });
}

test("a broken frame carries the valid frames of its chunk, so a relay still delivers them", () => {
  const decoder = new FrameDecoder();
  const broken = withInt32(JASON_BE, 12 + 5, 13); // month 13
  const error = assertProtocolError(
    () => decoder.pushFrames(concat(JASON_BE, JASON_BE, broken)),
    { kind: "date-out-of-range", field: "month" },
  );
  assert.deepEqual(error.precedingFrames, concat(JASON_BE, JASON_BE));
  assert.throws(() => decoder.pushFrames(JASON_BE), ProtocolError, "the decoder stays failed");
});

test("a 64 KiB frame arriving in pieces is held once, in a buffer of its own size", () => {
  const frame = encodeFrame({ username: "big", time: TIME, text: "x".repeat(65536 - 4 - 32 - 3) });
  assert.equal(frame.length, 65536);
  const decoder = new FrameDecoder();
  assert.equal(decoder.pushFrames(frame.subarray(0, 3)).length, 0);
  assert.equal(decoder.reserved, 4, "before the length is known, only its 4 bytes");
  assert.equal(decoder.pushFrames(frame.subarray(3, 1000)).length, 0);
  assert.equal(decoder.reserved, 65536, "the frame's own size, at once");
  for (let at = 1000; at < frame.length - 1; at += 7000) {
    assert.equal(
      decoder.pushFrames(frame.subarray(at, Math.min(at + 7000, frame.length - 1))).length,
      0,
    );
    assert.equal(decoder.reserved, 65536, "never a second, larger copy while it is assembled");
  }
  const out = decoder.pushFrames(frame.subarray(frame.length - 1));
  assert.deepEqual(out, frame);
  assert.equal(decoder.reserved, 0, "handed out with the frame, not kept");
});

test("bytes read into spare() are taken in place, and the frames after them still decode", () => {
  const big = encodeFrame({ username: "big", time: TIME, text: "y".repeat(20_000) });
  const decoder = new FrameDecoder();
  assert.equal(decoder.spare().length, 0, "no frame in progress, no spare");
  decoder.pushFrames(big.subarray(0, 100));
  const spare = decoder.spare();
  assert.equal(spare.length, big.length - 100);
  spare.set(big.subarray(100, 5000));
  assert.equal(decoder.pushFrames(spare.subarray(0, 4900)).length, 0);
  assert.equal(decoder.buffered, 5000);
  const rest = decoder.spare();
  rest.set(big.subarray(5000));
  const out = decoder.pushFrames(rest);
  assert.deepEqual(out, big);
  assert.deepEqual(decoder.push(JASON_BE), [JASON]);
});

test("a huge announced length reserves memory only as its bytes arrive", () => {
  const decoder = new FrameDecoder({ maxFrame: 2 ** 31 - 1 });
  const header = new Uint8Array(4);
  new DataView(header.buffer).setInt32(0, 100_000_000);
  decoder.pushFrames(header);
  assert.ok(decoder.reserved <= 4 + 64 * 1024, `reserved ${decoder.reserved} for a 4-byte header`);
  decoder.pushFrames(new Uint8Array(200_000));
  assert.ok(decoder.reserved <= 2 * 200_004, `reserved ${decoder.reserved} for 200,004 bytes`);
  decoder.release();
  assert.equal(decoder.reserved, 0);
});
