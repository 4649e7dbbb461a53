/**
 * `deno task certs [--out DIR] [--name NAME ...] [--days N]`: write a fresh
 * throwaway root CA and a server certificate into DIR, so the relay can speak
 * TLS without anyone touching openssl.
 *
 * Needs only write permission: generation happens in WebCrypto.
 *
 * @module
 */

import { join } from "node:path";
import { numberOption, parseOptions, stringOption } from "../lib/cli/args.ts";
import { DEFAULT_DAYS, generateCertificates, MAX_DAYS } from "./certificates.ts";
import { explainError, UsageError } from "../lib/cli/user_errors.ts";

const USAGE = `Usage: deno task certs [--out DIR] [--name NAME ...] [--days N] [--force]

Writes a throwaway root CA and a server certificate signed by it:
  DIR/root_ca.crt  DIR/root_ca.key  DIR/server.crt  DIR/server.key
The server certificate is valid for localhost, 127.0.0.1 and ::1.

Options:
  --out DIR     where to write the files (default: certs)
  --name NAME   another host name or IP address the server is reached by; repeatable
  --days N      days the certificates stay valid (default: ${DEFAULT_DAYS}, at most ${MAX_DAYS})
  --force       replace files that are already there (otherwise the tool refuses)
  --help        show this help
  --version     show the version`;

/** Key files get owner-only permissions: anyone who reads server.key can impersonate the relay. */
const KEY_MODE = 0o600;

/**
 * Run the tool and return its exit status. Every failure is reported as one
 * plain sentence on stderr, never a stack trace, since the reader is a person
 * setting up the relay rather than a developer debugging it.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const options = parseCliOptions(args);
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
    if (!options.force) await claim(options.out, files);
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
    console.error(explainError(error));
    return error instanceof UsageError ? 2 : 1;
  }
}

interface CliOptions {
  out: string;
  names: string[];
  days?: number;
  help: boolean;
  force: boolean;
}

function parseCliOptions(args: string[]): CliOptions {
  const { values, positionals } = parseOptions(args, {
    out: { type: "string" },
    name: { type: "string", multiple: true },
    days: { type: "string" },
    help: { type: "boolean", short: "h" },
    force: { type: "boolean" },
  });
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}". Try --help.`);
  }
  const out = stringOption(values, "out", "certs");
  if (out === "") throw new UsageError("--out needs a directory name.");
  const days = values.days === undefined ? undefined : numberOption(values, "days", 0, 1, MAX_DAYS);
  if (days !== undefined && !Number.isInteger(days)) {
    throw new UsageError("--days needs a whole number of days.");
  }
  return {
    out,
    names: (values.name ?? []) as string[],
    days,
    help: values.help === true,
    force: values.force === true,
  };
}

async function makeDirectory(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true });
  } catch (error) {
    throw new UsageError(explainError(error, { action: "create the directory", target: path }));
  }
}

/**
 * Creates the files empty, or none of them if one is there already (a UsageError naming it):
 * certificates already handed out, or a CA key that signed them, are never replaced silently.
 * Needs only write permission, as the tool has no other.
 */
async function claim(dir: string, files: [name: string, text: string, secret: boolean][]) {
  const made: string[] = [];
  for (const [name, , secret] of files) {
    const path = join(dir, name);
    try {
      await Deno.writeTextFile(path, "", { createNew: true, mode: secret ? KEY_MODE : 0o644 });
      made.push(path);
    } catch (error) {
      for (const done of made) await Deno.remove(done).catch(() => {});
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new UsageError(
          `${path} already exists: nothing was written. Use --force to replace the set, or --out DIR for another place.`,
        );
      }
      throw new UsageError(explainError(error, { action: "write", target: path }));
    }
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
    throw new UsageError(explainError(error, { action: "write", target: path }));
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

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
