/**
 * The keyboard client's loop: identify, then send each line of input as one message stamped
 * with the local time. Input and connection are plain {@linkcode Reader}/{@linkcode Writer}s.
 *
 * @module
 */

import { UsageError } from "../cli/user_errors.ts";
import { concatBytes } from "../protocol/bytes.ts";
import {
  DEFAULT_MAX_FRAME,
  encodeFrameBytes,
  FIXED_BODY_SIZE,
  type Timestamp,
} from "../protocol/frame.ts";
import { encodeIdentify } from "../protocol/identify.ts";
import { localTimestamp } from "../protocol/time.ts";
import { type Reader, writeAll, type Writer } from "../net/wire_io.ts";

const encoder = new TextEncoder();

/** Reads text lines from a byte stream, whatever the chunking; a final unterminated line counts. */
export class LineReader {
  #reader: Reader;
  #decoder = new TextDecoder();
  #pending = "";
  #lines: string[] = [];
  #done = false;
  #buffer = new Uint8Array(16 * 1024);

  constructor(reader: Reader) {
    this.#reader = reader;
  }

  /** The next line (without its line ending), or null at end of input. */
  async nextLine(): Promise<string | null> {
    if (this.#lines.length === 0 && !(await this.#fill())) return null;
    return this.#lines.shift()!;
  }

  /** Every complete line available now (at least one), or null at end of input. */
  async nextLines(): Promise<string[] | null> {
    if (this.#lines.length === 0 && !(await this.#fill())) return null;
    const lines = this.#lines;
    this.#lines = [];
    return lines;
  }

  /** Reads until at least one line is complete; false at end of input. */
  async #fill(): Promise<boolean> {
    while (!this.#done) {
      const n = await this.#reader.read(this.#buffer);
      if (n === null) {
        this.#done = true;
        this.#pending += this.#decoder.decode();
        break;
      }
      this.#pending += this.#decoder.decode(this.#buffer.subarray(0, n), { stream: true });
      const end = this.#pending.lastIndexOf("\n");
      if (end >= 0) {
        this.#lines = this.#pending.slice(0, end).split("\n").map(stripCarriageReturn);
        this.#pending = this.#pending.slice(end + 1);
        return true;
      }
    }
    if (this.#pending === "") return false;
    this.#lines = [stripCarriageReturn(this.#pending)];
    this.#pending = "";
    return true;
  }
}

function stripCarriageReturn(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/**
 * Splits text into pieces whose UTF-8 encoding fits in `maxBytes`, never inside a character,
 * so that a very long line still reaches the server as several valid messages.
 */
export function splitText(text: Uint8Array, maxBytes: number): Uint8Array[] {
  if (text.length <= maxBytes) return [text];
  // Fewer bytes than one character may take would never move forward.
  if (maxBytes < 4) throw new RangeError(`no room for text in a frame (${maxBytes} bytes)`);
  const pieces: Uint8Array[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + maxBytes, text.length);
    // Back up over UTF-8 continuation bytes (10xxxxxx) so a character is never cut.
    while (end < text.length && end > start && (text[end] & 0xc0) === 0x80) end--;
    if (end === start) end = Math.min(start + maxBytes, text.length);
    pieces.push(text.subarray(start, end));
    start = end;
  }
  return pieces;
}

/**
 * Refuses a username so long that a frame has no room left for text (the frame's limit is
 * `maxFrame`, 64 KiB by default), in one sentence.
 */
export function checkUsername(username: string, maxFrame = DEFAULT_MAX_FRAME): void {
  const bytes = encoder.encode(username).length;
  const most = maxFrame - FIXED_BODY_SIZE - 4;
  if (bytes > most) {
    throw new UsageError(
      `The username is ${bytes} bytes long; at most ${most} leave room for text in a frame.`,
    );
  }
}

/** Options for {@linkcode runKeyboard}. */
export interface KeyboardOptions {
  littleEndian?: boolean;
  /** Largest overall_length to send; longer lines are split. Default 64 KiB. */
  maxFrame?: number;
}

/**
 * The frames for a batch of lines typed together, stamped with one time: a line longer than
 * a frame allows becomes several messages, each cut between characters.
 */
export function encodeLines(
  username: string,
  lines: readonly string[],
  options: KeyboardOptions & { time?: Timestamp } = {},
): Uint8Array {
  const littleEndian = options.littleEndian ?? false;
  const user = encoder.encode(username);
  const room = (options.maxFrame ?? DEFAULT_MAX_FRAME) - FIXED_BODY_SIZE - user.length;
  const time = options.time ?? localTimestamp();
  return concatBytes(
    lines.flatMap((line) =>
      splitText(encoder.encode(line), room).map((text) =>
        encodeFrameBytes(user, time, text, { littleEndian })
      )
    ),
  );
}

/**
 * Identifies as a keyboard on `conn` and sends every line from `lines` as `username`, until
 * the input ends. Each batch of lines that arrived together goes out in one write.
 */
export async function runKeyboard(
  conn: Writer,
  username: string,
  lines: LineReader,
  options: KeyboardOptions = {},
): Promise<void> {
  await writeAll(conn, encodeIdentify("keyboard", options.littleEndian ?? false));
  for (let batch = await lines.nextLines(); batch !== null; batch = await lines.nextLines()) {
    await writeAll(conn, encodeLines(username, batch, options));
  }
}
