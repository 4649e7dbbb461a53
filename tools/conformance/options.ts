/**
 * The conformance checker's command line: `server`, `display` or `keyboard`, their options,
 * and the command after `--` that starts the client under test. Every mistake becomes a
 * {@linkcode UsageError} whose message is the one sentence to print.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_MAX_FRAME } from "../../lib/protocol/frame.ts";
import { UsageError } from "../../lib/cli/user_errors.ts";
import { commandName } from "../../lib/cli/args.ts";

export { UsageError };

/** Options every mode takes. */
export interface CommonOptions {
  json: boolean;
  timeoutMs: number;
  only?: string[];
}

/** `conformance server ...` */
export interface ServerModeOptions extends CommonOptions {
  mode: "server";
  host: string;
  port: number;
  tls: boolean;
  ca?: string;
  extensions: boolean;
  hostile: boolean;
  maxFrame: number;
}

/** `conformance display|keyboard ... -- COMMAND...` */
export interface ClientModeOptions extends CommonOptions {
  mode: "display" | "keyboard";
  /** 0 picks a free port. */
  port: number;
  tls: boolean;
  cert?: string;
  key?: string;
  ca?: string;
  /** The keyboard's username, `{user}` in the command. */
  user: string;
  /** The client under test; empty means wait for it to be started by hand. */
  command: string[];
}

/** A parsed command line. */
export type ConformanceOptions =
  | ServerModeOptions
  | ClientModeOptions
  | { mode: "help"; text: string }
  | { mode: "list"; of: "server" | "display" | "keyboard"; json: boolean };

/** The help text. */
export const USAGE = `Usage: ${commandName("conformance")} MODE [options] [-- COMMAND...]

  conformance server   [--host H] [--port P] [--tls [--ca FILE]] [--extensions] [--hostile]
                       [--max-frame N] [--only NAME,...] [--json] [--timeout S]
  conformance display  [--port P] [--tls [--cert F --key F] [--ca F]] [--only NAME,...]
                       [--json] [--timeout S] [-- COMMAND...]
  conformance keyboard [--port P] [--tls [--cert F --key F] [--ca F]] [--user NAME]
                       [--only NAME,...] [--json] [--timeout S] -- COMMAND...
  conformance MODE --list

server    connects to a running server as displays and keyboards and checks it.
display   plays the server for a display client: starts COMMAND (with {host}, {port}
          and {ca} replaced), or waits for a display to connect when there is none.
keyboard  plays the server for a keyboard client: starts COMMAND (with {host}, {port},
          {ca} and {user} replaced), types lines into its stdin, checks every frame.

  --host H        the server to check (default 127.0.0.1)
  --port P        server mode: its port (default 55200); client modes: the port to
                  listen on (default 0, a free one)
  --tls           speak TLS. Server mode: trust --ca FILE (default: system roots).
                  Client modes: serve --cert/--key, or a throwaway set generated for
                  the run whose root CA replaces {ca} in COMMAND
  --extensions    server mode: also check little-endian peers (beyond the brief)
  --hostile       server mode: also check that misbehaving clients hurt nobody else
  --max-frame N   the server's largest overall_length (default ${DEFAULT_MAX_FRAME})
  --user NAME     keyboard mode: the username the keyboard should send (default alice)
  --only NAMES    run only these checks (comma-separated; see --list)
  --list          list the checks of a mode
  --json          one JSON record per check, then a summary record
  --timeout S     seconds each check may take (default 5)
  --help          show this help
  --version       show the version

Exit status: 0 when every check passed, 1 when any failed or was skipped, 2 on a
usage error.`;

const SPEC = {
  host: { type: "string" },
  port: { type: "string" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  extensions: { type: "boolean" },
  hostile: { type: "boolean" },
  "max-frame": { type: "string" },
  user: { type: "string" },
  only: { type: "string" },
  list: { type: "boolean" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parse>["values"];

function parse(args: string[]) {
  return parseArgs({ args, options: SPEC, strict: true, allowPositionals: true });
}

const MODES = ["server", "display", "keyboard"] as const;

/** Parses the checker's arguments. */
export function parseOptions(args: string[]): ConformanceOptions {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  const command = split < 0 ? [] : args.slice(split + 1);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(own);
  } catch (error) {
    throw new UsageError(parseErrorSentence(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { mode: "help", text: USAGE };
  const [mode, ...extra] = positionals;
  if (mode === undefined) {
    throw new UsageError("Say what to check: server, display or keyboard (try --help).");
  }
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UsageError(
      `Unknown mode "${mode}": use server, display or keyboard (try --help).`,
    );
  }
  if (extra.length > 0) {
    throw new UsageError(
      `Unexpected argument "${extra[0]}": put the client's command after -- (try --help).`,
    );
  }
  const which = mode as typeof MODES[number];
  if (values.list) return { mode: "list", of: which, json: values.json === true };
  const common: CommonOptions = {
    json: values.json === true,
    timeoutMs: number(values, "timeout", 5, 0.1, 600) * 1000,
    only: values.only?.split(",").map((s) => s.trim()).filter((s) => s !== ""),
  };
  if (which === "server") return serverOptions(values, common, command);
  return clientOptions(which, values, common, command);
}

function serverOptions(
  values: Values,
  common: CommonOptions,
  command: string[],
): ServerModeOptions {
  if (command.length > 0) {
    throw new UsageError("Server mode takes no command: start the server yourself, then check it.");
  }
  for (const name of ["cert", "key", "user"] as const) {
    if (values[name] !== undefined) {
      throw new UsageError(`--${name} is not an option of server mode (try --help).`);
    }
  }
  if (values.ca !== undefined && !values.tls) {
    throw new UsageError("--ca only makes sense with --tls.");
  }
  return {
    ...common,
    mode: "server",
    host: values.host ?? "127.0.0.1",
    port: number(values, "port", 55200, 1, 65535),
    tls: values.tls === true,
    ca: values.ca,
    extensions: values.extensions === true,
    hostile: values.hostile === true,
    maxFrame: number(values, "max-frame", DEFAULT_MAX_FRAME, 100, 2 ** 31 - 1),
  };
}

function clientOptions(
  mode: "display" | "keyboard",
  values: Values,
  common: CommonOptions,
  command: string[],
): ClientModeOptions {
  for (const name of ["host", "extensions", "hostile", "max-frame"] as const) {
    if (values[name] !== undefined) {
      throw new UsageError(
        `--${name} is not an option of ${mode} mode: the checker listens on 127.0.0.1 (try --help).`,
      );
    }
  }
  if (mode === "display" && values.user !== undefined) {
    throw new UsageError("--user is an option of keyboard mode only.");
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError(
      "--cert and --key go together: give both, or neither for a throwaway set.",
    );
  }
  if ((values.cert !== undefined || values.ca !== undefined) && !values.tls) {
    throw new UsageError("--cert, --key and --ca only make sense with --tls.");
  }
  if (mode === "keyboard" && command.length === 0) {
    throw new UsageError(
      "Keyboard mode needs the command that starts your keyboard after --, so the checker " +
        "can type into it: ... keyboard -- python3 keyboard.py {host} {port}",
    );
  }
  const user = values.user ?? "alice";
  if (user.trim() === "" || /[\r\n]/.test(user)) {
    throw new UsageError("--user must be a non-empty name on one line.");
  }
  return {
    ...common,
    mode,
    port: number(values, "port", 0, 0, 65535),
    tls: values.tls === true,
    cert: values.cert,
    key: values.key,
    ca: values.ca,
    user,
    command,
  };
}

function number(values: Values, name: keyof Values, fallback: number, min: number, max: number) {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`--${name} must be a number, not "${raw}".`);
  }
  if (value < min || value > max) {
    throw new UsageError(`--${name} must be between ${min} and ${max}, not ${value}.`);
  }
  if (name !== "timeout" && !Number.isInteger(value)) {
    throw new UsageError(`--${name} must be a whole number, not ${value}.`);
  }
  return value;
}

function parseErrorSentence(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) {
    return `Unknown option ${option} (try --help; the client's own options go after --).`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    return `Option ${option} needs a value (try --help).`;
  }
  return `${message.split(". ")[0].replace(/\.$/, "")} (try --help).`;
}
