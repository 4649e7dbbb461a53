/**
 * The real server as a child process, for the tests, the soak, the fuzzers and the bench: the
 * one server harness. It is started with the permissions and environment of its `deno task
 * server` entry (deno.json stays the one place they are written), waited on until every
 * listener has logged its address, its log read line by line as it comes (a pipe nobody reads
 * would stall the server), and its memory, descriptors and CPU readable from /proc.
 *
 * @module
 */

import { Child, Program, programCommand } from "./program.ts";
import { taskFor } from "./deno_tasks.ts";
import { Lines } from "./lines.ts";
import { escapeRegExp } from "./text.ts";
import { type ProcStats, procStats } from "./proc_stats.ts";

/** One listener the server announced: `full TLS server listening on 0.0.0.0:55400`. */
export interface Endpoint {
  label: string;
  port: number;
  tls: boolean;
}

/** Options for {@linkcode ServerProcess.start}. */
export interface ServerOptions {
  /** `--host`; default 127.0.0.1. */
  host?: string;
  /** `--port`; default 0 (a free one). null leaves it out (for `--reference`). */
  port?: number | null;
  /** How many "listening on" lines to wait for; default 1 (4 for `--reference`). */
  listeners?: number;
  /** Run under `prlimit --nofile=N:N`, to starve it of descriptors. */
  nofile?: number;
  /** Put in front of the command (the bench's `taskset -c 0`, say). */
  wrapper?: readonly string[];
  /** Also append every log line to this file. */
  logFile?: string;
  /** Give up waiting for the listeners after this long (default 30 s). */
  startMs?: number;
  /** Keep every log line (default true); a long soak keeps a tail and the tallies only. */
  keepLog?: boolean;
  /** `deno run` permission flags instead of the server task's. */
  permissions?: readonly string[];
  /**
   * Run this command instead of main_server.ts (with `args` after it, and no --host or
   * --port added): a fixture or a student's server that logs `listening on HOST:PORT`.
   */
  command?: readonly string[];
  /** Environment added to the server's (and to its task's). */
  env?: Record<string, string>;
}

/** Lines that mean the runtime itself gave up: a crash, not a logged decision. */
export const CRASH_PATTERN = /Uncaught|panicked|RUST_BACKTRACE|^error: /;

/**
 * `... info  full TLS server listening on 0.0.0.0:55400` (the label says TLS; older servers
 * added ` (TLS)` too), or a fixture's bare line.
 */
const LISTENING = /^(?:\S+ +(?:info|warn) +)?(.*?) ?listening on (\S+):(\d+)( \(TLS\))?$/;

/** What a long run wants to know of a server's log without keeping it all. */
export class LogTally {
  /** Lines that look like a crash (see {@linkcode CRASH_PATTERN}). */
  readonly crashes: string[] = [];
  /** Why clients were dropped, numbers blanked out so that alike reasons count together. */
  readonly dropReasons = new Map<string, number>();
  /** Lines by level: error, warn, info, debug. */
  readonly levels = new Map<string, number>();

  constructor(log: Lines) {
    log.onLine((line) => this.#line(line));
  }

  #line(line: string): void {
    if (CRASH_PATTERN.test(line)) this.crashes.push(line);
    const level = /^\S+ (error|warn|info|debug) /.exec(line)?.[1];
    if (level) this.levels.set(level, (this.levels.get(level) ?? 0) + 1);
    const dropped = /dropped \((\w+)\): (.*)$/.exec(line);
    if (dropped) {
      const reason = `${dropped[1]}: ${
        dropped[2]
          .replace(/code [0-9a-f]{2}( [0-9a-f]{2}){3}:/, "code XX XX XX XX:")
          .replace(/\b\d+(\.\d+)?\b/g, "N")
      }`;
      this.dropReasons.set(reason, (this.dropReasons.get(reason) ?? 0) + 1);
    }
  }
}

/** A running main_server.ts; `await using` stops it. */
export class ServerProcess extends Child {
  /** Its listeners, in the order it announced them. */
  readonly endpoints: Endpoint[] = [];
  /** Crashes, drop reasons and levels seen in its log. */
  readonly tally: LogTally;

  private constructor(args: string[], options: ServerOptions, file?: Deno.FsFile) {
    const wrapper = [
      ...(options.wrapper ?? []),
      ...(options.nofile ? ["prlimit", `--nofile=${options.nofile}:${options.nofile}`] : []),
    ];
    const command = options.command
      ? [...wrapper, ...options.command, ...args]
      : programCommand("main_server.ts", args, { permissions: options.permissions, wrapper });
    super(command.join(" "), command, {
      stdout: false,
      stderr: { keepAll: options.keepLog ?? true, file },
      env: { ...(options.command ? {} : taskFor("main_server.ts")?.env), ...options.env },
    });
    this.tally = new LogTally(this.stderr);
  }

  /** Starts the server and resolves once every listener has logged its address. */
  static async start(args: string[], options: ServerOptions = {}): Promise<ServerProcess> {
    const port = options.port === undefined ? 0 : options.port;
    const file = options.logFile
      ? await Deno.open(options.logFile, { create: true, write: true, truncate: true })
      : undefined;
    const address = options.command ? [] : [
      "--host",
      options.host ?? "127.0.0.1",
      ...(port === null ? [] : ["--port", String(port)]),
    ];
    const server = new ServerProcess([...address, ...args], options, file);
    const wanted = options.listeners ?? (args.includes("--reference") ? 4 : 1);
    let found: string[];
    try {
      found = await listening(server, wanted, options.startMs ?? 30_000);
    } catch (error) {
      await server.stop();
      throw error;
    }
    for (const line of found.slice(0, wanted)) {
      const [, label, , port, tls] = LISTENING.exec(line)!;
      const secure = tls !== undefined || /\bTLS\b/.test(label);
      server.endpoints.push({ label, port: Number(port), tls: secure });
    }
    return server;
  }

  /**
   * Starts `--reference` servers on a free run of ports: BASE, BASE+100, BASE+200, BASE+300,
   * with BASE below the usual ephemeral range, trying again elsewhere if a port is taken.
   * `random` picks from [0, 1), e.g. a seeded generator's.
   */
  static async startReference(
    args: string[],
    options: ServerOptions = {},
    random: () => number = Math.random,
  ): Promise<ServerProcess> {
    for (let attempt = 1;; attempt++) {
      const base = 10_000 + Math.floor(random() * 22_000);
      try {
        return await ServerProcess.start(
          ["--reference", "--base-port", String(base), ...args],
          { listeners: 4, port: null, ...options },
        );
      } catch (error) {
        if (attempt >= 5 || !/in use/.test(String(error))) throw error;
      }
    }
  }

  /**
   * The server's --help text, to learn which options this version of it has (a tool can then
   * say that an option is missing rather than fail to start it).
   */
  static async help(): Promise<string> {
    await using help = new Program("main_server.ts", ["--help"]);
    return (await help.result()).stdout;
  }

  /** The server's stderr: its log. */
  get log(): Lines {
    return this.stderr;
  }

  /** The port of the first (or only) listener. */
  get port(): number {
    return this.endpoints[0].port;
  }

  /** The port of the listener labelled exactly `which` (e.g. "full TLS server"), or the first plain or TLS one. */
  portOf(which: string | { tls: boolean }): number {
    const found = this.endpoints.find((e) =>
      typeof which === "string" ? e.label === which : e.tls === which.tls
    );
    if (!found) {
      throw new Error(
        `no listener ${JSON.stringify(which)} among ${this.endpoints.map((e) => e.label)}`,
      );
    }
    return found.port;
  }

  /** The log lines that name `peer` (e.g. "127.0.0.1:40312"). */
  linesAbout(peer: string): string[] {
    return this.log.matching(new RegExp(` ${escapeRegExp(peer)} `));
  }

  /** Resolves once the server has logged that `peer` identified as `role`. */
  async sawIdentify(peer: string, role: "display" | "keyboard"): Promise<void> {
    await this.log.waitFor(new RegExp(` ${escapeRegExp(peer)} identified as ${role}\\b`));
  }

  /**
   * Memory, descriptors and CPU time; undefined where there is no /proc. On Linux a failed
   * read throws (see {@linkcode procStats}).
   */
  async stats(): Promise<ProcStats | undefined> {
    return await procStats(this.pid);
  }

  /** SIGTERM, then SIGKILL after `ms` (default 5 s); resolves once the log is read. */
  override stop(ms = 5_000): Promise<Deno.CommandStatus> {
    return super.stop(ms);
  }
}

/**
 * The first `count` "listening on" lines; rejects with the server's last words if it exits
 * first or `ms` pass.
 */
function listening(server: ServerProcess, count: number, ms: number): Promise<string[]> {
  const found: string[] = [];
  let stop = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = (why: string) =>
    new Error(`the server did not start (${why}):\n${server.log.tail.join("\n")}`);
  return new Promise<string[]>((resolve, reject) => {
    stop = server.log.onLine((line) => {
      if (LISTENING.test(line)) found.push(line);
      if (found.length >= count) resolve(found);
    });
    timer = setTimeout(() => reject(failed(`no ${count} listeners within ${ms} ms`)), ms);
    server.log.done.then(() => reject(failed("its log ended")), reject);
  }).finally(() => {
    stop();
    clearTimeout(timer);
  });
}
