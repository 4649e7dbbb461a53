/**
 * wirechat conformance checker: checks a server, display or keyboard against PROTOCOL.md and
 * explains each failure (expected, got, an annotated hex dump, a hint).
 *
 * ```sh
 * deno task conformance server --host 127.0.0.1 --port 55200 --hostile
 * deno task conformance display -- python3 display.py {host} {port}
 * deno task conformance keyboard --json -- ./keyboard {host} {port} {user}
 * ```
 *
 * @module
 */

import { versionText, wantsVersion } from "../../lib/cli/version.ts";
import { formatAddress } from "../../lib/net/transport.ts";
import { explainError } from "../../lib/cli/user_errors.ts";
import type { Check } from "./check.ts";
import { checkServer, serverChecks } from "./check_server.ts";
import { checkDisplay, displayCheckList } from "./check_display.ts";
import { checkKeyboard, keyboardCheckList } from "./check_keyboard.ts";
import { type ConformanceOptions, parseOptions, UsageError } from "./options.ts";
import { Reporter } from "./report.ts";
import type { ServerTarget } from "./server_helpers.ts";

/** Runs the checker; returns the exit status (0 all passed, 1 not, 2 usage error). */
export async function main(args: string[]): Promise<number> {
  let options: ConformanceOptions;
  try {
    options = parseOptions(args);
  } catch (error) {
    console.error(explainError(error));
    return 2;
  }
  if (options.mode === "help") {
    console.log(options.text);
    return 0;
  }
  if (options.mode === "list") {
    printList(options.of, options.json);
    return 0;
  }
  const reporter = new Reporter(options.mode, { json: options.json });
  try {
    if (options.mode === "server") {
      const target = await serverTarget(options);
      const known = serverChecks(target, { extensions: true, hostile: true }).map((c) => c.name);
      rejectUnknown(options.only, known);
      if (!options.json) {
        console.error(`checking the server at ${formatAddress(options.host, options.port)}`);
      }
      await checkServer({ ...options, target }, reporter);
    } else if (options.mode === "display") {
      rejectUnknown(options.only, displayCheckList().map((c) => c.name));
      await checkDisplay(options, reporter);
    } else {
      rejectUnknown(options.only, keyboardCheckList().map((c) => c.name));
      await checkKeyboard(options, reporter);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    console.error(`The checker failed: ${explainError(error)}`);
    return 1;
  }
  reporter.finish();
  return reporter.exitCode();
}

async function serverTarget(
  options: Extract<ConformanceOptions, { mode: "server" }>,
): Promise<ServerTarget> {
  let caCerts: string[] | undefined;
  if (options.ca !== undefined) {
    try {
      caCerts = [await Deno.readTextFile(options.ca)];
    } catch (error) {
      throw new UsageError(explainError(error, { action: "read the CA file", target: options.ca }));
    }
    if (!caCerts[0].includes("-----BEGIN ")) {
      throw new UsageError(`The CA file ${options.ca} is not in PEM format.`);
    }
  }
  return {
    host: options.host,
    port: options.port,
    tls: options.tls,
    caCerts,
    maxFrame: options.maxFrame,
    nonce: crypto.randomUUID().slice(0, 8),
  };
}

function rejectUnknown(only: string[] | undefined, known: string[]): void {
  const unknown = only?.find((name) => !known.includes(name));
  if (unknown !== undefined) {
    throw new UsageError(`There is no check named "${unknown}" in this mode (see --list).`);
  }
}

function printList(mode: "server" | "display" | "keyboard", json: boolean): void {
  const target: ServerTarget = {
    host: "127.0.0.1",
    port: 0,
    tls: false,
    maxFrame: 65536,
    nonce: "",
  };
  const checks: Pick<Check, "group" | "name" | "description">[] = mode === "server"
    ? serverChecks(target, { extensions: true, hostile: true })
    : mode === "display"
    ? displayCheckList()
    : keyboardCheckList();
  for (const { group, name, description } of checks) {
    console.log(
      json
        ? JSON.stringify({ group, name, description })
        : `${group.padEnd(11)} ${name.padEnd(22)} ${description}`,
    );
  }
}

if (import.meta.main) {
  if (wantsVersion(Deno.args)) {
    console.log(versionText());
    Deno.exit(0);
  }
  Deno.exit(await main(Deno.args));
}
