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
import { concatBytes } from "./bytes.ts";

const EMPTY: Uint8Array<ArrayBuffer> = new Uint8Array(0);
/**
 * Frames up to this size are allocated at their full size as soon as their length is known
 * (the default --max-frame is 64 KiB); larger ones grow as their bytes arrive.
 */
const EXACT_LIMIT = 64 * 1024 + LENGTH_FIELD_SIZE;

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
  /**
   * The incomplete frame, `#held` bytes of it received. Once its length is known it is
   * allocated at its own size (frames up to {@linkcode EXACT_LIMIT}), so a frame that arrives
   * in pieces costs its size once; larger frames grow to it as their bytes arrive, so a peer
   * cannot reserve a huge frame with 4 bytes.
   */
  #buffer: Uint8Array<ArrayBuffer> = EMPTY;
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

  /** Bytes of memory reserved for the incomplete frame (at least {@linkcode buffered}). */
  get reserved(): number {
    return this.#buffer.length;
  }

  /**
   * Frees the incomplete frame's memory at once, rather than at the next garbage collection
   * (which an idle server may not run for a long time): its buffer is detached. The decoder
   * must not be used after, and no read may be pending into {@linkcode spare}.
   */
  release(): void {
    const buffer = this.#buffer;
    this.#buffer = EMPTY;
    this.#held = 0;
    if (buffer !== EMPTY && !buffer.buffer.detached) buffer.buffer.transfer(0);
  }

  /**
   * The unfilled rest of the incomplete frame's buffer (empty when there is none): a reader
   * may read straight into it and push what it read, which the decoder then takes without a
   * copy. A large frame arriving in pieces is then held once, in its own buffer.
   */
  spare(): Uint8Array {
    if (this.#held < LENGTH_FIELD_SIZE) return EMPTY;
    return this.#buffer.subarray(this.#held, Math.min(this.#buffer.length, this.#frameSize()));
  }

  /**
   * Takes the next bytes of the stream and returns the complete frames they finish, as one
   * contiguous copy in the stream's own byte order (empty when none completed). Throws
   * {@linkcode ProtocolError} at the first broken rule, carrying the valid frames of this
   * chunk that preceded it in `precedingFrames`; the decoder is unusable after that.
   */
  pushFrames(chunk: Uint8Array): Uint8Array {
    if (this.#failure) throw this.#failure;
    let rest = chunk;
    /** The held frame, if this chunk completed it: handed out, never reused. */
    let completed: Uint8Array | undefined;
    if (this.#held > 0) {
      rest = chunk.subarray(this.#fill(chunk));
      if (this.#failure) throw this.#failure;
      if (this.#held < LENGTH_FIELD_SIZE || this.#held < this.#frameSize()) return EMPTY;
      completed = this.#buffer;
      this.#buffer = EMPTY;
      this.#held = 0;
      const view = new DataView(completed.buffer, completed.byteOffset, completed.length);
      if (this.#scan(view, completed.length) < completed.length) completed = EMPTY;
    }
    let frames = completed ?? EMPTY;
    if (!this.#failure && rest.length > 0) {
      // Fast path: scan the chunk in place and keep only the incomplete tail.
      const view = new DataView(rest.buffer, rest.byteOffset, rest.length);
      const end = this.#scan(view, rest.length);
      if (!this.#failure) this.#fill(rest.subarray(end));
      const whole = rest.subarray(0, end);
      if (frames.length === 0) frames = whole.slice();
      else if (whole.length > 0) frames = concatBytes([frames, whole]);
    }
    // (#fill and #scan may have set it since the check above.)
    const failure = this.#failure as ProtocolError | undefined;
    if (failure) {
      // What the peer sent correctly before the broken frame is still delivered.
      failure.precedingFrames = frames;
      throw failure;
    }
    return frames;
  }

  /** Like {@linkcode FrameDecoder.pushFrames}, but returns the decoded messages. */
  push(chunk: Uint8Array): Message[] {
    return splitFrames(this.pushFrames(chunk), this).map((body) => decodeFrameBody(body, this));
  }

  /** The incomplete frame's whole size; its length field must have arrived. */
  #frameSize(): number {
    return LENGTH_FIELD_SIZE +
      new DataView(this.#buffer.buffer, this.#buffer.byteOffset).getInt32(0, this.littleEndian);
  }

  /**
   * Adds the start of `bytes` to the incomplete frame, no further than its end; returns how
   * many bytes it took. The frame's length is checked as soon as its 4 bytes are in.
   */
  #fill(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    let taken = 0;
    if (this.#held < LENGTH_FIELD_SIZE) {
      if (this.#buffer.length < LENGTH_FIELD_SIZE) this.#buffer = new Uint8Array(LENGTH_FIELD_SIZE);
      taken = Math.min(LENGTH_FIELD_SIZE - this.#held, bytes.length);
      this.#buffer.set(bytes.subarray(0, taken), this.#held);
      this.#held += taken;
      if (this.#held < LENGTH_FIELD_SIZE) return taken;
      const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, LENGTH_FIELD_SIZE);
      try {
        this.#checkOverall(view.getInt32(0, this.littleEndian));
      } catch (error) {
        this.#failure = this.#locate(error as ProtocolError);
        return taken;
      }
    }
    const size = this.#frameSize();
    const piece = Math.min(size - this.#held, bytes.length - taken);
    const need = this.#held + piece;
    if (need > this.#buffer.length) {
      const grown = new Uint8Array(
        size <= EXACT_LIMIT ? size : Math.min(size, Math.max(need, this.#buffer.length * 2)),
      );
      grown.set(this.#buffer.subarray(0, this.#held));
      this.#buffer = grown;
    }
    const part = bytes.subarray(taken, taken + piece);
    // Bytes read into spare() are in place already.
    const inPlace = part.buffer === this.#buffer.buffer &&
      part.byteOffset === this.#buffer.byteOffset + this.#held;
    if (!inPlace) this.#buffer.set(part, this.#held);
    this.#held = need;
    return taken + piece;
  }

  /**
   * Validates frames from the start of `view`; returns the end of the last complete valid
   * one. A broken rule is kept in `#failure` for pushFrames to throw.
   */
  #scan(view: DataView, length: number): number {
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
