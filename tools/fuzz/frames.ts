/**
 * Inputs for the fuzzers and the soak's hostile clients: valid frames, frames that break
 * exactly one rule of PROTOCOL.md (one per kind the decoder documents), and mutations of
 * valid frames. Built on the project's own encoder, so a valid frame here is valid there.
 *
 * @module
 */

import type { ProtocolErrorKind } from "../../lib/protocol/errors.ts";
import {
  DEFAULT_MAX_FRAME,
  encodeFrameBytes,
  FIXED_BODY_SIZE,
  LENGTH_FIELD_SIZE,
  type Timestamp,
} from "../../lib/protocol/frame.ts";
import type { Prng } from "./prng.ts";

const encoder = new TextEncoder();

/** int32 values that sit on or next to a rule's boundary. */
export const INTERESTING_INT32: readonly number[] = [
  0,
  1,
  -1,
  2,
  12,
  13,
  23,
  24,
  31,
  32,
  33,
  59,
  60,
  61,
  255,
  256,
  65535,
  DEFAULT_MAX_FRAME - 1,
  DEFAULT_MAX_FRAME,
  DEFAULT_MAX_FRAME + 1,
  0x7fffffff,
  -0x80000000,
  0x01000000,
  0x02000000,
];

const SAMPLE_TEXTS = ["hi", "Hello World", "Ünïcödé 你好 👋", "\x1b[31mred\x1b[0m", "a\r\nb", ""];

/** A valid timestamp, with the bounds of each field often chosen. */
export function randomTime(rng: Prng): Timestamp {
  const edge = (min: number, max: number) =>
    rng.chance(0.3) ? rng.pick([min, max]) : rng.range(min, max);
  return {
    year: rng.chance(0.2) ? rng.pick([-2147483648, 0, 2147483647]) : rng.range(1970, 2100),
    month: edge(1, 12),
    day: edge(1, 31),
    hour: edge(0, 23),
    minute: edge(0, 59),
    second: edge(0, 60),
  };
}

/** Bytes for a username or text: readable, raw binary, or (rarely) long. */
function randomField(rng: Prng, longest: number): Uint8Array {
  const choice = rng.int(40);
  if (choice < 16) {
    const sample = encoder.encode(rng.pick(SAMPLE_TEXTS));
    if (sample.length <= longest) return sample;
  }
  if (choice < 39) return rng.bytes(rng.int(Math.min(48, longest + 1)));
  return rng.bytes(rng.int(Math.min(longest, 4096) + 1));
}

/** One valid frame that fits in `maxFrame`. */
export function randomFrame(rng: Prng, littleEndian: boolean, maxFrame = DEFAULT_MAX_FRAME) {
  const room = Math.max(0, maxFrame - FIXED_BODY_SIZE);
  const username = randomField(rng, Math.min(room, 64));
  const text = randomField(rng, room - username.length);
  return encodeFrameBytes(username, randomTime(rng), text, { littleEndian });
}

/** A run of `count` valid frames, end to end. */
export function randomFrames(
  rng: Prng,
  count: number,
  littleEndian: boolean,
  maxFrame = DEFAULT_MAX_FRAME,
): Uint8Array {
  return concat(Array.from({ length: count }, () => randomFrame(rng, littleEndian, maxFrame)));
}

/** A frame that breaks one rule, with the error kind and field the decoder must report. */
export interface MalformedFrame {
  /** What was broken, for reports: e.g. "month 13". */
  name: string;
  kind: ProtocolErrorKind;
  field: string;
  bytes: Uint8Array;
}

/** One way to break a frame: the verdict it must get, and how to build such a frame. */
interface Breakage {
  name: string;
  kind: ProtocolErrorKind;
  field: string;
  /** Only the 4-byte overall_length is sent: refused before any body. */
  headerOnly: boolean;
  build(rng: Prng, littleEndian: boolean): Uint8Array;
}

/** Where each int32 of a frame built from `ulen` username bytes sits. */
function offsets(ulen: number) {
  const date = 8 + ulen;
  return {
    overall: 0,
    ulen: 4,
    year: date,
    month: date + 4,
    day: date + 8,
    hour: date + 12,
    minute: date + 16,
    second: date + 20,
    tlen: date + 24,
  };
}

/**
 * Every way a frame can break PROTOCOL.md. Lengths are broken both ways (negative and too
 * big); each date field on both sides of its range. Body-level breakages build frames of
 * at most 64 bytes.
 */
function breakages(maxFrame: number): Breakage[] {
  const header = (name: string, kind: ProtocolErrorKind, value: number): Breakage => ({
    name: `overall_length ${name}`,
    kind,
    field: "overall_length",
    headerOnly: true,
    build(_rng, littleEndian) {
      const bytes = new Uint8Array(LENGTH_FIELD_SIZE);
      new DataView(bytes.buffer).setInt32(0, value, littleEndian);
      return bytes;
    },
  });
  const body = (
    name: string,
    kind: ProtocolErrorKind,
    field: string,
    edit: (
      get: (at: number) => number,
      set: (at: number, v: number) => void,
      at: ReturnType<typeof offsets>,
    ) => void,
  ): Breakage => ({
    name,
    kind,
    field,
    headerOnly: false,
    build(rng, littleEndian) {
      const username = encoder.encode(rng.pick(["mallory", "eve", "x"]));
      const text = encoder.encode(rng.pick(["boom", "hello", "a longer line"]));
      const bytes = encodeFrameBytes(username, randomTime(rng), text, { littleEndian });
      const view = new DataView(bytes.buffer);
      edit(
        (at) => view.getInt32(at, littleEndian),
        (at, v) => view.setInt32(at, v, littleEndian),
        offsets(username.length),
      );
      return bytes;
    },
  });
  const all: Breakage[] = [
    header("-1", "negative-length", -1),
    header("-2147483648", "negative-length", -0x80000000),
    header("0", "length-mismatch", 0),
    header("31", "length-mismatch", 31),
    body("ulen -1", "negative-length", "ulen", (_, set, at) => set(at.ulen, -1)),
    body(
      "ulen past the frame",
      "length-mismatch",
      "ulen",
      (_, set, at) => set(at.ulen, 0x7fffffff),
    ),
    body("tlen -1", "negative-length", "tlen", (_, set, at) => set(at.tlen, -1)),
    body(
      "tlen one short",
      "length-mismatch",
      "overall_length",
      (get, set, at) => set(at.tlen, get(at.tlen) - 1),
    ),
    body(
      "tlen one long",
      "length-mismatch",
      "overall_length",
      (get, set, at) => set(at.tlen, get(at.tlen) + 1),
    ),
  ];
  if (maxFrame < 0x7fffffff) {
    all.push(header(`${maxFrame + 1} (oversized)`, "frame-too-large", maxFrame + 1));
    all.push(header("2147483647 (oversized)", "frame-too-large", 0x7fffffff));
  }
  const ranges: [keyof Timestamp, number, number][] = [
    ["month", 0, 13],
    ["day", 0, 32],
    ["hour", -1, 24],
    ["minute", -1, 60],
    ["second", -1, 61],
  ];
  for (const [field, below, above] of ranges) {
    for (const value of [below, above]) {
      all.push(
        body(
          `${field} ${value}`,
          "date-out-of-range",
          field,
          (_, set, at) => set(at[field], value),
        ),
      );
    }
  }
  // A body-level fault only shows in a frame that fits the size limit.
  return all.filter((b) => b.headerOnly || maxFrame >= 64);
}

const breakagesByMax = new Map<number, Breakage[]>();

function breakagesFor(maxFrame: number): Breakage[] {
  let list = breakagesByMax.get(maxFrame);
  if (!list) breakagesByMax.set(maxFrame, list = breakages(maxFrame));
  return list;
}

/** One frame that breaks one rule, chosen at random among all the ways. */
export function malformedFrame(
  rng: Prng,
  littleEndian: boolean,
  maxFrame = DEFAULT_MAX_FRAME,
): MalformedFrame {
  const { name, kind, field, build } = rng.pick(breakagesFor(maxFrame));
  return { name, kind, field, bytes: build(rng, littleEndian) };
}

/** One frame for each way a frame can break the rules. */
export function malformedFrames(
  rng: Prng,
  littleEndian: boolean,
  maxFrame = DEFAULT_MAX_FRAME,
): MalformedFrame[] {
  return breakagesFor(maxFrame).map(({ name, kind, field, build }) => ({
    name,
    kind,
    field,
    bytes: build(rng, littleEndian),
  }));
}

/**
 * Changes `input` in one to four random ways: bit flips, boundary int32s written over
 * fields, cuts, insertions, repeats and splices. The result is usually, not always, invalid.
 */
export function mutate(rng: Prng, input: Uint8Array, littleEndian: boolean): Uint8Array {
  let bytes: Uint8Array = input.slice();
  const rounds = rng.range(1, 4);
  for (let round = 0; round < rounds; round++) {
    const n = bytes.length;
    switch (rng.int(9)) {
      case 0: // flip one bit
        if (n > 0) bytes[rng.int(n)] ^= 1 << rng.int(8);
        break;
      case 1: // overwrite one byte
        if (n > 0) bytes[rng.int(n)] = rng.next() & 0xff;
        break;
      case 2: // a boundary int32 over a field (frame fields are 4-byte aligned but for ulen)
        if (n >= 4) {
          const at = rng.chance(0.7) ? rng.int(Math.floor(n / 4)) * 4 : rng.int(n - 3);
          new DataView(bytes.buffer).setInt32(
            at,
            rng.pick(INTERESTING_INT32),
            rng.chance(0.9) ? littleEndian : !littleEndian,
          );
        }
        break;
      case 3: // cut the end off
        bytes = bytes.subarray(0, rng.int(n + 1));
        break;
      case 4: // cut a piece out
        if (n > 0) {
          const from = rng.int(n);
          const to = from + rng.int(Math.min(16, n - from) + 1);
          bytes = concat([bytes.subarray(0, from), bytes.subarray(to)]);
        }
        break;
      case 5: // insert random bytes
        {
          const at = rng.int(n + 1);
          bytes = concat([bytes.subarray(0, at), rng.bytes(rng.range(1, 8)), bytes.subarray(at)]);
        }
        break;
      case 6: // repeat a piece
        if (n > 0) {
          const from = rng.int(n);
          const piece = bytes.subarray(from, from + rng.range(1, 64));
          bytes = concat([bytes.subarray(0, from), piece, bytes.subarray(from)]);
        }
        break;
      case 7: // splice in a fresh valid frame
        {
          const at = rng.int(n + 1);
          bytes = concat([bytes.subarray(0, at), randomFrame(rng, littleEndian, 256)]);
        }
        break;
      default: // an int32 the other way round
        if (n >= 4) {
          const at = rng.int(n - 3);
          bytes.subarray(at, at + 4).reverse();
        }
    }
  }
  return bytes;
}

/** Joins byte arrays into a new one. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
