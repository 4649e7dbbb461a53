/**
 * The lab brief's helper API under the brief's own names, as thin wrappers over the real
 * code, so that readers of the brief recognise them. The snake_case is deliberate here; the
 * rest of the project uses its own names (README: "Coming from the lab brief").
 *
 * @module
 */

import {
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  FIXED_BODY_SIZE,
} from "./protocol/frame.ts";
import { ProtocolError } from "./protocol/errors.ts";
import { DISPLAY as DISPLAY_CODE, KEYBOARD as KEYBOARD_CODE } from "./protocol/identify.ts";
import { formatTimestamp, localTimestamp } from "./protocol/time.ts";
import { type Reader, readExact, writeAll, type Writer } from "./net/wire_io.ts";

/** The identify code of a display client. */
export const DISPLAY = DISPLAY_CODE;
/** The identify code of a keyboard client. */
export const KEYBOARD = KEYBOARD_CODE;

/** A message as the brief's `comms` module holds it. */
export interface BriefMessage {
  username: string;
  /** [year, month, date, hour, minute, second] */
  date_time: number[];
  text: string;
}

/** Receives exactly `n` bytes, or null if the connection ends or fails first. */
export async function recvall(sock: Reader, n: number): Promise<Uint8Array | null> {
  try {
    return await readExact(sock, n);
  } catch {
    return null;
  }
}

/** Sends every byte; true on success, false if the connection failed. */
export async function sendall(sock: Writer, data: Uint8Array): Promise<boolean> {
  try {
    await writeAll(sock, data);
    return true;
  } catch {
    return false;
  }
}

/** The local time now, as [year, month, date, hour, minute, second]. */
export function get_time_now(): number[] {
  const t = localTimestamp();
  return [t.year, t.month, t.day, t.hour, t.minute, t.second];
}

/** Formats [year, month, date, hour, minute, second] as "YYYY-MM-DD HH:mm:ss". */
export function format_date_time(date_time: number[]): string {
  const [year, month, day, hour, minute, second] = date_time;
  return formatTimestamp({ year, month, day, hour, minute, second });
}

/** Packs a message into a complete frame (network byte order), stamped now unless given. */
export function pack_message(
  username: string,
  text: string,
  date_time: number[] = get_time_now(),
): Uint8Array {
  const [year, month, day, hour, minute, second] = date_time;
  return encodeFrame({ username, text, time: { year, month, day, hour, minute, second } });
}

/** Unpacks a complete frame (with its overall_length) into a message; throws ProtocolError. */
export function unpack_message(frame: Uint8Array): BriefMessage {
  const overall = new DataView(frame.buffer, frame.byteOffset, 4).getInt32(0);
  if (overall !== frame.length - 4) {
    throw new ProtocolError(
      "length-mismatch",
      "overall_length",
      0,
      `overall_length says ${overall} but the frame has ${frame.length - 4} bytes after it`,
    );
  }
  const m = decodeFrameBody(frame.subarray(4));
  const t = m.time;
  return {
    username: m.username,
    date_time: [t.year, t.month, t.day, t.hour, t.minute, t.second],
    text: m.text,
  };
}

/** Sends one message; true on success. */
export function send_message(sock: Writer, username: string, text: string): Promise<boolean> {
  return sendall(sock, pack_message(username, text));
}

/** Receives one message, or null if the connection ended or the frame was malformed. */
export async function receive_message(
  sock: Reader,
  max_frame: number = DEFAULT_MAX_FRAME,
): Promise<BriefMessage | null> {
  const header = await recvall(sock, 4);
  if (header === null) return null;
  const overall = new DataView(header.buffer).getInt32(0);
  if (overall < FIXED_BODY_SIZE || overall > max_frame) return null;
  const body = await recvall(sock, overall);
  if (body === null) return null;
  const frame = new Uint8Array(4 + overall);
  frame.set(header);
  frame.set(body, 4);
  try {
    return unpack_message(frame);
  } catch {
    return null;
  }
}
