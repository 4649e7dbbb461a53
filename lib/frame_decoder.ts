/**
 * Incremental frame decoder: bytes in, in any split, complete frames out. It never sees a
 * socket, so the server, both clients, the tests and the tools all share it.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import {
  type ByteOrderOptions,
  checkFrameBody,
  decodeFrameBody,
  DEFAULT_MAX_FRAME,
  FIXED_BODY_SIZE,
  LENGTH_FIELD_SIZE,
  type Message,
} from "./frame.ts";

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions extends ByteOrderOptions {
  /** Largest overall_length accepted; larger is rejected before any of it is buffered. */
  maxFrame?: number;
}

/**
 * Splits a byte stream into validated frames.
 *
 * Every frame's overall_length is checked as soon as its four bytes arrive, so a peer that
 * announces a huge or negative length is refused before anything is buffered for it. What
 * {@linkcode FrameDecoder.pushFrames} and {@linkcode FrameDecoder.push} return never aliases
 * the chunk passed in, so callers may reuse their read buffer.
 *
 * @example Bytes one at a time
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * import { FrameDecoder } from "./frame_decoder.ts";
 * const time = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
 * const bytes = encodeFrame({ username: "Jason", time, text: "Hello World" });
 * const decoder = new FrameDecoder();
 * const messages = [...bytes].flatMap((b) => decoder.push(Uint8Array.of(b)));
 * if (messages[0].text !== "Hello World") throw new Error("decoding failed");
 * ```
 */
export class FrameDecoder {
  readonly littleEndian: boolean;
  readonly maxFrame: number;
  /** Holds the start of an incomplete frame; `#held` bytes of it are in use. */
  #buffer = new Uint8Array(0);
  #held = 0;
  /** Bytes of complete frames passed so far, so errors can say where in the stream. */
  #consumed = 0;
  /** The first broken rule; once set, every push throws it. */
  #failure: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.littleEndian = options.littleEndian ?? false;
    this.maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  /** Bytes of an incomplete frame held back; non-zero means a frame has started. */
  get buffered(): number {
    return this.#held;
  }

  /**
   * Takes the next bytes of the stream and returns the complete frames they finish, as one
   * contiguous copy in the stream's own byte order (empty when none completed). Throws
   * {@linkcode ProtocolError} at the first broken rule, carrying the valid frames of this
   * chunk that preceded it in `precedingFrames`; the decoder is unusable after that.
   */
  pushFrames(chunk: Uint8Array): Uint8Array {
    let frames: Uint8Array;
    if (this.#held === 0) {
      // Fast path: scan the caller's chunk in place and keep only the incomplete tail.
      const end = this.#scan(chunk, chunk.length);
      this.#hold(chunk.subarray(end));
      frames = chunk.slice(0, end);
    } else {
      this.#hold(chunk);
      const end = this.#scan(this.#buffer, this.#held);
      frames = this.#buffer.slice(0, end);
      this.#buffer.copyWithin(0, end, this.#held);
      this.#held -= end;
    }
    if (this.#failure) {
      // What the peer sent correctly before the broken frame is still delivered.
      this.#failure.precedingFrames = frames;
      throw this.#failure;
    }
    return frames;
  }

  /** Like {@linkcode FrameDecoder.pushFrames}, but returns the decoded messages. */
  push(chunk: Uint8Array): Message[] {
    return splitFrames(this.pushFrames(chunk), this).map((body) => decodeFrameBody(body, this));
  }

  /** Appends bytes to the held tail, growing the buffer geometrically. */
  #hold(bytes: Uint8Array): void {
    const need = this.#held + bytes.length;
    if (need > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(need, this.#buffer.length * 2, 256));
      grown.set(this.#buffer.subarray(0, this.#held));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#held);
    this.#held = need;
  }

  /**
   * Validates frames from the start of `bytes`; returns the end of the last complete valid
   * one. A broken rule is kept in `#failure` for pushFrames to throw.
   */
  #scan(bytes: Uint8Array, length: number): number {
    if (this.#failure) throw this.#failure;
    const view = new DataView(bytes.buffer, bytes.byteOffset, length);
    const le = this.littleEndian;
    let at = 0;
    try {
      while (length - at >= LENGTH_FIELD_SIZE) {
        const overall = view.getInt32(at, le);
        this.#checkOverall(overall);
        if (length - at - LENGTH_FIELD_SIZE < overall) break;
        checkFrameBody(view, at + LENGTH_FIELD_SIZE, overall, le);
        at += LENGTH_FIELD_SIZE + overall;
        this.#consumed += LENGTH_FIELD_SIZE + overall;
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#failure = this.#locate(error);
    }
    return at;
  }

  #checkOverall(overall: number): void {
    if (overall < 0) {
      throw new ProtocolError(
        "negative-length",
        "overall_length",
        0,
        `overall_length is negative (${overall})`,
      );
    }
    if (overall < FIXED_BODY_SIZE) {
      throw new ProtocolError(
        "length-mismatch",
        "overall_length",
        0,
        `overall_length ${overall} is less than the 32 bytes of fixed fields`,
      );
    }
    if (overall > this.maxFrame) {
      throw new ProtocolError(
        "frame-too-large",
        "overall_length",
        0,
        `overall_length ${overall} exceeds the maximum frame size ${this.maxFrame}`,
      );
    }
  }

  /** Adds the frame's position in the stream to an error's message. */
  #locate(error: ProtocolError): ProtocolError {
    const located = new ProtocolError(
      error.kind,
      error.field,
      error.offset,
      `malformed frame at stream byte ${this.#consumed}: ${error.message}`,
    );
    return located;
  }
}

/** Splits a run of complete, validated frames into their bodies (views, not copies). */
export function splitFrames(frames: Uint8Array, options: ByteOrderOptions = {}): Uint8Array[] {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const bodies: Uint8Array[] = [];
  let at = 0;
  while (at < frames.length) {
    const overall = view.getInt32(at, options.littleEndian ?? false);
    bodies.push(frames.subarray(at + LENGTH_FIELD_SIZE, at + LENGTH_FIELD_SIZE + overall));
    at += LENGTH_FIELD_SIZE + overall;
  }
  return bodies;
}

/** Counts the frames in a run of complete, validated frames without copying. */
export function countFrames(frames: Uint8Array, options: ByteOrderOptions = {}): number {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  let count = 0;
  for (let at = 0; at < frames.length; count++) {
    at += LENGTH_FIELD_SIZE + view.getInt32(at, options.littleEndian ?? false);
  }
  return count;
}
