/**
 * Error classes of the wire protocol. Each message is written to be the log line a server
 * prints when it drops a peer, so it names the field, the offset and what was wrong.
 *
 * @module
 */

/** Which rule of PROTOCOL.md a frame or identify code broke. */
export type ProtocolErrorKind =
  | "identify"
  | "negative-length"
  | "length-mismatch"
  | "frame-too-large"
  | "date-out-of-range"
  | "truncated";

/** The peer sent bytes that break PROTOCOL.md; the connection cannot continue. */
export class ProtocolError extends SyntaxError {
  /** Which rule was broken. */
  readonly kind: ProtocolErrorKind;
  /** The field that held the bad value, e.g. `overall_length`. */
  readonly field: string;
  /** Offset of that field from the start of the frame (or identify code). */
  readonly offset: number;
  /**
   * Complete, valid frames that arrived in the same chunk before the broken one. A relay
   * still delivers them, so what a client sent correctly is not lost.
   */
  precedingFrames: Uint8Array = new Uint8Array(0);

  constructor(kind: ProtocolErrorKind, field: string, offset: number, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.kind = kind;
    this.field = field;
    this.offset = offset;
  }
}
