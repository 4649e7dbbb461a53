/**
 * The message frame of PROTOCOL.md: types, constants and a one-pass encoder. No I/O here:
 * every program, test and tool shares these bytes-in, bytes-out functions.
 *
 * Frame layout (every integer an int32, big-endian unless the connection said otherwise):
 *
 * ```
 * overall_length | ulen | username | year month day hour minute second | tlen | text
 * ```
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** The sender's local wall-clock time, as six integers on the wire. */
export interface Timestamp {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** One chat message, as a keyboard sends it and a display prints it. */
export interface Message {
  username: string;
  time: Timestamp;
  text: string;
}

/** Options for encoding and decoding frames. */
export interface ByteOrderOptions {
  /** DataView's own word: true writes and reads int32s little-endian. Default false. */
  littleEndian?: boolean;
}

/** Bytes of the overall_length field that starts every frame. */
export const LENGTH_FIELD_SIZE = 4;
/** Fixed part of a frame after overall_length: ulen + six date fields + tlen. */
export const FIXED_BODY_SIZE = 32;
/** Default upper bound on overall_length, the server's `--max-frame`. */
export const DEFAULT_MAX_FRAME = 64 * 1024;

/** Names of the six date/time fields in wire order, with their valid ranges. */
export const TIME_FIELDS: ReadonlyArray<readonly [keyof Timestamp, number, number]> = [
  ["year", -2147483648, 2147483647],
  ["month", 1, 12],
  ["day", 1, 31],
  ["hour", 0, 23],
  ["minute", 0, 59],
  ["second", 0, 60],
];

const utf8Encoder = new TextEncoder();
/**
 * Lenient: the server does not judge the text's encoding, so clients must not choke on it.
 * `ignoreBOM` keeps a leading U+FEFF, which is content here, not a byte-order mark.
 */
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Encodes one message as a complete frame, including its overall_length field.
 *
 * @example The lab brief's test vector
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * const time = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
 * const frame = encodeFrame({ username: "Jason", time, text: "Hello World" });
 * if (frame.length !== 52) throw new Error("expected 52 bytes");
 * ```
 */
export function encodeFrame(message: Message, options: ByteOrderOptions = {}): Uint8Array {
  return encodeFrameBytes(
    utf8Encoder.encode(message.username),
    message.time,
    utf8Encoder.encode(message.text),
    options,
  );
}

/** Encodes a frame from raw username and text bytes, which need not be valid UTF-8. */
export function encodeFrameBytes(
  username: Uint8Array,
  time: Timestamp,
  text: Uint8Array,
  options: ByteOrderOptions = {},
): Uint8Array {
  const le = options.littleEndian ?? false;
  const overall = FIXED_BODY_SIZE + username.length + text.length;
  const frame = new Uint8Array(LENGTH_FIELD_SIZE + overall);
  const view = new DataView(frame.buffer);
  view.setInt32(0, overall, le);
  view.setInt32(4, username.length, le);
  frame.set(username, 8);
  let at = 8 + username.length;
  for (const [field] of TIME_FIELDS) {
    view.setInt32(at, time[field], le);
    at += 4;
  }
  view.setInt32(at, text.length, le);
  frame.set(text, at + 4);
  return frame;
}

/** TIME_FIELDS' bounds as typed arrays: a plain indexed loop over them is what V8 runs fastest. */
const TIME_MIN = Float64Array.from(TIME_FIELDS, ([, min]) => min);
const TIME_MAX = Float64Array.from(TIME_FIELDS, ([, , max]) => max);

/** Whether the six date fields starting at `at` are all within their ranges. */
function datesInRange(view: DataView, at: number, littleEndian: boolean): boolean {
  for (let i = 0; i < TIME_MIN.length; i++) {
    const value = view.getInt32(at + 4 * i, littleEndian);
    if (value < TIME_MIN[i] || value > TIME_MAX[i]) return false;
  }
  return true;
}

/**
 * Checks the body of one frame (the `overall` bytes after overall_length, starting at
 * `bodyOffset` in `view`) and returns where its username and text lie. Throws
 * {@linkcode ProtocolError} naming the first broken rule. Offsets in errors count from the
 * frame's first byte.
 */
export function checkFrameBody(
  view: DataView,
  bodyOffset: number,
  overall: number,
  littleEndian: boolean,
): { ulen: number; tlen: number } {
  const ulen = view.getInt32(bodyOffset, littleEndian);
  // Fast path, run for every frame the server relays: a valid body passes in eight reads.
  // Anything else falls through to the checks below, which name the first broken rule.
  if (ulen >= 0 && ulen <= overall - FIXED_BODY_SIZE) {
    const dates = bodyOffset + 4 + ulen;
    const tlen = view.getInt32(dates + 24, littleEndian);
    if (
      tlen >= 0 && FIXED_BODY_SIZE + ulen + tlen === overall &&
      datesInRange(view, dates, littleEndian)
    ) {
      return { ulen, tlen };
    }
  }
  if (ulen < 0) {
    throw new ProtocolError("negative-length", "ulen", 4, `ulen is negative (${ulen})`);
  }
  if (ulen > overall - FIXED_BODY_SIZE) {
    throw new ProtocolError(
      "length-mismatch",
      "ulen",
      4,
      `ulen ${ulen} does not fit in overall_length ${overall} (at most ${
        overall - FIXED_BODY_SIZE
      })`,
    );
  }
  let at = bodyOffset + 4 + ulen;
  for (const [field, min, max] of TIME_FIELDS) {
    const value = view.getInt32(at, littleEndian);
    if (value < min || value > max) {
      throw new ProtocolError(
        "date-out-of-range",
        field,
        at - bodyOffset + LENGTH_FIELD_SIZE,
        `${field} ${value} is out of range ${min}-${max}`,
      );
    }
    at += 4;
  }
  const tlen = view.getInt32(at, littleEndian);
  const tlenOffset = at - bodyOffset + LENGTH_FIELD_SIZE;
  if (tlen < 0) {
    throw new ProtocolError("negative-length", "tlen", tlenOffset, `tlen is negative (${tlen})`);
  }
  if (FIXED_BODY_SIZE + ulen + tlen !== overall) {
    throw new ProtocolError(
      "length-mismatch",
      "overall_length",
      0,
      `overall_length says ${overall} but 32 + ulen ${ulen} + tlen ${tlen} = ${
        FIXED_BODY_SIZE + ulen + tlen
      }`,
    );
  }
  return { ulen, tlen };
}

/**
 * Decodes one complete, already length-checked frame body into a {@linkcode Message}.
 * `bytes` holds the body only (everything after overall_length).
 */
export function decodeFrameBody(bytes: Uint8Array, options: ByteOrderOptions = {}): Message {
  const le = options.littleEndian ?? false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { ulen, tlen } = checkFrameBody(view, 0, bytes.length, le);
  let at = 4 + ulen;
  const time = {} as Timestamp;
  for (const [field] of TIME_FIELDS) {
    time[field] = view.getInt32(at, le);
    at += 4;
  }
  return {
    username: utf8Decoder.decode(bytes.subarray(4, 4 + ulen)),
    time,
    text: utf8Decoder.decode(bytes.subarray(at + 4, at + 4 + tlen)),
  };
}

/**
 * Rewrites a run of complete, valid frames from one byte order to the other, into a new
 * buffer. The server uses it to serve little-endian displays without decoding any text.
 */
export function swapFrameByteOrder(frames: Uint8Array, fromLittleEndian: boolean): Uint8Array {
  const out = frames.slice();
  const src = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const dst = new DataView(out.buffer);
  const to = !fromLittleEndian;
  let at = 0;
  while (at < frames.length) {
    const overall = src.getInt32(at, fromLittleEndian);
    const ulen = src.getInt32(at + 4, fromLittleEndian);
    dst.setInt32(at, overall, to);
    dst.setInt32(at + 4, ulen, to);
    // The six date fields and tlen follow the username back to back.
    for (let field = at + 8 + ulen; field < at + 8 + ulen + 28; field += 4) {
      dst.setInt32(field, src.getInt32(field, fromLittleEndian), to);
    }
    at += LENGTH_FIELD_SIZE + overall;
  }
  return out;
}
