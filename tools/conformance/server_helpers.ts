/**
 * What the server checks share: dialling the server under test as a display or keyboard,
 * building frames, making sure every display is registered before a check's messages flow
 * (the "barrier"), and turning what a display received into a precise failure.
 *
 * @module
 */

import { ProtocolError } from "../../lib/protocol/errors.ts";
import {
  decodeFrameBody,
  encodeFrame,
  type Message,
  type Timestamp,
} from "../../lib/protocol/frame.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { dial as dialConn, formatAddress } from "../../lib/net/transport.ts";
import { type CheckContext, CheckFailure } from "./check.ts";
import { before, delay, remaining, seconds } from "./deadline.ts";
import { dumpBytes, dumpFrame, hexBytes } from "./hexdump.ts";
import { BIG_ENDIAN_ADVICE, equalBytes, relayHint } from "./hints.ts";
import { describe, Peer, ReadFailure } from "./peer.ts";

/** The server under test and how to reach it. */
export interface ServerTarget {
  host: string;
  port: number;
  tls: boolean;
  /** PEM root certificates to trust for TLS; the system's when absent. */
  caCerts?: string[];
  /** The server's maximum overall_length. */
  maxFrame: number;
  /** Random per run, in the texts of this run's messages. */
  nonce: string;
}

/** A fixed time, far from now, so that a server that re-stamps messages shows. */
export const FIXED_TIME: Timestamp = {
  year: 2024,
  month: 1,
  day: 2,
  hour: 3,
  minute: 4,
  second: 5,
};

/** Username of the barrier's messages. */
export const SYNC_USER = "conformance";

/** Options for opening a client connection to the server under test. */
export interface OpenOptions {
  label: string;
  littleEndian?: boolean;
  /** Send the identify code (default true). */
  identify?: boolean;
}

/** Connects to the server, plain or TLS, under the check's deadline. */
export async function dial(
  ctx: CheckContext,
  target: ServerTarget,
  options: OpenOptions,
): Promise<Peer> {
  const address = formatAddress(target.host, target.port);
  const attempt = dialConn({ ...target, noDelay: true });
  let settled;
  try {
    settled = await before(attempt, ctx.deadline);
  } catch (error) {
    throw new CheckFailure(`${options.label} could not connect to ${address}: ${describe(error)}`, {
      hint: connectHint(error, target),
    });
  }
  if (settled.timedOut) {
    attempt.then((conn) => conn.close(), () => {});
    throw new CheckFailure(
      `${options.label} could not connect to ${address}: no answer within ${
        seconds(ctx.timeoutMs)
      }`,
      { hint: "the server is not accepting connections (is its accept loop blocked?)" },
    );
  }
  return ctx.track(new Peer(settled.value, options.label, options.littleEndian ?? false));
}

function connectHint(error: unknown, target: ServerTarget): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `is the server running and listening on port ${target.port}?`;
  }
  if (target.tls && /certificate|issuer|UnknownCA/i.test(message)) {
    return "the server's certificate is not trusted: pass --ca with the root CA that signed it";
  }
  if (target.tls && /corrupt|InvalidContentType|wrong version|reset|eof/i.test(message)) {
    return "the TLS handshake failed: is the server listening with TLS on that port?";
  }
  return undefined;
}

/** Opens a display (identified unless told otherwise). */
export async function openDisplay(
  ctx: CheckContext,
  target: ServerTarget,
  options: OpenOptions,
): Promise<Peer> {
  const peer = await dial(ctx, target, options);
  if (options.identify !== false) await send(peer, encodeIdentify("display", peer.littleEndian));
  return peer;
}

/** Opens a keyboard (identified unless told otherwise). */
export async function openKeyboard(
  ctx: CheckContext,
  target: ServerTarget,
  options: OpenOptions,
): Promise<Peer> {
  const peer = await dial(ctx, target, options);
  if (options.identify !== false) await send(peer, encodeIdentify("keyboard", peer.littleEndian));
  return peer;
}

/** Writes to a peer; a failure means the server dropped it. */
export async function send(peer: Peer, bytes: Uint8Array): Promise<void> {
  try {
    await peer.write(bytes);
  } catch (error) {
    throw new CheckFailure(
      `the server closed ${peer.label}'s connection (${describe(error)}) while it was sending`,
    );
  }
}

/** Encodes a message with {@linkcode FIXED_TIME} unless a time is given. */
export function frameOf(
  username: string,
  text: string,
  options: { time?: Timestamp; littleEndian?: boolean } = {},
): Uint8Array {
  return encodeFrame({ username, time: options.time ?? FIXED_TIME, text }, options);
}

/** Decodes a whole frame, or returns the reason it is not valid. */
export function decode(frame: Uint8Array, littleEndian: boolean): Message | string {
  try {
    return decodeFrameBody(frame.subarray(4), { littleEndian });
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** An annotated dump of a frame that does not decode, marking the field that broke a rule. */
export function dumpInvalid(frame: Uint8Array, littleEndian: boolean): string[] {
  try {
    decodeFrameBody(frame.subarray(4), { littleEndian });
  } catch (error) {
    if (error instanceof ProtocolError) {
      return dumpFrame(frame, { littleEndian, marks: { [error.field]: error.message } });
    }
  }
  return dumpFrame(frame, { littleEndian });
}

/** True when two frames are equal apart from their six date fields. */
export function sameExceptTime(a: Uint8Array, b: Uint8Array, littleEndian: boolean): boolean {
  if (a.length !== b.length || a.length < 40) return false;
  const ulen = new DataView(a.buffer, a.byteOffset).getInt32(4, littleEndian);
  if (ulen < 0 || 8 + ulen + 24 > a.length) return equalBytes(a, b);
  const copy = b.slice();
  copy.set(a.subarray(8 + ulen, 8 + ulen + 24), 8 + ulen);
  return equalBytes(a, copy);
}

/**
 * Reads the next frame from a display; any failure becomes a {@linkcode CheckFailure} that
 * says what was awaited and shows the bytes that did arrive, diagnosed against `sent`.
 */
export async function nextFrame(
  ctx: CheckContext,
  display: Peer,
  what: string,
  options: { sent?: Uint8Array; maxFrame?: number; deadline?: number } = {},
): Promise<Uint8Array> {
  try {
    return await display.readFrame(options.deadline ?? ctx.deadline, {
      maxFrame: Math.max(options.maxFrame ?? 0, 1 << 20),
    });
  } catch (error) {
    throw readFailure(error, display, what, ctx, options.sent);
  }
}

/** Turns a failed read on a display into a report. */
export function readFailure(
  error: unknown,
  display: Peer,
  what: string,
  ctx: CheckContext,
  sent?: Uint8Array,
): CheckFailure | unknown {
  if (!(error instanceof ReadFailure)) return error;
  const partial = error.partial;
  const dump = partial.length === 0
    ? undefined
    : partial.length >= 40
    ? dumpFrame(partial, { littleEndian: display.littleEndian })
    : dumpBytes(partial);
  const hint = sent && partial.length > 0
    ? relayHint(sent, partial, display.littleEndian)
    : undefined;
  const expected = sent ? `${what}: ${sent.length} bytes ${hexBytes(sent, 16)}` : what;
  switch (error.reason) {
    case "timeout":
      return new CheckFailure(
        partial.length === 0
          ? `${display.label} received nothing: no answer within ${seconds(ctx.timeoutMs)}`
          : `${display.label} received only ${partial.length} byte(s) of a frame within ${
            seconds(ctx.timeoutMs)
          }`,
        { expected, dump, hint },
      );
    case "eof":
      return new CheckFailure(
        `the server closed ${display.label}'s connection${
          partial.length ? ` after ${partial.length} byte(s) of a frame` : ""
        }`,
        { expected, dump, hint },
      );
    case "error":
      return new CheckFailure(
        `${display.label}'s connection failed: ${describe(display.error)}`,
        { expected, dump, hint },
      );
    case "malformed":
      return new CheckFailure(`${error.message}`, {
        expected,
        dump: dumpBytes(partial, 64),
        hint: hint ?? malformedHint(partial, display.littleEndian),
      });
  }
}

function malformedHint(partial: Uint8Array, littleEndian: boolean): string {
  const other = partial.length >= 4
    ? new DataView(partial.buffer, partial.byteOffset).getInt32(0, !littleEndian)
    : -1;
  if (other >= 32 && other <= 1 << 24) {
    return littleEndian
      ? "the frame arrived big-endian at a display that identified little-endian " +
        "(01 00 00 00): such a display gets every int32 little-endian"
      : "the frame arrived little-endian at a big-endian display; " + BIG_ENDIAN_ADVICE;
  }
  return "the display cannot find the frame boundaries in what the server sent";
}

/**
 * Makes sure every display is registered with the server before a check's messages flow:
 * the keyboard sends numbered sync messages until every display has received the latest
 * one. Everything a display received up to that message is dropped.
 */
export async function barrier(
  ctx: CheckContext,
  target: ServerTarget,
  keyboard: Peer,
  displays: Peer[],
): Promise<void> {
  let wait = 100;
  for (let round = 1;; round++) {
    const text = `sync ${target.nonce} ${round}`;
    await send(keyboard, frameOf(SYNC_USER, text, { littleEndian: keyboard.littleEndian }));
    const roundDeadline = Math.min(ctx.deadline, Date.now() + wait);
    const seen = await Promise.all(
      displays.map((d) => untilText(ctx, d, text, roundDeadline, target.maxFrame)),
    );
    if (seen.every(Boolean)) return;
    if (remaining(ctx.deadline) === 0) {
      const missing = displays.filter((_, i) => !seen[i]);
      const first = missing[0];
      throw new CheckFailure(
        `${describeMissing(missing, displays.length)}: no answer within ${
          seconds(ctx.timeoutMs)
        } (${round} tries)`,
        {
          expected: `every display receives the keyboard's message "${text}"`,
          dump: first.unread().length > 0 ? dumpBytes(first.unread(), 64) : undefined,
          hint: "does the server read the 4-byte identify code (00 00 00 01 display, " +
            "00 00 00 02 keyboard) and then relay each keyboard frame to every display?",
        },
      );
    }
    wait = Math.min(wait * 2, 500);
  }
}

function describeMissing(missing: Peer[], of: number): string {
  const names = missing.map((d) => d.label).join(", ");
  const received = missing.map((d) => d.received).reduce((a, b) => a + b, 0);
  return `${names} (${missing.length} of ${of}) never received the keyboard's message` +
    (received > 0 ? ` (${received} byte(s) of something else arrived)` : "");
}

/** Reads frames from `display` until one carries `text`; false at the deadline. */
async function untilText(
  ctx: CheckContext,
  display: Peer,
  text: string,
  deadline: number,
  maxFrame: number,
): Promise<boolean> {
  for (;;) {
    let frame: Uint8Array;
    try {
      frame = await display.readFrame(deadline, { maxFrame: Math.max(maxFrame, 1 << 20) });
    } catch (error) {
      if (error instanceof ReadFailure && error.reason === "timeout") return false;
      throw readFailure(error, display, "the keyboard's messages", ctx);
    }
    const message = decode(frame, display.littleEndian);
    if (typeof message === "string") {
      throw new CheckFailure(`${display.label} received a frame that is not valid: ${message}`, {
        dump: dumpInvalid(frame, display.littleEndian),
        hint: display.littleEndian
          ? "a display that identified little-endian must receive little-endian frames"
          : undefined,
      });
    }
    if (message.username === SYNC_USER && message.text === text) return true;
  }
}

/** Waits briefly so the server can act on what was just sent. */
export function settle(ms = 50): Promise<void> {
  return delay(ms);
}

/** Texts of `n` bytes of ASCII that end in a recognisable marker. */
export function longText(n: number, marker: string): string {
  const tail = ` ${marker} END`;
  const body = "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(n / 45) + 1);
  return body.slice(0, Math.max(0, n - tail.length)) + tail;
}
