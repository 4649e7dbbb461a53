/**
 * Opening connections and listeners, plain or TLS, with certificates read from PEM files.
 * Failures the user can fix (a missing file, a port in use) become a UsageError whose message is
 * the sentence to show; connection failures are left for {@linkcode explainError} to phrase.
 *
 * @module
 */

import { explainError, UsageError } from "../cli/user_errors.ts";

/** Where to connect, and how. */
export interface DialOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** PEM file of the root CA to trust; without it (and `caCerts`), the runtime's default roots. */
  caFile?: string;
  /** Root CAs to trust, PEM text (tools and tests that hold them in memory). */
  caCerts?: string[];
  /** Turn off Nagle's algorithm on a plain connection (load generators, checkers). */
  noDelay?: boolean;
}

/**
 * Connects and, for TLS, completes the handshake, so that certificate errors surface here: the
 * one dialer of the clients, the tests and the tools.
 */
export async function dial(options: DialOptions): Promise<Deno.Conn> {
  const { host: hostname, port } = options;
  if (!options.tls) {
    const conn = await Deno.connect({ hostname, port });
    if (options.noDelay) conn.setNoDelay(true);
    return conn;
  }
  const caCerts = options.caFile
    ? [await readPem(options.caFile, "CA certificate")]
    : options.caCerts;
  const conn = await Deno.connectTls({ hostname, port, caCerts });
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
}

/** A certificate and key pair in PEM. */
export interface KeyPair {
  cert: string;
  key: string;
}

/** Reads a certificate and key from PEM files; a missing or non-PEM file is a UsageError. */
export async function readKeyPair(certFile: string, keyFile: string): Promise<KeyPair> {
  return {
    cert: await readPem(certFile, "certificate"),
    key: await readPem(keyFile, "private key"),
  };
}

/** What a PEM file may be asked to hold, as {@linkcode readPem} names it in a sentence. */
export type PemContent = "CA certificate" | "certificate" | "private key";

/**
 * Reads one PEM file, naming the file and what it should hold in any error: a file that is
 * missing, not PEM, or holds the other kind of block (a key given as the certificate, say)
 * is a UsageError with the sentence that says so.
 */
export async function readPem(path: string, what: PemContent): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const hint = error instanceof Deno.errors.NotFound ? ` ${createCertsHint(path)}` : "";
    throw new UsageError(
      explainError(error, { action: `read the ${what}`, target: path }) + hint,
    );
  }
  if (!text.includes("-----BEGIN ")) {
    throw new UsageError(`The ${what} file ${path} is not in PEM format.`);
  }
  const hasCertificate = /-----BEGIN (TRUSTED |X509 )?CERTIFICATE-----/.test(text);
  const hasKey = /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (what === "private key" && !hasKey) {
    throw new UsageError(
      `The private key file ${path} holds no private key${
        hasCertificate ? " (it holds a certificate: --key takes server.key, --cert server.crt)" : ""
      }.`,
    );
  }
  if (what !== "private key" && !hasCertificate) {
    const instead = what === "CA certificate"
      ? "--ca takes the root CA's certificate, e.g. certs/root_ca.crt"
      : "--cert takes server.crt, --key server.key";
    throw new UsageError(
      `The ${what} file ${path} holds no certificate${
        hasKey ? ` (it holds a private key: ${instead})` : ""
      }.`,
    );
  }
  return text;
}

/**
 * How to create a missing certificate file: `deno task certs`, with `--out DIR` when the file
 * is one the tool writes but in another directory than its default.
 */
function createCertsHint(path: string): string {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : path.slice(0, slash);
  const file = path.slice(slash + 1);
  if (!["root_ca.crt", "server.crt", "server.key"].includes(file)) {
    return "Create a throwaway set with: deno task certs";
  }
  const out = dir === "certs" || dir === "./certs" ? "" : ` --out ${dir}`;
  return `Create a throwaway set with: deno task certs${out}`;
}

/** Opens a plain listener, or a TLS one when a key pair is given; failures are UsageErrors. */
export function listen(host: string, port: number, keys?: KeyPair): Deno.Listener {
  const hostname = host;
  try {
    return keys ? Deno.listenTls({ hostname, port, ...keys }) : Deno.listen({ hostname, port });
  } catch (error) {
    throw new UsageError(
      explainError(error, { action: "listen on", target: formatAddress(host, port) }),
    );
  }
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A TLS record header (alert 0x15 or handshake 0x16, version 3.1-3.4). Lets a plain client
 * tell its user that the port speaks TLS; no valid first frame starts this way.
 */
export function looksLikeTlsRecord(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03 &&
    bytes[2] >= 1 && bytes[2] <= 4;
}
