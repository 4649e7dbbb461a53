/**
 * The identify code a client sends first, and how the server learns the client's byte order
 * from it.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** Identify code of a display client: it only receives messages. */
export const DISPLAY = 1;
/** Identify code of a keyboard client: it only sends messages. */
export const KEYBOARD = 2;

/** The role a client declares. */
export type Role = "display" | "keyboard";

/** What a four-byte identify code said. */
export interface Identity {
  role: Role;
  littleEndian: boolean;
}

/** Encodes the identify code for a role, big-endian unless asked otherwise. */
export function encodeIdentify(role: Role, littleEndian = false): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, role === "display" ? DISPLAY : KEYBOARD, littleEndian);
  return bytes;
}

/**
 * Reads an identify code in either byte order. A big-endian 1 or 2 is `00 00 00 0N`, a
 * little-endian one `0N 00 00 00`; the two cannot be confused, so the server can serve peers
 * built on either convention.
 */
export function parseIdentify(bytes: Uint8Array): Identity {
  if (bytes.length < 4) {
    // A DataView of 4 bytes would read past a shorter view, or throw RangeError.
    throw new ProtocolError(
      "truncated",
      "identify",
      0,
      `identify code truncated: got ${bytes.length} of 4 bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  for (const littleEndian of [false, true]) {
    const code = view.getInt32(0, littleEndian);
    if (code === DISPLAY) return { role: "display", littleEndian };
    if (code === KEYBOARD) return { role: "keyboard", littleEndian };
  }
  const hex = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  const hint = bytes[0] === 0x16 && bytes[1] === 0x03
    ? " (a TLS handshake: this port is plain TCP, use the TLS port)"
    : "";
  throw new ProtocolError(
    "identify",
    "identify",
    0,
    `unknown identify code ${hex}: expected 00 00 00 01 (DISPLAY) or 00 00 00 02 (KEYBOARD)${hint}`,
  );
}
