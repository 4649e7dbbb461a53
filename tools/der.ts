/**
 * Just enough DER (ITU-T X.690) to write an X.509 certificate: each function returns one
 * complete tag-length-value as bytes, so a certificate is built by nesting calls.
 *
 * Why our own: the certificate library this replaces pulled 21 npm packages, and `deno task`
 * downloads every npm package of the lock file before any task runs, so a display started
 * for the first time downloaded a certificate library it never uses.
 *
 * @module
 */

/** One TLV with `tag` around the concatenated `contents`. */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = contents.reduce((sum, part) => sum + part.length, 0);
  const header = [tag];
  if (length < 0x80) {
    header.push(length);
  } else {
    const octets: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
    header.push(0x80 | octets.length, ...octets);
  }
  const out = new Uint8Array(header.length + length);
  out.set(header);
  let at = header.length;
  for (const part of contents) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** SEQUENCE. */
export function sequence(...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x30, ...contents);
}

/** SET (of one element here, so DER's sorting rule has nothing to sort). */
export function set(...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x31, ...contents);
}

/** A context-specific, constructed (explicit) tag `[n]`. */
export function explicit(n: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0xa0 | n, ...contents);
}

/** A context-specific, primitive (implicit) tag `[n]` over raw bytes. */
export function implicit(n: number, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x80 | n, bytes);
}

/** BOOLEAN. */
export function boolean(value: boolean): Uint8Array<ArrayBuffer> {
  return tlv(0x01, Uint8Array.of(value ? 0xff : 0x00));
}

/**
 * A non-negative INTEGER from its big-endian magnitude: leading zero octets dropped, one
 * zero octet added where the top bit would make it negative.
 */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array<ArrayBuffer> {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  return bytes[0] & 0x80 ? tlv(0x02, Uint8Array.of(0), bytes) : tlv(0x02, bytes);
}

/** A small INTEGER (0..127), e.g. a version number. */
export function smallInteger(value: number): Uint8Array<ArrayBuffer> {
  return tlv(0x02, Uint8Array.of(value));
}

/** OBJECT IDENTIFIER from its dotted form, e.g. "2.5.29.19". */
export function oid(dotted: string): Uint8Array<ArrayBuffer> {
  const [first, second, ...rest] = dotted.split(".").map(Number);
  const octets = [first * 40 + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) {
      groups.unshift(0x80 | (n & 0x7f));
    }
    octets.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(octets));
}

/** UTF8String. */
export function utf8String(text: string): Uint8Array<ArrayBuffer> {
  return tlv(0x0c, new TextEncoder().encode(text));
}

/** OCTET STRING. */
export function octetString(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x04, bytes);
}

/** BIT STRING of whole octets, or with `unusedBits` trailing bits of the last one unused. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array<ArrayBuffer> {
  return tlv(0x03, Uint8Array.of(unusedBits), bytes);
}

/**
 * A certificate validity time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049,
 * GeneralizedTime from 2050, to the second, in UTC.
 */
export function time(date: Date): Uint8Array<ArrayBuffer> {
  const iso = date.toISOString(); // 2026-12-02T01:05:36.626Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z"; // 20261202010536Z
  const year = date.getUTCFullYear();
  const ascii = (text: string) => new TextEncoder().encode(text);
  return year < 2050 ? tlv(0x17, ascii(digits.slice(2))) : tlv(0x18, ascii(digits));
}

/** PEM armour around DER bytes, with 64-character lines and a final newline. */
export function pem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const byte of der) binary += String.fromCharCode(byte);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
