/**
 * The wording of I/O failures, for every program's log lines and messages: one place that
 * knows the error classes of Deno's sockets, node:tls and native sockets.
 *
 * @module
 */

/**
 * A TLS record or alert error after the handshake (a bad MAC, a record that is not TLS, a
 * fatal alert from the peer): fatal to the connection. The message is the short reason for
 * the log line, e.g. "bad record MAC".
 */
export class TlsError extends Error {
  override name = "TlsError";
}

/** A short reason for an I/O failure, for log lines. */
export function describeIoError(error: unknown): string {
  if (error instanceof TlsError) return `TLS error: ${error.message}`;
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset by peer";
  if (error instanceof Deno.errors.BrokenPipe) return "connection closed by peer";
  if (error instanceof Deno.errors.BadResource) return "connection closed";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  // rustls's wording of this one ends in a URL to its manual; a log line wants the fact.
  if (error instanceof Deno.errors.UnexpectedEof) {
    return "closed by peer without a TLS close_notify";
  }
  return error instanceof Error ? error.message : String(error);
}
