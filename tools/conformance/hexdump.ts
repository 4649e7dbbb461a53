/**
 * Hex dumps a student can read against PROTOCOL.md: each field of a frame on its own line
 * with its offset, its bytes and its value, and a marker on the field that is wrong.
 *
 * @module
 */

/** One field of a frame as laid out in a byte array. */
export interface FieldSpan {
  name: string;
  offset: number;
  /** Bytes of the field present in the array (less than the full size if cut short). */
  length: number;
  /** The field's full size: 4 for an int32. */
  size: number;
  kind: "int" | "bytes" | "extra";
}

/** Options for {@linkcode frameLayout} and {@linkcode dumpFrame}. */
export interface LayoutOptions {
  /** Byte order of the int32 fields. */
  littleEndian?: boolean;
  /** Username length to lay the frame out with, instead of its ulen field. */
  ulen?: number;
  /** Text length to lay the frame out with, instead of its tlen field. */
  tlen?: number;
}

/** Options for {@linkcode dumpFrame}. */
export interface DumpOptions extends LayoutOptions {
  /** Notes to print after a field's value, by field name: `{ overall_length: "expected 48" }`. */
  marks?: Record<string, string>;
}

const INT_FIELDS_AFTER_USERNAME = ["year", "month", "day", "hour", "minute", "second", "tlen"];
const BYTES_PER_ROW = 12;
/** Width of the bytes column: a full row, a space and a "…". */
const COLUMN = BYTES_PER_ROW * 3 + 2;
const lenient = new TextDecoder("utf-8", { fatal: false });

/** Space-separated hex of up to `max` bytes, with a count of the rest. */
export function hexBytes(bytes: Uint8Array, max = 64): string {
  const shown = [...bytes.subarray(0, max)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return bytes.length > max ? `${shown} … (${bytes.length} bytes in all)` : shown;
}

/** Reads an int32 at `offset`, or undefined if fewer than 4 bytes are there. */
export function int32At(
  bytes: Uint8Array,
  offset: number,
  littleEndian = false,
): number | undefined {
  if (offset < 0 || offset + 4 > bytes.length) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getInt32(0, littleEndian);
}

/**
 * Where each field of a frame lies. The username and text lengths come from the frame's own
 * ulen and tlen unless overridden, and are clamped to the bytes present, so even a frame
 * with nonsense lengths gets a layout.
 */
export function frameLayout(frame: Uint8Array, options: LayoutOptions = {}): FieldSpan[] {
  const le = options.littleEndian ?? false;
  const spans: FieldSpan[] = [];
  const add = (name: string, offset: number, size: number, kind: FieldSpan["kind"]) => {
    const length = Math.max(0, Math.min(size, frame.length - offset));
    spans.push({ name, offset, length, size, kind });
  };
  add("overall_length", 0, 4, "int");
  add("ulen", 4, 4, "int");
  const room = Math.max(0, frame.length - 8);
  const ulen = clamp(options.ulen ?? int32At(frame, 4, le) ?? 0, room);
  add("username", 8, ulen, "bytes");
  let at = 8 + ulen;
  for (const name of INT_FIELDS_AFTER_USERNAME) {
    add(name, at, 4, "int");
    at += 4;
  }
  const tlen = clamp(
    options.tlen ?? int32At(frame, at - 4, le) ?? 0,
    Math.max(0, frame.length - at),
  );
  add("text", at, tlen, "bytes");
  at += tlen;
  if (frame.length > at) add("(more bytes)", at, frame.length - at, "extra");
  return spans;
}

function clamp(value: number, max: number): number {
  return Math.max(0, Math.min(value, max));
}

/**
 * An annotated dump of one frame: offset, bytes, field name and value per line, long fields
 * shortened, and `<-` with the note from `marks` on the fields that are wrong.
 */
export function dumpFrame(frame: Uint8Array, options: DumpOptions = {}): string[] {
  const le = options.littleEndian ?? false;
  const lines = [
    `off  ${"bytes".padEnd(COLUMN)}field           value` +
    (le ? "  (little-endian)" : ""),
  ];
  for (const span of frameLayout(frame, options)) {
    if (span.length === 0 && span.kind === "int") {
      lines.push(`${pad(span.offset)}  ${"(missing)".padEnd(COLUMN)}${span.name}`);
      continue;
    }
    const bytes = frame.subarray(span.offset, span.offset + span.length);
    const shown = [...bytes.subarray(0, BYTES_PER_ROW)]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join(" ") + (bytes.length > BYTES_PER_ROW ? " …" : "");
    let value: string;
    if (span.kind === "int") {
      value = span.length < 4 ? `(cut short after ${span.length} bytes)` : String(
        new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, le),
      );
    } else if (span.kind === "bytes") {
      value = `${bytes.length} bytes ${quote(bytes)}`;
    } else {
      value = `${bytes.length} bytes past 4 + overall_length`;
    }
    const mark = options.marks?.[span.name];
    lines.push(
      `${pad(span.offset)}  ${shown.padEnd(COLUMN)}${span.name.padEnd(16)}${value}` +
        (mark ? `  <- ${mark}` : ""),
    );
  }
  return lines;
}

/** A plain dump in rows of 16 bytes with hex offsets, for bytes that are not a frame. */
export function dumpBytes(bytes: Uint8Array, max = 128): string[] {
  const lines: string[] = [];
  const shown = bytes.subarray(0, max);
  for (let at = 0; at < shown.length; at += 16) {
    const row = [...shown.subarray(at, at + 16)]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join(" ");
    lines.push(`${at.toString(16).padStart(4, "0")}  ${row}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines;
}

/** Text bytes as a quoted, escaped, shortened string: "Hello W…". */
export function quote(bytes: Uint8Array, maxChars = 40): string {
  const text = lenient.decode(bytes);
  const short = [...text].length > maxChars ? [...text].slice(0, maxChars).join("") + "…" : text;
  return JSON.stringify(short);
}

function pad(offset: number): string {
  return String(offset).padStart(3);
}
