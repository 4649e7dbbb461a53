/**
 * Connections as the soak's clients need them: plain or TLS by target, waiting to see whether
 * and how the server ends a connection, and TCP resets (through node:net, as Deno.Conn has no
 * way to send one).
 *
 * @module
 */

import net from "node:net";

/** Where a client connects: always loopback; TLS trusts `caCert`. */
export interface Target {
  port: number;
  tls: boolean;
  caCert?: string;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Connects; for TLS, completes the handshake so that failures surface here. */
export async function dial(target: Target): Promise<Deno.Conn> {
  if (!target.tls) return await Deno.connect({ hostname: "127.0.0.1", port: target.port });
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: target.port,
    caCerts: target.caCert ? [target.caCert] : undefined,
  });
  try {
    await conn.handshake();
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
  return conn;
}

/** How a connection ended, as its reader saw it. */
export interface Ending {
  /** eof: the server closed it; reset: RST; open: still open when we stopped waiting. */
  how: "eof" | "reset" | "open" | "error";
  /** Milliseconds from the start of the wait. */
  ms: number;
  /** Bytes read meanwhile. */
  bytes: number;
  detail?: string;
}

/**
 * Reads (and discards) until the server ends the connection or `ms` pass, then closes it.
 * `onData` sees each chunk, e.g. to check the frames in it.
 */
export async function readUntilClosed(
  conn: Deno.Conn,
  ms: number,
  onData?: (bytes: Uint8Array) => void,
): Promise<Ending> {
  const started = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  // Each call its own buffer: a read writes into it as soon as data comes, even while the
  // code that would look at an earlier read's bytes has yet to run.
  const drain = new Uint8Array(16 * 1024);
  let bytes = 0;
  const end = (how: Ending["how"], detail?: string): Ending => ({
    how,
    ms: performance.now() - started,
    bytes,
    detail,
  });
  try {
    for (;;) {
      const n = await conn.read(drain);
      if (n === null) return end("eof");
      bytes += n;
      onData?.(drain.subarray(0, n));
    }
  } catch (error) {
    if (timedOut) return end("open");
    if (error instanceof Deno.errors.ConnectionReset) return end("reset");
    if (error instanceof Deno.errors.BrokenPipe) return end("reset");
    // rustls reports a peer that closed without close_notify as UnexpectedEof.
    if (error instanceof Deno.errors.UnexpectedEof) return end("eof");
    return end("error", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Writes everything; false if the server has already closed the connection. */
export async function tryWrite(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    return true;
  } catch {
    return false;
  }
}

export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/**
 * Connects through node:net, sends `bytes`, waits `holdMs` without reading, then resets the
 * connection (RST), as a crashing client's kernel would.
 */
export function sendThenReset(port: number, bytes: Uint8Array, holdMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.pause();
      socket.write(bytes, (error) => {
        if (error) {
          socket.destroy();
          return resolve();
        }
        setTimeout(() => {
          socket.once("close", () => resolve());
          socket.resetAndDestroy();
        }, holdMs);
      });
    });
    socket.once("error", (error: Error & { code?: string }) => {
      // A server that refused us (connection limit) or was quicker to close is fine here.
      if (error.code === "ECONNRESET" || error.code === "EPIPE") resolve();
      else reject(error);
    });
  });
}
