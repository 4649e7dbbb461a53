/**
 * The stamp every benchmark text starts with, so a display can tell who sent a message, in
 * which place of that keyboard's sequence, and when: 15 ASCII characters, then a filler
 * letter derived from the sequence number.
 *
 * ```
 * kind (M or P) | keyboard (2 digits) | sequence (6) | send time (6)
 * ```
 *
 * The send time is in microseconds on the generator's own monotonic clock (its keyboards and
 * displays share one process), which six digits hold for 19 hours.
 *
 * Digits are base 64 (`0-9A-Za-z-_`), fixed width, most significant first: short to write
 * and cheap to read, which matters when one core parses millions of frames a second.
 *
 * @module
 */

/** Characters of the stamp before the filler. */
export const STAMP_SIZE = 15;
/** A measured message. */
export const KIND_MESSAGE = 0x4d; // "M"
/** A probe, sent until every display has one, before measuring. */
export const KIND_PROBE = 0x50; // "P"

const ALPHABET = new TextEncoder().encode(
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_",
);
/** Digit value of each byte, or -1. */
const VALUE = new Int8Array(256).fill(-1);
ALPHABET.forEach((code, value) => VALUE[code] = value);
const B18 = 2 ** 18;

/** The filler byte of message `seq`: a to z in turn, so a shifted or mixed text shows. */
export function fillerOf(seq: number): number {
  return 0x61 + seq % 26;
}

function writeDigits(bytes: Uint8Array, at: number, value: number, digits: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    bytes[at + i] = ALPHABET[value % 64];
    value = Math.floor(value / 64);
  }
}

/** Writes a stamp at `at`; `time` in whole microseconds, below 2 ** 36. */
export function writeStamp(
  bytes: Uint8Array,
  at: number,
  kind: number,
  kb: number,
  seq: number,
  time: number,
): void {
  bytes[at] = kind;
  writeDigits(bytes, at + 1, kb, 2);
  writeDigits(bytes, at + 3, seq, 6);
  writeDigits(bytes, at + 9, time, 6);
}

/** Reads stamps into its fields, without allocating. */
export class StampReader {
  kind = 0;
  kb = 0;
  seq = 0;
  time = 0;

  /** Reads the stamp at `at`; false if any digit is not one. */
  read(b: Uint8Array, at: number): boolean {
    const v = VALUE;
    const k0 = v[b[at + 1]], k1 = v[b[at + 2]];
    const s0 = v[b[at + 3]], s1 = v[b[at + 4]], s2 = v[b[at + 5]];
    const s3 = v[b[at + 6]], s4 = v[b[at + 7]], s5 = v[b[at + 8]];
    const t0 = v[b[at + 9]], t1 = v[b[at + 10]], t2 = v[b[at + 11]];
    const t3 = v[b[at + 12]], t4 = v[b[at + 13]], t5 = v[b[at + 14]];
    // Any -1 makes the OR negative: one branch for all fourteen digits.
    const bad = k0 | k1 | s0 | s1 | s2 | s3 | s4 | s5 | t0 | t1 | t2 | t3 | t4 | t5;
    if (bad < 0) return false;
    this.kind = b[at];
    this.kb = (k0 << 6) | k1;
    this.seq = ((s0 << 12) | (s1 << 6) | s2) * B18 + ((s3 << 12) | (s4 << 6) | s5);
    this.time = ((t0 << 12) | (t1 << 6) | t2) * B18 + ((t3 << 12) | (t4 << 6) | t5);
    return true;
  }
}
