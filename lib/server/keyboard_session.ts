/**
 * The rules of a keyboard connection after its identify code, as a plain object fed bytes and
 * a clock (sans-IO): frames are validated as they arrive; what a keyboard sent correctly before
 * a broken frame is still published; a started frame must complete within the frame timeout,
 * whose clock stops while the server itself is not reading; flood control is a token bucket
 * that says how long to stop reading. The relay's loop only moves bytes and timers.
 *
 * @module
 */

import { ProtocolError } from "../protocol/errors.ts";
import { countFrames, FrameDecoder } from "../protocol/frame_decoder.ts";

/** The limits a keyboard session applies; times in seconds. */
export interface KeyboardRules {
  littleEndian: boolean;
  /** Largest overall_length accepted. */
  maxFrame: number;
  /** Seconds a started frame has to complete. */
  frameTimeout: number;
  /** Messages per second sustained before reading stops; 0 turns flood control off. */
  keyboardRate: number;
  /** Messages sent in a burst above the rate. */
  keyboardBurst: number;
}

/** What a chunk of a keyboard's bytes comes to. */
export interface Received {
  /** Complete, validated frames to publish, in the keyboard's byte order (may be empty). */
  frames: Uint8Array;
  /** Set when the keyboard broke a rule: drop it, after publishing `frames`. */
  drop?: string;
  /** Milliseconds to stop reading for, over the rate (0: read on). */
  pauseMs: number;
}

/** One keyboard's state: its partial frame, its frame clock and its token bucket. */
export class KeyboardSession {
  readonly decoder: FrameDecoder;
  #rules: KeyboardRules;
  /** When the frame clock started (ms); undefined while no frame is started or it is stopped. */
  #frameSince: number | undefined;
  #tokens: number;
  #refilled: number;

  constructor(rules: KeyboardRules, now: number) {
    this.#rules = rules;
    this.decoder = new FrameDecoder({ littleEndian: rules.littleEndian, maxFrame: rules.maxFrame });
    this.#tokens = rules.keyboardBurst;
    this.#refilled = now;
  }

  /** Whether a frame has started and not completed. */
  get inFrame(): boolean {
    return this.decoder.buffered > 0;
  }

  /**
   * When the started frame must be complete (ms, on the clock passed in), or undefined when
   * no frame is started or the clock is stopped.
   */
  get frameDeadline(): number | undefined {
    return this.#frameSince === undefined
      ? undefined
      : this.#frameSince + this.#rules.frameTimeout * 1000;
  }

  /** The reason to drop a keyboard whose frame deadline has passed. */
  get frameTimeoutReason(): string {
    return `frame not completed within ${this.#rules.frameTimeout} s`;
  }

  /** Takes bytes read at `now`. Never throws for what the peer sent: a broken rule is `drop`. */
  receive(bytes: Uint8Array, now: number): Received {
    let frames: Uint8Array;
    try {
      frames = this.decoder.pushFrames(bytes);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // Frames sent correctly before the broken one still go out.
      this.#frameSince = undefined;
      return { frames: error.precedingFrames, drop: error.message, pauseMs: 0 };
    }
    // The clock runs while a frame is incomplete; each completed frame restarts it.
    if (!this.inFrame) this.#frameSince = undefined;
    else if (frames.length > 0 || this.#frameSince === undefined) this.#frameSince = now;
    return { frames, pauseMs: frames.length > 0 ? this.#spend(frames, now) : 0 };
  }

  /**
   * Stops the frame clock: the server is not reading (flood control, back-pressure), and the
   * rest of the frame may be waiting in the socket.
   */
  stopClock(): void {
    this.#frameSince = undefined;
  }

  /** Starts the frame clock afresh at `now`, if a frame is started: reading resumes. */
  startClock(now: number): void {
    if (this.inFrame) this.#frameSince = now;
  }

  /** Frees the partial frame's memory; the session is done. */
  release(): void {
    this.decoder.release();
  }

  /** Takes the frames' tokens; returns how long to wait until the bucket is back at zero. */
  #spend(frames: Uint8Array, now: number): number {
    const { keyboardRate, keyboardBurst } = this.#rules;
    if (keyboardRate <= 0) return 0;
    this.#tokens = Math.min(
      keyboardBurst,
      this.#tokens + (now - this.#refilled) * keyboardRate / 1000,
    );
    this.#refilled = now;
    this.#tokens -= countFrames(frames, this.decoder);
    return this.#tokens < 0 ? -this.#tokens * 1000 / keyboardRate : 0;
  }
}
