/**
 * One-line logging to stderr with levels. Each event is one line, so a lecturer can grep a
 * day of reference-server logs for one student's address.
 *
 * @module
 */

/** Log levels from most to least severe. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Where log lines go; tests and tools can collect them instead. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // A closed stderr must not take the server down with it.
  }
}

/** A levelled logger. */
export class Logger {
  #rank: number;
  #sink: LogSink;

  constructor(level: LogLevel = "info", sink: LogSink = stderrSink) {
    this.#rank = LOG_LEVELS.indexOf(level);
    this.#sink = sink;
  }

  /** Whether lines of `level` are written; lets hot paths skip building them. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.#rank;
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.#sink(`${new Date().toISOString()} ${level.padEnd(5)} ${message}`);
  }

  error(message: string): void {
    this.log("error", message);
  }
  warn(message: string): void {
    this.log("warn", message);
  }
  info(message: string): void {
    this.log("info", message);
  }
  debug(message: string): void {
    this.log("debug", message);
  }
}
