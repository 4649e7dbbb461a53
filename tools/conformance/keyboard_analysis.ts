/**
 * Reading a keyboard's byte stream when it may be wrong. The checker knows what the keyboard
 * should have sent (its username and the lines typed into it), so it lays each frame out by
 * where the username and text bytes really are, not by the lengths the keyboard claims; a
 * wrong length then shows as a wrong field instead of throwing the rest of the stream out
 * of step. Pure functions: bytes in, findings out.
 *
 * @module
 */

import type { Timestamp } from "../../lib/protocol/frame.ts";
import { int32At } from "./hexdump.ts";

/** What the keyboard should have sent. */
export interface KeyboardExpectation {
  username: string;
  /** The lines typed after the username line, in order. */
  lines: string[];
}

/** How the identify code looked. */
export type IdentifyStatus = "ok" | "little-endian" | "wrong" | "missing" | "short";

/** One frame as found in the stream. */
export interface FoundFrame {
  /** Offset of the frame in the stream. */
  offset: number;
  /** The frame's bytes as laid out by the analysis. */
  bytes: Uint8Array;
  /** The int32 fields as the keyboard wrote them (in the detected byte order). */
  overall: number;
  ulen: number;
  tlen: number;
  time: Timestamp;
  /** The username and text bytes where they really are. */
  username: Uint8Array;
  text: Uint8Array;
  /** Which expected line the text is, "echo" for the username line sent as a message. */
  line?: number | "echo";
  /** Set when the text is a line plus a line ending or NUL the keyboard left on. */
  trailer?: string;
}

/** Everything found in a keyboard's stream. */
export interface KeyboardAnalysis {
  identify: { status: IdentifyStatus; bytes: Uint8Array };
  /** Byte order the frames' int32s were written in. */
  littleEndian: boolean;
  frames: FoundFrame[];
  /** Bytes after the last frame that could be laid out, if any. */
  leftover?: { offset: number; bytes: Uint8Array };
}

const encoder = new TextEncoder();

/** Analyses everything a keyboard sent on one connection. */
export function analyzeKeyboardStream(
  stream: Uint8Array,
  expected: KeyboardExpectation,
): KeyboardAnalysis {
  const user = encoder.encode(expected.username);
  const identify = readIdentify(stream, user.length);
  let at = identify.status === "missing" ? 0 : Math.min(4, stream.length);
  let littleEndian = identify.status === "little-endian";
  if (!plausibleStart(stream, at, littleEndian) && plausibleStart(stream, at, !littleEndian)) {
    littleEndian = !littleEndian;
  }
  const lines = expected.lines.map((l) => encoder.encode(l));
  const frames: FoundFrame[] = [];
  let next = 0;
  let pieces = 0;
  while (at + 8 <= stream.length) {
    const rest = next < lines.length ? lines[next].subarray(pieces) : undefined;
    const first = frames.length === 0;
    const frame = layOut(stream, at, littleEndian, user, first ? user : undefined, rest);
    if (frame === undefined) break;
    if (frame.line === 0) {
      frame.line = next;
      next++;
      pieces = 0;
    } else if (frame.line === undefined && rest !== undefined) {
      // A wrong text, or a piece of a long line cut into several frames: then the next
      // frame is compared with the rest of the line.
      frame.line = next;
      const piece = frame.text.length > 0 && frame.text.length < rest.length &&
        startsWith(rest, 0, frame.text);
      if (piece) {
        pieces += frame.text.length;
      } else {
        next++;
        pieces = 0;
      }
    }
    frames.push(frame);
    at = frame.offset + frame.bytes.length;
  }
  const leftover = at < stream.length ? { offset: at, bytes: stream.slice(at) } : undefined;
  return { identify, littleEndian, frames, leftover };
}

function readIdentify(stream: Uint8Array, userBytes: number): KeyboardAnalysis["identify"] {
  const bytes = stream.slice(0, 4);
  if (stream.length === 0) return { status: "missing", bytes };
  if (stream.length < 4) return { status: "short", bytes };
  if (int32At(stream, 0, false) === 2) return { status: "ok", bytes };
  if (int32At(stream, 0, true) === 2) return { status: "little-endian", bytes };
  for (const le of [false, true]) {
    if (plausibleStart(stream, 0, le) && int32At(stream, 4, le) === userBytes) {
      return { status: "missing", bytes };
    }
  }
  return { status: "wrong", bytes };
}

/** Whether a frame could start at `at`: a sane overall_length followed by a sane ulen. */
function plausibleStart(stream: Uint8Array, at: number, littleEndian: boolean): boolean {
  const overall = int32At(stream, at, littleEndian);
  const ulen = int32At(stream, at + 4, littleEndian);
  if (overall === undefined) return false;
  if (overall < 32 || overall > 1 << 24) return false;
  return ulen === undefined || (ulen >= 0 && ulen <= overall);
}

/**
 * Lays out the frame starting at `at`, placing username and text where the expected bytes
 * are when they are there, else where the frame's own lengths say.
 */
function layOut(
  stream: Uint8Array,
  at: number,
  le: boolean,
  user: Uint8Array,
  echo: Uint8Array | undefined,
  line: Uint8Array | undefined,
): FoundFrame | undefined {
  const overall = int32At(stream, at, le)!;
  const ulen = int32At(stream, at + 4, le)!;
  let userLength: number;
  if (startsWith(stream, at + 8, user)) userLength = user.length;
  else if (ulen >= 0 && at + 8 + ulen + 28 <= stream.length) userLength = ulen;
  else return undefined;
  const timeAt = at + 8 + userLength;
  if (timeAt + 28 > stream.length) return undefined;
  const field = (i: number) => int32At(stream, timeAt + 4 * i, le)!;
  const time = {
    year: field(0),
    month: field(1),
    day: field(2),
    hour: field(3),
    minute: field(4),
    second: field(5),
  };
  const tlen = field(6);
  const textAt = timeAt + 28;
  let textLength: number | undefined;
  let matched: FoundFrame["line"];
  let trailer: string | undefined;
  for (const [candidate, tag] of [[line, 0], [echo, "echo"]] as const) {
    if (candidate === undefined || !startsWith(stream, textAt, candidate)) continue;
    // The username line sent as a message, when the keyboard also took it from its command.
    if (tag === "echo" && line !== undefined && startsWith(stream, textAt, line)) continue;
    textLength = candidate.length;
    matched = tag;
    for (const ending of ["\r\n", "\n", "\0"]) {
      const extra = encoder.encode(ending);
      if (
        tlen === candidate.length + extra.length &&
        startsWith(stream, textAt + candidate.length, extra)
      ) {
        textLength += extra.length;
        trailer = ending;
        break;
      }
    }
    break;
  }
  if (textLength === undefined) {
    if (tlen >= 0 && textAt + tlen <= stream.length) textLength = tlen;
    else if (
      overall - 32 - userLength >= 0 && textAt + overall - 32 - userLength <= stream.length
    ) {
      textLength = overall - 32 - userLength;
    } else textLength = stream.length - textAt;
  }
  return {
    offset: at,
    bytes: stream.slice(at, textAt + textLength),
    overall,
    ulen,
    tlen,
    time,
    username: stream.slice(at + 8, at + 8 + userLength),
    text: stream.slice(textAt, textAt + textLength),
    line: matched,
    trailer,
  };
}

function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}
