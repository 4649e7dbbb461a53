/**
 * wirechat keyboard client: asks for a username, connects as KEYBOARD, then sends each line
 * typed (or piped in) as one message stamped with the local time.
 *
 * @module
 */

import { commandName, parseProgramOptions } from "./lib/cli/args.ts";
import {
  type ClientConnection,
  connect,
  CONNECTION_OPTIONS,
  CONNECTION_USAGE,
  connectionFrom,
  interrupted,
  say,
} from "./lib/client/options.ts";
import { describeIoError } from "./lib/net/io_errors.ts";
import { checkUsername, LineReader, runKeyboard } from "./lib/client/keyboard.ts";
import { formatAddress, looksLikeTlsRecord } from "./lib/net/transport.ts";
import { explainError, UsageError } from "./lib/cli/user_errors.ts";

const USAGE = `Usage: ${commandName("keyboard")} [options]

Sends each line typed (or piped in) as one message. End with Ctrl-D or Ctrl-C.

Options:
${CONNECTION_USAGE}
  --user NAME       the username to send as (asked for when absent)
  --help            show this help
  --version         show the version`;

const encoder = new TextEncoder();

/** Asks for the username: prompted on a terminal, the first line when input is piped. */
async function askUsername(lines: LineReader, interactive: boolean): Promise<string> {
  for (;;) {
    if (interactive) await Deno.stdout.write(encoder.encode("Username: "));
    const line = await lines.nextLine();
    if (line === null) throw new UsageError("No username given (input ended first).");
    const name = line.trim();
    if (name !== "") return name;
    if (!interactive) throw new UsageError("The username (the first line of input) is empty.");
  }
}

const SERVER_CLOSED = "The server closed the connection.";

/** Waits for the server to close the connection; a keyboard is never sent anything. */
async function serverClosed(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(1024);
  try {
    for (let n = await conn.read(buffer), first = true; n !== null; n = await conn.read(buffer)) {
      // Nothing is expected from the server, but a TLS alert says the port speaks TLS.
      if (first && looksLikeTlsRecord(buffer.subarray(0, n))) {
        return "The server answered with TLS: connect with --tls (and --ca).";
      }
      first = false;
    }
    return SERVER_CLOSED;
  } catch (error) {
    return `The connection to the server was lost: ${describeIoError(error)}.`;
  }
}

/** Runs the keyboard client; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: ClientConnection;
  let user: string | undefined;
  try {
    const values = parseProgramOptions(args, {
      ...CONNECTION_OPTIONS,
      user: { type: "string" },
    });
    if (values === "help") {
      console.log(USAGE);
      return 0;
    }
    options = connectionFrom(values);
    user = typeof values.user === "string" ? values.user.trim() : undefined;
    if (user === "") throw new UsageError("--user must not be empty.");
  } catch (error) {
    say(explainError(error));
    return 2;
  }
  const ctrlC = interrupted();
  const interactive = Deno.stdin.isTerminal();
  const lines = new LineReader(Deno.stdin);
  let conn: Deno.Conn | undefined;
  try {
    const username = user ?? await askUsername(lines, interactive);
    checkUsername(username);
    conn = await connect(options);
    if (interactive) {
      say(
        `Connected to ${
          formatAddress(options.host, options.port)
        } as ${username}. Type a message and press Enter; Ctrl-D or Ctrl-C quits.`,
      );
    }
    const gone = serverClosed(conn);
    const outcome = await Promise.race([
      runKeyboard(conn, username, lines, options).then(() => "eof" as const),
      ctrlC.signal.then(() => "interrupted" as const),
      gone,
    ]);
    if (outcome === "eof") {
      // Let the server read everything, then wait (briefly) for it to close its side.
      // Anything but an orderly close (a TLS alert, a reset) means what was sent was refused.
      await conn.closeWrite().catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ending = await Promise.race([
        gone,
        new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 2000)),
      ]);
      clearTimeout(timer);
      if (ending === undefined || ending === SERVER_CLOSED) return 0;
      say(ending);
      return 1;
    }
    if (outcome === "interrupted") return 0;
    say(outcome);
    return 1;
  } catch (error) {
    say(explainError(error));
    return 1;
  } finally {
    ctrlC.stop();
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
