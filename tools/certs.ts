/**
 * `deno task certs [--out DIR] [--name NAME ...] [--days N]`: write a fresh
 * throwaway root CA and a server certificate into DIR, so the relay can speak
 * TLS without anyone touching openssl.
 *
 * Needs only write permission: generation happens in WebCrypto.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { DEFAULT_DAYS, generateCertificates, MAX_DAYS } from "../lib/certs.ts";

const USAGE = `Usage: deno task certs [--out DIR] [--name NAME ...] [--days N]

Writes a throwaway root CA and a server certificate signed by it:
  DIR/root_ca.crt  DIR/root_ca.key  DIR/server.crt  DIR/server.key
The server certificate is valid for localhost, 127.0.0.1 and ::1.

Options:
  --out DIR     where to write the files (default: certs)
  --name NAME   another host name or IP address the server is reached by; repeatable
  --days N      days the certificates stay valid (default: ${DEFAULT_DAYS}, at most ${MAX_DAYS})
  --help        show this help`;

/** A mistake on the command line: reported as one sentence, exit status 1. */
export class UsageError extends TypeError {
  override name = "UsageError";
}

/** Key files get owner-only permissions: anyone who reads server.key can impersonate the relay. */
const KEY_MODE = 0o600;

/**
 * Run the tool and return its exit status. Every failure is reported as one
 * plain sentence on stderr, never a stack trace, since the reader is a person
 * setting up the relay rather than a developer debugging it.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const options = parseOptions(args);
    if (options.help) {
      console.log(USAGE);
      return 0;
    }
    const certs = await generateCertificates({ names: options.names, days: options.days });
    await makeDirectory(options.out);
    const files: [name: string, text: string, secret: boolean][] = [
      ["root_ca.crt", certs.caCert, false],
      ["root_ca.key", certs.caKey, true],
      ["server.crt", certs.serverCert, false],
      ["server.key", certs.serverKey, true],
    ];
    for (const [name, text, secret] of files) {
      const path = join(options.out, name);
      await writeFile(path, text, secret);
      console.log(`wrote ${path}`);
    }
    const at = (name: string) => join(options.out, name);
    console.log(
      `Use them with: server --cert ${at("server.crt")} --key ${at("server.key")}; ` +
        `clients --tls --ca ${at("root_ca.crt")}`,
    );
    return 0;
  } catch (error) {
    console.error(sentence(error));
    return 1;
  }
}

interface CliOptions {
  out: string;
  names: string[];
  days?: number;
  help: boolean;
}

function parseOptions(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        out: { type: "string", default: "certs" },
        name: { type: "string", multiple: true, default: [] },
        days: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: false,
      strict: true,
    });
  } catch (error) {
    // node:util's messages are good but run on ("... This command does not
    // take positional arguments"); keep the first clause and point at --help.
    const detail = error instanceof Error ? error.message.split(". ")[0] : String(error);
    throw new UsageError(`${detail}; run with --help for usage`);
  }
  const { out, name, days, help } = parsed.values;
  if (out === "") throw new UsageError("--out needs a directory name");
  return { out, names: name, days: days === undefined ? undefined : parseDays(days), help };
}

function parseDays(text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`--days needs a whole number of days, got "${text}"`);
  }
  return Number(text);
}

async function makeDirectory(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true });
  } catch (error) {
    throw new Error(`Cannot create directory ${path}: ${describeIoError(error)}`, {
      cause: error,
    });
  }
}

async function writeFile(path: string, text: string, secret: boolean): Promise<void> {
  // Deno.build.os is "windows" where POSIX modes do not exist; Deno would
  // ignore them there, but skipping says so plainly.
  const restrict = secret && Deno.build.os !== "windows";
  try {
    if (restrict) await tightenExisting(path);
    await Deno.writeTextFile(path, text, restrict ? { mode: KEY_MODE } : {});
  } catch (error) {
    throw new Error(`Cannot write ${path}: ${describeIoError(error)}`, { cause: error });
  }
}

/**
 * `mode` only applies when a file is created, so an older key file keeps its
 * old, possibly world-readable mode. Narrow it before the new key lands in it.
 */
async function tightenExisting(path: string): Promise<void> {
  try {
    await Deno.chmod(path, KEY_MODE);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The one place that turns Deno's I/O errors into words for a person. */
function describeIoError(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    // Deno's own wording names the flag to add ("Requires write access to
    // "x", run again with the --allow-write flag"), which is what helps.
    return error.message.replace(/^Requires/, "Deno requires");
  }
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.AlreadyExists) return "a file with that name is in the way";
  if (error instanceof Deno.errors.NotADirectory) {
    return "part of the path is a file, not a directory";
  }
  if (error instanceof Deno.errors.NotFound) return "part of the path does not exist";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Error) {
    return error.message.replace(/ \(os error \d+\).*$/, "").toLowerCase();
  }
  return String(error);
}

/** Render any error as one line ending in a full stop. */
function sentence(error: unknown): string {
  const text = (error instanceof Error ? error.message : String(error)).split("\n")[0].trim();
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
