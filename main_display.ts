/**
 * wirechat display client: connects as DISPLAY and prints every message as
 * `<username> YYYY-MM-DD HH:mm:ss <text>`.
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
import { runDisplay } from "./lib/client/display.ts";
import { ProtocolError } from "./lib/protocol/errors.ts";
import { describeIoError } from "./lib/net/io_errors.ts";
import { formatAddress } from "./lib/net/transport.ts";
import { explainError } from "./lib/cli/user_errors.ts";
import type { Writer } from "./lib/net/wire_io.ts";

const USAGE = `Usage: ${commandName("display")} [options]

Prints every message the server relays, one line each.

Options:
${CONNECTION_USAGE}
  --reconnect       when the server goes away, reconnect with backoff instead of exiting
  --help            show this help
  --version         show the version`;

/** Raised when stdout is gone (e.g. piped into head): the display's job is over. */
class OutputClosed extends Error {}

const stdout: Writer = {
  write: (bytes) =>
    Deno.stdout.write(bytes).catch((error) => {
      throw new OutputClosed(String(error));
    }),
};

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Runs the display client; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: ClientConnection;
  let reconnect: boolean;
  try {
    const values = parseProgramOptions(args, {
      ...CONNECTION_OPTIONS,
      reconnect: { type: "boolean" },
    });
    if (values === "help") {
      console.log(USAGE);
      return 0;
    }
    options = connectionFrom(values);
    reconnect = values.reconnect === true;
  } catch (error) {
    say(explainError(error));
    return 2;
  }
  const ctrlC = interrupted();
  let current: Deno.Conn | undefined;
  ctrlC.signal.then(() => current && closeQuietly(current));
  try {
    const server = formatAddress(options.host, options.port);
    let backoff = 1;
    let stopped = false;
    ctrlC.signal.then(() => stopped = true);
    const pause = (seconds: number) =>
      Promise.race([ctrlC.signal, new Promise((r) => setTimeout(r, seconds * 1000))]);
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await Promise.race([connect(options), ctrlC.signal.then(() => null)]) as Deno.Conn;
        if (stopped) return 0;
      } catch (error) {
        if (!reconnect) throw error;
        say(`${explainError(error)} Retrying in ${backoff} s.`);
        await pause(backoff);
        if (stopped) return 0;
        backoff = Math.min(backoff * 2, 30);
        continue;
      }
      current = conn;
      // Someone at a terminal learns that it works before the first message; stdout stays
      // the message lines only, for pipes.
      if (Deno.stderr.isTerminal()) {
        say(`Connected to ${server}; waiting for messages (Ctrl-C quits).`);
      }
      let lost = "The server closed the connection.";
      try {
        await runDisplay(conn, stdout, {
          littleEndian: options.littleEndian,
          onIdentified: () => backoff = 1,
        });
      } catch (error) {
        if (stopped || error instanceof OutputClosed) return 0;
        if (error instanceof ProtocolError) {
          lost = error.message.includes("TLS")
            ? "The server answered with TLS: connect with --tls (and --ca)."
            : `The server sent a malformed frame (${error.message}).`;
        } else {
          lost = `The connection to ${server} was lost: ${describeIoError(error)}.`;
        }
      } finally {
        current = undefined;
        closeQuietly(conn);
      }
      if (stopped) return 0;
      if (!reconnect) {
        say(lost);
        return 1;
      }
      say(`${lost} Reconnecting in ${backoff} s.`);
      await pause(backoff);
      if (stopped) return 0;
      backoff = Math.min(backoff * 2, 30);
    }
  } catch (error) {
    say(explainError(error));
    return 1;
  } finally {
    ctrlC.stop();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
