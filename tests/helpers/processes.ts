/**
 * Conveniences of the end-to-end tests over the one harness (tools/harness/): the server,
 * displays (waited on until the server saw them identify), keyboards with piped stdin, and the
 * display's line format.
 *
 * @module
 */

import { escapeRegExp } from "../../tools/harness/text.ts";
import { Program } from "../../tools/harness/program.ts";
import type { ServerProcess } from "../../tools/harness/server_process.ts";

export { REPO_ROOT } from "../../tools/harness/deno_tasks.ts";
export { escapeRegExp } from "../../tools/harness/text.ts";
export { Program, type ProgramResult, run } from "../../tools/harness/program.ts";
export { type Endpoint, ServerProcess } from "../../tools/harness/server_process.ts";
export { CertificateDir } from "../../tools/harness/certificate_dir.ts";
export { Lines } from "../../tools/harness/lines.ts";

/** The client options to reach `port` on 127.0.0.1 (or `host`), over TLS if `ca` is given. */
export function clientArgs(port: number, options: { host?: string; ca?: string } = {}): string[] {
  return [
    "--host",
    options.host ?? "127.0.0.1",
    "--port",
    String(port),
    ...(options.ca ? ["--tls", "--ca", options.ca] : []),
  ];
}

const IDENTIFIED_DISPLAY = / identified as display\b/;

/**
 * Starts one display program per argument list and resolves once the server has logged
 * that many more displays identifying, so that nothing sent afterwards can be missed. A
 * display that exits first fails the wait with what it said.
 */
export async function startDisplays(
  server: ServerProcess,
  argLists: string[][],
): Promise<Program[]> {
  const before = server.log.matching(IDENTIFIED_DISPLAY).length;
  const displays = argLists.map((args) => new Program("main_display.ts", args));
  try {
    await Promise.race([
      server.log.waitForCount(IDENTIFIED_DISPLAY, before + displays.length),
      ...displays.map(async (display) => {
        const { code } = await display.status;
        throw new Error(
          `${display.name} exited with ${code} before identifying:\n${display.stderr.text}`,
        );
      }),
    ]);
  } catch (error) {
    await Promise.all(displays.map((display) => display[Symbol.asyncDispose]()));
    throw error;
  }
  return displays;
}

/** {@linkcode startDisplays} for one display. */
export async function startDisplay(server: ServerProcess, args: string[]): Promise<Program> {
  const [display] = await startDisplays(server, [args]);
  return display;
}

/** A keyboard program with its stdin piped, left running for the test to write to. */
export function startKeyboard(args: string[]): Program {
  return new Program("main_keyboard.ts", args, { stdin: true });
}

/** A display's line for a message: `<user> YYYY-MM-DD HH:mm:ss <text>`, any time. */
export function displayLine(user: string, text: string): RegExp {
  return new RegExp(
    `^${escapeRegExp(user)} \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} ${escapeRegExp(text)}$`,
  );
}
