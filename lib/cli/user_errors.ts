/**
 * The one place that turns runtime errors into the plain sentence a user sees. The `main_*`
 * programs print that sentence and exit non-zero; nobody sees a stack trace for a mistake
 * of theirs.
 *
 * @module
 */

/** A mistake in how a program was started or used; its message is the whole explanation. */
export class UsageError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What the program was doing when the error happened, to name it in the sentence. */
export interface ErrorContext {
  /** e.g. "connect to", "listen on", "read" */
  action: string;
  /** e.g. "127.0.0.1:55200" or a file path */
  target: string;
}

/** A one-sentence explanation of `error`, suitable for stderr. */
export function explainError(error: unknown, context?: ErrorContext): string {
  if (error instanceof UsageError) return error.message;
  const where = context ? `Cannot ${context.action} ${context.target}` : "Failed";
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    const missing = /--allow-\w+/.exec(message)?.[0];
    return missing
      ? `${where}: permission denied (the program was not granted ${missing}).`
      : `${where}: permission denied.`;
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `${where}: connection refused (is the server running, and is that the right port?).`;
  }
  if (error instanceof Deno.errors.AddrInUse) {
    return `${where}: the port is already in use (is another server running?).`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `${where}: that address does not belong to this machine.`;
  }
  if (error instanceof Deno.errors.NotFound) return `${where}: no such file or directory.`;
  if (error instanceof Deno.errors.AlreadyExists) return `${where}: a file is in the way.`;
  if (error instanceof Deno.errors.NotADirectory) {
    return `${where}: part of the path is a file, not a directory.`;
  }
  if (error instanceof Deno.errors.IsADirectory) return `${where}: it is a directory.`;
  if (error instanceof Deno.errors.TimedOut) return `${where}: timed out.`;
  if (/lookup address|Name or service not known|No address associated|nodename/i.test(message)) {
    return `${where}: the host name could not be resolved.`;
  }
  // rustls's words for a key of another pair (host.ts names both files where it knows them).
  if (/KeyMismatch|keys may not be consistent/i.test(message)) {
    return `${where}: the private key does not belong to the certificate (they come from different pairs).`;
  }
  if (/UnknownIssuer|not trusted|certificate/i.test(message)) {
    if (/NotValidForName|not valid for name/i.test(message)) {
      return `${where}: the server's certificate is not valid for that host name.`;
    }
    if (/Expired|NotValidYet/i.test(message)) {
      return `${where}: the server's certificate has expired or is not yet valid.`;
    }
    if (/UnknownIssuer|not trusted|UnknownCA|BadSignature/i.test(message)) {
      return `${where}: the server's certificate is not trusted (pass --ca with the root CA that signed it).`;
    }
  }
  if (
    /CorruptMessage|InvalidContentType|received corrupt|wrong version|unexpected message/i.test(
      message,
    )
  ) {
    return `${where}: the TLS handshake failed (is that a TLS port? try without --tls).`;
  }
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.UnexpectedEof) {
    return `${where}: the connection was closed during set-up (is that a plain TCP port? try without --tls).`;
  }
  if (/no valid|private key|\bPEM\b|key file|invalid certificate/i.test(message)) {
    return `${where}: the certificate or key is not valid PEM (${message}).`;
  }
  return context ? `${where}: ${message}.` : sentence(message);
}

/** One line, ending in a full stop. */
function sentence(text: string): string {
  const line = text.split("\n")[0].trim();
  return /[.!?]$/.test(line) ? line : `${line}.`;
}
