/**
 * Playing the server for a client under test: a listener on 127.0.0.1, plain or TLS. For TLS
 * without `--cert`/`--key`, a throwaway CA and server certificate are generated for the run
 * and the CA written to a temporary file, whose path replaces `{ca}` in the client's command.
 *
 * @module
 */

import { join } from "node:path";
import { type KeyPair, readPem } from "../../lib/net/transport.ts";
import { explainError, UsageError } from "../../lib/cli/user_errors.ts";
import { before, seconds } from "./deadline.ts";
import { describe } from "./peer.ts";

/**
 * At least this long for a started client to connect: interpreters and JVMs can take
 * seconds to start on a loaded machine, and waiting costs nothing when it is quick.
 */
export const STARTUP_MS = 10_000;
/** How long to wait for a client someone starts by hand. */
export const MANUAL_START_MS = 60_000;

/** Options for {@linkcode listenForClient}. */
export interface ListenOptions {
  port: number;
  tls: boolean;
  cert?: string;
  key?: string;
  /** The CA that signed `cert`, to put in place of `{ca}`. */
  ca?: string;
}

/** A listener for the client under test, and what to clean up after. */
export interface PlayedServer {
  listener: Deno.Listener;
  port: number;
  tls: boolean;
  /** The CA certificate file for `{ca}`, when there is one. */
  caPath?: string;
  close(): Promise<void>;
}

/** Opens the listener; certificate and port problems are {@linkcode UsageError}s. */
export async function listenForClient(options: ListenOptions): Promise<PlayedServer> {
  let keys: KeyPair | undefined;
  let caPath = options.ca;
  let tempDir: string | undefined;
  if (options.tls) {
    if (options.cert !== undefined && options.key !== undefined) {
      keys = {
        cert: await readPem(options.cert, "certificate"),
        key: await readPem(options.key, "private key"),
      };
    } else {
      const generated = await throwawayCertificates();
      keys = generated.keys;
      caPath = generated.caPath;
      tempDir = generated.dir;
    }
  }
  let listener: Deno.Listener;
  try {
    listener = keys
      ? Deno.listenTls({ hostname: "127.0.0.1", port: options.port, ...keys })
      : Deno.listen({ hostname: "127.0.0.1", port: options.port });
  } catch (error) {
    if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    throw new UsageError(
      explainError(error, { action: "listen on", target: `127.0.0.1:${options.port}` }),
    );
  }
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    listener,
    port,
    tls: options.tls,
    caPath,
    async close() {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    },
  };
}

async function throwawayCertificates(): Promise<{ keys: KeyPair; caPath: string; dir: string }> {
  const { generateCertificates } = await import("../certificates.ts");
  const set = await generateCertificates();
  let dir: string;
  try {
    dir = await Deno.makeTempDir({ prefix: "wirechat-conformance-" });
    await Deno.writeTextFile(join(dir, "root_ca.crt"), set.caCert);
  } catch (error) {
    throw new UsageError(
      `Cannot write the throwaway CA certificate (${describe(error)}): ` +
        "run the checker with --allow-write, or pass --cert, --key and --ca.",
    );
  }
  return {
    keys: { cert: set.serverCert, key: set.serverKey },
    caPath: join(dir, "root_ca.crt"),
    dir,
  };
}

/** How waiting for the client's connection ended. */
export type Arrival =
  | { kind: "connected"; conn: Deno.Conn }
  | { kind: "exited" }
  | { kind: "timeout" }
  | { kind: "tls-failed"; message: string };

/**
 * Waits for the client to connect (and, for TLS, finish its handshake) until the deadline,
 * or until `exited` resolves because the client gave up first.
 */
export async function acceptClient(
  server: PlayedServer,
  deadline: number,
  exited?: Promise<unknown>,
): Promise<Arrival> {
  const accepting = server.listener.accept();
  const gone = exited?.then((): Arrival => ({ kind: "exited" })) ?? new Promise<Arrival>(() => {});
  const settled = await before(
    Promise.race([accepting.then((conn): Arrival => ({ kind: "connected", conn })), gone]),
    deadline,
  );
  if (settled.timedOut || settled.value.kind !== "connected") {
    // The pending accept ends when the listener closes; its connection, if any, is dropped.
    accepting.then((conn) => conn.close(), () => {});
    return settled.timedOut ? { kind: "timeout" } : settled.value;
  }
  const conn = settled.value.conn;
  if (server.tls) {
    try {
      const shaken = await before((conn as Deno.TlsConn).handshake(), deadline);
      if (shaken.timedOut) {
        conn.close();
        return {
          kind: "tls-failed",
          message: `no TLS handshake within ${seconds(deadline - Date.now())}`,
        };
      }
    } catch (error) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      return { kind: "tls-failed", message: describe(error) };
    }
  } else {
    (conn as Deno.TcpConn).setNoDelay(true);
  }
  return { kind: "connected", conn };
}
