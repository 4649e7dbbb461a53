/**
 * Diagnoses of the mistakes students make most, from the bytes alone: integers in the wrong
 * byte order, lengths counted in characters or including the length field, a missing
 * identify code, unpadded dates, a server that re-stamps the time. Each returns one or two
 * sentences naming the cause and the fix, or undefined when no pattern fits.
 *
 * @module
 */

import { swapFrameByteOrder, type Timestamp } from "../../lib/protocol/frame.ts";
import { formatTimestamp, localTimestamp } from "../../lib/protocol/time.ts";
import { frameLayout, hexBytes, int32At, quote } from "./hexdump.ts";

/** How to write big-endian integers in the languages students use. */
export const BIG_ENDIAN_ADVICE = "the protocol is big-endian (network byte order): use " +
  "htonl / struct.pack('!i') / DataView setInt32(..., false)";

/** Why a display that never reads stalled the others, and the fix. */
export const BLOCKING_FANOUT_HINT =
  "a display that stops reading must not stop the others: sending to each display in turn " +
  "with a blocking sendall() waits forever once that display's socket buffer is full. Give " +
  "each display its own queue and writer (thread or task), and disconnect a display whose " +
  "queue grows too long";

/** Why a half-sent identify code stalled the server. */
export const SLOW_LORIS_HINT =
  "a client that sends part of its identify code (or nothing) and stops must not stall the " +
  "server: read the identify code in that connection's own thread or task, with a timeout, " +
  "not in the accept loop";

const ROLE_NAMES: Record<number, string> = { 1: "DISPLAY", 2: "KEYBOARD" };
const encoder = new TextEncoder();

/** Renders a number as the 4 big-endian bytes it would be on the wire: `00 00 00 01`. */
export function beHex(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, false);
  return hexBytes(bytes);
}

/** Explains 4 bytes that should have been the identify code `expected` (1 or 2). */
export function identifyHint(
  bytes: Uint8Array,
  expected: 1 | 2,
  frameStart?: { usernameBytes: number },
): string | undefined {
  const hex = hexBytes(bytes.subarray(0, 4));
  if (bytes.length === 0) {
    return `a ${ROLE_NAMES[expected].toLowerCase()} must send its identify code ` +
      `${beHex(expected)} as soon as it connects, before anything else`;
  }
  if (bytes.length < 4) {
    return `only ${bytes.length} byte(s) arrived (${hex}): the identify code is a 4-byte int32; ` +
      "send all 4 bytes (sendall / write them all, not a single byte)";
  }
  const be = int32At(bytes, 0, false)!;
  const le = int32At(bytes, 0, true)!;
  if (be !== expected && le === expected) {
    return `identify code arrived as ${hex}: that is ${expected} in little-endian; ` +
      BIG_ENDIAN_ADVICE;
  }
  const other = expected === 1 ? 2 : 1;
  if (be === other || le === other) {
    return `${hex} is ${other} (${ROLE_NAMES[other]}): a ${
      ROLE_NAMES[expected].toLowerCase()
    } must identify as ${expected} (${ROLE_NAMES[expected]})`;
  }
  if (bytes[0] === 0x16 && bytes[1] === 0x03) {
    return "these bytes start a TLS handshake: the client speaks TLS to a plain TCP port";
  }
  if (looksLikeFrameStart(bytes, frameStart)) {
    return `the first 4 bytes (${hex}) look like the overall_length (${be}) of a frame: ` +
      `the identify code ${beHex(expected)} must come first, before any frame`;
  }
  const ascii = new TextDecoder().decode(bytes.subarray(0, 4));
  if (/^[0-9]/.test(ascii) && /^[\x20-\x7e\r\n]+$/.test(ascii)) {
    return `the identify code arrived as the text ${JSON.stringify(ascii)}: ` +
      `send the 4-byte integer ${beHex(expected)}, not its decimal digits`;
  }
  return undefined;
}

/** Whether 8 bytes could be the overall_length and ulen of a frame's start. */
function looksLikeFrameStart(bytes: Uint8Array, start?: { usernameBytes: number }): boolean {
  for (const le of [false, true]) {
    const overall = int32At(bytes, 0, le);
    const ulen = int32At(bytes, 4, le);
    if (overall === undefined || overall < 32 || overall > 1 << 24) continue;
    if (ulen === undefined) return true;
    if (ulen >= 0 && ulen <= overall - 32) {
      return start === undefined || Math.abs(ulen - start.usernameBytes) <= start.usernameBytes;
    }
  }
  return false;
}

/** Explains an overall_length that is not 32 + ulen + tlen. */
export function overallLengthHint(overall: number, ulen: number, tlen: number): string {
  const sum = 32 + ulen + tlen;
  if (overall === sum + 4) {
    return `overall_length says ${overall} but the fields add up to ${sum}: ` +
      "did you count the length field itself? overall_length counts only the bytes after it";
  }
  if (overall === sum - 4 || overall === sum - 8) {
    return `overall_length says ${overall} but the fields add up to ${sum}: ` +
      "it is 32 (ulen, six date fields, tlen: eight int32s) + username bytes + text bytes";
  }
  return `overall_length says ${overall} but the fields add up to ${sum} ` +
    "(32 for ulen, the six date fields and tlen, + ulen + tlen)";
}

/** Explains a length field that counted characters instead of UTF-8 bytes. */
export function characterCountHint(
  field: string,
  declared: number,
  text: string,
): string | undefined {
  const bytes = encoder.encode(text).length;
  const codePoints = [...text].length;
  const units = text.length;
  if (declared === bytes || (declared !== codePoints && declared !== units)) return undefined;
  return `${field} is ${declared}, the number of characters in ${JSON.stringify(shorten(text))}, ` +
    `but it must be the number of UTF-8 bytes (${bytes}): encode first, then take the length ` +
    "(len(s.encode('utf-8')) / new TextEncoder().encode(s).length / strlen of the UTF-8 buffer)";
}

/** Explains a relayed frame `got` that differs from the frame `sent`. */
export function relayHint(
  sent: Uint8Array,
  got: Uint8Array,
  littleEndian = false,
): string | undefined {
  if (got.length === 0 || equalBytes(sent, got)) return undefined;
  const ulen = int32At(sent, 4, littleEndian) ?? 0;
  const dateStart = 8 + ulen;
  const dateEnd = dateStart + 24;
  if (got.length === sent.length) {
    const diffs: number[] = [];
    for (let i = 0; i < sent.length; i++) if (sent[i] !== got[i]) diffs.push(i);
    if (diffs.every((i) => i >= dateStart && i < dateEnd)) {
      return `only the date fields differ (bytes ${dateStart}-${dateEnd - 1}): the server ` +
        `re-stamped the time (${timeAt(got, dateStart, littleEndian)} instead of the keyboard's ` +
        `${timeAt(sent, dateStart, littleEndian)}); relay the keyboard's frame unchanged, ` +
        "byte for byte: the time is the sender's";
    }
    if (equalBytes(got, swapFrameByteOrder(sent, littleEndian))) {
      return `every int32 arrived byte-swapped (overall_length ${hexBytes(got.subarray(0, 4))}): ` +
        `the server wrote ${littleEndian ? "big" : "little"}-endian integers; ` +
        BIG_ENDIAN_ADVICE;
    }
    if (diffs.every((i) => i < 4)) {
      return `only overall_length differs (${int32At(got, 0, littleEndian)} instead of ${
        int32At(sent, 0, littleEndian)
      }): relay the frame's own length field unchanged`;
    }
  }
  if (got.length === sent.length - 4 && equalBytes(got, sent.subarray(4))) {
    return "the frame arrived without its overall_length field: relay all 4 + overall_length bytes";
  }
  if (got.length === sent.length + 4 && equalBytes(got.subarray(4), sent)) {
    return "4 extra bytes arrived before the frame: the server added a length of its own; " +
      "relay the frame as it came";
  }
  if (got.length < sent.length && equalBytes(got, sent.subarray(0, got.length))) {
    return `only the first ${got.length} of ${sent.length} bytes arrived: did the server relay ` +
      "only what one recv() returned? Read until all overall_length bytes are there (recvall)";
  }
  return undefined;
}

function timeAt(frame: Uint8Array, at: number, le: boolean): string {
  const field = (i: number) => int32At(frame, at + 4 * i, le) ?? 0;
  return formatTimestamp({
    year: field(0),
    month: field(1),
    day: field(2),
    hour: field(3),
    minute: field(4),
    second: field(5),
  });
}

/**
 * Explains a timestamp that is not the current local time: months counted from 0, years
 * from 1900, UTC instead of local time, the weekday in the day field.
 */
export function timestampHint(got: Timestamp, now: Date): string | undefined {
  const local = localTimestamp(now);
  const sameClock = got.hour === local.hour && got.minute === local.minute;
  if (got.year === local.year - 1900) {
    return `year is ${got.year}: C's tm_year counts from 1900; send tm_year + 1900`;
  }
  if (got.year === local.year % 100) {
    return `year is ${got.year}: send the full year (${local.year}), not two digits`;
  }
  if (got.month === local.month - 1 && got.year === local.year) {
    return `month is ${got.month}, one less than now (${local.month}): JavaScript's ` +
      "getMonth() and C's tm_mon count from 0; add 1";
  }
  if (got.day === now.getDay() && got.day !== local.day && got.month === local.month) {
    return `day is ${got.day}, today's day of the week: JavaScript's getDay() is the weekday; ` +
      "use getDate()";
  }
  const utc = {
    year: now.getUTCFullYear(),
    month: now.getUTCMonth() + 1,
    day: now.getUTCDate(),
    hour: now.getUTCHours(),
  };
  if (
    now.getTimezoneOffset() !== 0 && got.hour === utc.hour && got.day === utc.day &&
    got.minute === local.minute
  ) {
    return "the time is UTC: send the local time (localtime(), not gmtime(); getHours(), " +
      "not getUTCHours())";
  }
  if (sameClock && got.year === local.day && got.day === local.year) {
    return "the date fields are in the wrong order: year, month, day, hour, minute, second";
  }
  return undefined;
}

/** What a display line should look like, for {@linkcode displayLineHint}. */
export interface ExpectedLine {
  username: string;
  time: Timestamp;
  text: string;
}

const LINE = /^(.*?) ?(-?\d+)-(\d+)-(\d+)[ T](\d+):(\d+):(\d+) ?(.*)$/s;

/** Explains a display's output line `got` that is not the expected one. */
export function displayLineHint(expected: ExpectedLine, got: string): string | undefined {
  const date = formatTimestamp(expected.time);
  const match = LINE.exec(got);
  if (match === null) {
    if (/\d{1,2}[\/.]\d{1,2}[\/.]\d{2,4}/.test(got)) {
      return `print the date as YYYY-MM-DD HH:mm:ss (${date})`;
    }
    if (got.startsWith(expected.username)) {
      return `no date and time found: print ${JSON.stringify(date)} between username and text`;
    }
    return undefined;
  }
  const [, user, ...rest] = match;
  const numbers = rest.slice(0, 6).map(Number);
  const text = rest[6];
  const want = [
    expected.time.year,
    expected.time.month,
    expected.time.day,
    expected.time.hour,
    expected.time.minute,
    expected.time.second,
  ];
  const printedDate = got.slice(user.length).trim().split(" ").slice(0, 2).join(" ");
  if (numbers.every((n, i) => n === want[i]) && !got.includes(date)) {
    return `the date is not zero-padded (${printedDate}): print every field with two digits and ` +
      "the year with four: %02d / f'{month:02d}' / String(month).padStart(2, '0')";
  }
  if (
    user !== expected.username &&
    [`<${expected.username}>`, `[${expected.username}]`, `${expected.username}:`].includes(user)
  ) {
    return `print the username bare (${expected.username}), separated by single spaces: ` +
      "the <username> in PROTOCOL.md stands for the value";
  }
  if (/^b['"]/.test(text) || /^b['"]/.test(user)) {
    return "a Python bytes literal (b'...') was printed: decode the bytes first, " +
      ".decode('utf-8', errors='replace')";
  }
  const latin1 = String.fromCharCode(...encoder.encode(expected.text).subarray(0, 4096));
  if (text !== expected.text && text === latin1) {
    return "the text was decoded as Latin-1: decode username and text as UTF-8";
  }
  if (text.length < expected.text.length && expected.text.startsWith(text)) {
    return `only the first ${text.length} of ${expected.text.length} characters were printed: ` +
      "read the whole text (tlen bytes), looping over recv() until they are all there";
  }
  if (text.endsWith("\0") || user.endsWith("\0")) {
    return "a NUL byte was printed: username and text are not NUL-terminated";
  }
  return undefined;
}

/** Byte-for-byte equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function shorten(text: string): string {
  return text.length > 24 ? text.slice(0, 24) + "…" : text;
}

/**
 * Marks for {@linkcode dumpFrame}: each field of `got` whose bytes differ from the same field
 * of `sent`, with what was sent.
 */
export function fieldDifferences(
  sent: Uint8Array,
  got: Uint8Array,
  littleEndian = false,
): Record<string, string> {
  const marks: Record<string, string> = {};
  const sentFields = new Map(frameLayout(sent, { littleEndian }).map((f) => [f.name, f]));
  for (const field of frameLayout(got, { littleEndian })) {
    const other = sentFields.get(field.name);
    if (other === undefined) {
      marks[field.name] = "not in the frame sent";
      continue;
    }
    const a = sent.subarray(other.offset, other.offset + other.length);
    const b = got.subarray(field.offset, field.offset + field.length);
    if (equalBytes(a, b)) continue;
    marks[field.name] = field.kind === "int"
      ? `sent ${int32At(sent, other.offset, littleEndian)}`
      : `sent ${a.length} bytes ${quote(a, 24)}`;
  }
  return marks;
}
