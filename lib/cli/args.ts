/**
 * Command-line parsing shared by the programs: `node:util`'s parseArgs, with every mistake
 * turned into a {@linkcode UsageError} that names the option.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { explainError, UsageError } from "./user_errors.ts";
import { versionText, wantsVersion } from "./version.ts";

/** The option table parseArgs takes. */
export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean; short?: string; default?: string | boolean }
>;

/** Parsed option values, as parseArgs returns them. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Parses `args` strictly; unknown options and missing values become a UsageError. */
export function parseOptions(
  args: string[],
  spec: OptionSpec,
): { values: OptionValues; positionals: string[] } {
  if (wantsVersion(args)) {
    // Every program answers --version the same way, whatever else is on the line.
    console.log(versionText());
    Deno.exit(0);
  }
  try {
    const { values, positionals } = parseArgs({
      args,
      options: spec,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as OptionValues, positionals };
  } catch (error) {
    // node:util's messages run on ("... place it at the end of the command after '--'");
    // the first sentence is the one that helps.
    const message = error instanceof Error ? error.message.split(". ")[0] : String(error);
    throw new UsageError(`${message.replace(/\.$/, "")}. Try --help.`);
  }
}

/**
 * Parses a program's options, which take no positional arguments. Returns "help" when
 * --help was asked for, so the program prints its usage and exits 0.
 */
export function parseProgramOptions(args: string[], spec: OptionSpec): OptionValues | "help" {
  const { values, positionals } = parseOptions(args, spec);
  if (values.help) return "help";
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}". Try --help.`);
  }
  return values;
}

/**
 * Runs a tool's `main` so that a bad command line or any other failure ends in one sentence
 * on stderr (exit 2 for usage, 1 otherwise), never a stack trace.
 */
export async function runTool(
  main: (args: string[]) => number | Promise<number>,
  args: string[],
): Promise<number> {
  if (wantsVersion(args)) {
    console.log(versionText());
    return 0;
  }
  try {
    return await main(args);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const usage = error instanceof UsageError ||
      (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"));
    const message = error instanceof Error ? error.message.split(". ")[0] : String(error);
    console.error(
      usage && !(error instanceof UsageError)
        ? `${message.replace(/\.$/, "")}. Try --help.`
        : explainError(error),
    );
    return usage ? 2 : 1;
  }
}

/**
 * How the user started this program, for its Usage line: `deno task server`, or the
 * executable's own name (`wirechat-server`) when it was built by `deno task compile`.
 */
export function commandName(task: string): string {
  try {
    const executable = Deno.execPath().split(/[\\/]/).pop() ?? "";
    if (executable.startsWith("wirechat-")) return executable.replace(/\.exe$/, "");
  } catch {
    // Not allowed to know: the task it is.
  }
  return `deno task ${task}`;
}

/** Reads a string option, or `fallback`. */
export function stringOption(values: OptionValues, name: string, fallback: string): string;
export function stringOption(values: OptionValues, name: string): string | undefined;
export function stringOption(
  values: OptionValues,
  name: string,
  fallback?: string,
): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : fallback;
}

/** Reads a number option within [min, max], or `fallback`; anything else is a UsageError. */
export function numberOption(
  values: OptionValues,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = values[name];
  if (typeof raw !== "string") return fallback;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, not "${raw}".`);
  }
  return value;
}

/** Reads a TCP port option (0 asks the system for a free one). */
export function portOption(values: OptionValues, name: string, fallback: number): number {
  const port = numberOption(values, name, fallback, 0, 65535);
  if (!Number.isInteger(port)) throw new UsageError(`--${name} must be a whole number.`);
  return port;
}

/** Milliseconds in each unit a duration may be given in. */
const DURATION_UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a duration such as `7d`, `12h`, `30m`, `45s` or `2w` (a bare number is seconds)
 * into milliseconds; undefined if it is not one.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNITS[match[2] || "s"];
}

/** Reads a duration option (see {@linkcode parseDuration}) in ms, or `fallback`. */
export function durationOption(values: OptionValues, name: string, fallback: number): number {
  const raw = values[name];
  if (typeof raw !== "string") return fallback;
  const ms = parseDuration(raw);
  if (ms === undefined) {
    throw new UsageError(
      `--${name} must be a duration such as 7d, 12h, 30m or 45s, not "${raw}".`,
    );
  }
  return ms;
}
