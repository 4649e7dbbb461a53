/**
 * The display client's loop: identify, then turn every frame into one printed line. It only
 * sees a {@linkcode Reader}/{@linkcode Writer} pair, so the same loop serves TCP, TLS and tests.
 *
 * @module
 */

import { ProtocolError } from "../protocol/errors.ts";
import { decodeFrameBody, type Message } from "../protocol/frame.ts";
import { FrameDecoder, splitFrames } from "../protocol/frame_decoder.ts";
import { encodeIdentify } from "../protocol/identify.ts";
import { neutralizeControls } from "../protocol/sanitize.ts";
import { formatTimestamp } from "../protocol/time.ts";
import { looksLikeTlsRecord } from "../net/transport.ts";
import { type Reader, writeAll, type Writer } from "../net/wire_io.ts";

/**
 * Formats a message as the display prints it: `<username> YYYY-MM-DD HH:mm:ss <text>`, with
 * control characters neutralised so that no user can drive another's terminal.
 */
export function formatLine(message: Message): string {
  return `${neutralizeControls(message.username)} ${formatTimestamp(message.time)} ${
    neutralizeControls(message.text)
  }`;
}

async function writeLines(out: Writer, messages: Message[]): Promise<void> {
  let lines = "";
  for (const message of messages) lines += formatLine(message) + "\n";
  await writeAll(out, encoder.encode(lines));
}

function decodeAll(frames: Uint8Array, littleEndian: boolean): Message[] {
  return splitFrames(frames, { littleEndian }).map((body) =>
    decodeFrameBody(body, { littleEndian })
  );
}

/** Options for {@linkcode runDisplay}. */
export interface DisplayOptions {
  littleEndian?: boolean;
  /** Called once the identify code is sent, e.g. to reset a reconnect backoff. */
  onIdentified?: () => void;
}

const encoder = new TextEncoder();

/**
 * Identifies as a display on `conn`, then writes one line per message to `out`, each batch
 * as soon as it arrives (so it works in a pipe). Resolves when the server closes the
 * connection; rejects with a ProtocolError if it sends a malformed frame, or with the
 * writer's error if `out` is closed.
 */
export async function runDisplay(
  conn: Reader & Writer,
  out: Writer,
  options: DisplayOptions = {},
): Promise<void> {
  await receiveMessages(conn, (messages) => writeLines(out, messages), options);
}

/**
 * The display's loop without the printing, for any client that shows messages its own way
 * (the chat): identifies as a display on `conn`, then hands each batch of messages to
 * `onMessages` as it arrives, awaiting it before reading on. Resolves when the server closes
 * the connection; rejects with a ProtocolError if it sends a malformed frame (after handing
 * over the messages that arrived intact before it), or with `onMessages`' error.
 */
export async function receiveMessages(
  conn: Reader & Writer,
  onMessages: (messages: Message[]) => void | Promise<void>,
  options: DisplayOptions = {},
): Promise<void> {
  const littleEndian = options.littleEndian ?? false;
  await writeAll(conn, encodeIdentify("display", littleEndian));
  options.onIdentified?.();
  // The server enforces the frame size limit; a display accepts any valid frame.
  const decoder = new FrameDecoder({ littleEndian, maxFrame: 2 ** 31 - 1 });
  const buffer = new Uint8Array(64 * 1024);
  for (let first = true;; first = false) {
    const n = await conn.read(buffer);
    if (n === null) return;
    if (first && looksLikeTlsRecord(buffer.subarray(0, n))) {
      throw new ProtocolError(
        "identify",
        "overall_length",
        0,
        "the server answered with a TLS record: this port speaks TLS, connect with --tls",
      );
    }
    let messages: Message[];
    try {
      messages = decoder.push(buffer.subarray(0, n));
    } catch (error) {
      // Hand over what arrived intact before the broken frame, then give up.
      if (error instanceof ProtocolError) {
        const intact = decodeAll(error.precedingFrames, littleEndian);
        if (intact.length > 0) await onMessages(intact);
      }
      throw error;
    }
    if (messages.length > 0) await onMessages(messages);
  }
}
