/**
 * The WebSocket sub-protocol's pure parts (PROTOCOL.md §11), shared by the server's gateway and
 * the browser page: the numbered records the server sends, the hello and welcome texts, and the
 * frame fingerprint a browser resumes from after a server restart. No I/O, no Deno.
 *
 * @module
 */

import { LENGTH_FIELD_SIZE } from "./frame.ts";

/** Bytes of the sequence number in front of every frame the gateway sends. */
export const SEQ_SIZE = 8;

/** One numbered message: its place in the global order and its big-endian frame. */
export interface WebRecord {
  seq: number;
  /** The whole frame, overall_length included, big-endian. */
  frame: Uint8Array;
}

/** Where a browser was when it lost its connection (all three from what it last received). */
export interface ResumePoint {
  /** The welcome's epoch: sequence numbers are comparable within one epoch only. */
  epoch: string;
  /** The last sequence number received. */
  seq: number;
  /** {@linkcode fingerprint} of the last frame received, for a server that restarted. */
  tail: string;
}

/** The browser's first message, a text one. */
export interface Hello {
  type: "hello";
  resume?: ResumePoint;
}

/** The server's answer to the hello, a text message, before any record. */
export interface Welcome {
  type: "welcome";
  epoch: string;
  /** The last sequence number assigned before this connection's records (0: none yet). */
  seq: number;
  /** Largest overall_length the server accepts. */
  maxFrame: number;
}

/**
 * Encodes records as one binary message: for each, an 8-byte big-endian sequence number, then
 * the frame.
 *
 * @example
 * ```ts
 * import { encodeRecords, decodeRecords } from "./web_records.ts";
 * const frame = Uint8Array.of(0, 0, 0, 32, 0, 0, 0, 0, ...new Array(28).fill(1));
 * const [record] = decodeRecords(encodeRecords([{ seq: 7, frame }]));
 * if (record.seq !== 7 || record.frame.length !== 36) throw new Error();
 * ```
 */
export function encodeRecords(records: readonly WebRecord[]): Uint8Array {
  let size = 0;
  for (const r of records) size += SEQ_SIZE + r.frame.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const r of records) {
    view.setBigUint64(at, BigInt(r.seq));
    out.set(r.frame, at + SEQ_SIZE);
    at += SEQ_SIZE + r.frame.length;
  }
  return out;
}

/**
 * Splits a binary message from the gateway into its records (views into `bytes`). Throws
 * RangeError if a record runs off the end: the server sends whole records only.
 */
export function decodeRecords(bytes: Uint8Array): WebRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: WebRecord[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + SEQ_SIZE + LENGTH_FIELD_SIZE > bytes.length) {
      throw new RangeError(`Cannot decode the record at ${at}: truncated header`);
    }
    const seq = Number(view.getBigUint64(at));
    const end = at + SEQ_SIZE + LENGTH_FIELD_SIZE + view.getInt32(at + SEQ_SIZE);
    if (end > bytes.length || end < at + SEQ_SIZE + LENGTH_FIELD_SIZE) {
      throw new RangeError(`Cannot decode the record at ${at}: frame runs off the message`);
    }
    records.push({ seq, frame: bytes.subarray(at + SEQ_SIZE, end) });
    at = end;
  }
  return records;
}

/**
 * A 64-bit fingerprint of a frame's bytes, as 16 hex digits (two FNV-1a hashes with different
 * offsets). After a server restart sequence numbers start afresh; the frames a history
 * database replays are byte for byte the same, so the last one a browser saw is found again.
 *
 * @example
 * ```ts
 * import { fingerprint } from "./web_records.ts";
 * if (fingerprint(Uint8Array.of(1, 2)) === fingerprint(Uint8Array.of(2, 1))) throw new Error();
 * ```
 */
export function fingerprint(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193);
    b = Math.imul(b ^ bytes[i], 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/**
 * Parses the browser's hello; throws SyntaxError with a sentence for the log if it is not one.
 */
export function parseHello(text: string): Hello {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SyntaxError("Cannot parse the hello: not JSON");
  }
  const hello = value as Partial<Hello> | null;
  if (typeof hello !== "object" || hello === null || hello.type !== "hello") {
    throw new SyntaxError('Cannot parse the hello: "type" is not "hello"');
  }
  const resume = hello.resume as Partial<ResumePoint> | undefined;
  if (resume === undefined) return { type: "hello" };
  if (
    typeof resume !== "object" || resume === null || typeof resume.epoch !== "string" ||
    resume.epoch.length > 64 || !Number.isSafeInteger(resume.seq) || (resume.seq as number) < 0 ||
    typeof resume.tail !== "string" || !/^[0-9a-f]{16}$/.test(resume.tail)
  ) {
    throw new SyntaxError('Cannot parse the hello: "resume" needs epoch, seq and tail');
  }
  return { type: "hello", resume: resume as ResumePoint };
}
