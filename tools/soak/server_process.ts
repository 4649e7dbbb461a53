/**
 * The real server as a child process, for the soak, the server fuzzer and the reliability
 * tests: started with the permissions of its `deno task server` entry (deno.json stays the one
 * place they are written), its log read line by line as it comes (a pipe nobody reads would
 * stall the server), and its memory, descriptors and CPU read from /proc where there is one
 * (on Linux a failed read is an error, never a skipped check).
 *
 * Deno asks for --allow-all to read another process's /proc files, so they are read through
 * `cat` and `ls` instead, which only need --allow-run=cat,ls.
 *
 * @module
 */

import { parseRunTask } from "../compile.ts";

/** One listener the server announced: `full TLS server listening on 0.0.0.0:55400 (TLS)`. */
export interface ListeningEndpoint {
  label: string;
  port: number;
  tls: boolean;
}

/** Options for {@linkcode ServerProcess.start}. */
export interface ServerProcessOptions {
  /** How many "listening on" lines to wait for (default 1; 4 for --reference). */
  endpoints?: number;
  /** Run under `prlimit --nofile=N:N`, to starve it of descriptors. */
  nofile?: number;
  /** Also append every log line to this file. */
  logFile?: string;
  /** Give up waiting for the listeners after this long (default 30 s). */
  startMs?: number;
}

/** The server's memory, descriptors and CPU time, from /proc. */
export interface ProcStats {
  /** Peak resident set size (VmHWM), KiB. */
  peakRssKiB: number;
  /** Current resident set size (VmRSS), KiB. */
  rssKiB: number;
  /** Open file descriptors. */
  fds: number;
  /** User + system CPU time, seconds. */
  cpuSeconds: number;
}

/** Lines that mean the runtime itself gave up: a crash, not a logged decision. */
export const CRASH_PATTERN = /Uncaught|panicked|RUST_BACKTRACE|^error: /;

const decoder = new TextDecoder();

/** Reads the server's log as it comes: counts, a tail, and waits on patterns. */
export class ServerLog {
  /** Lines seen so far. */
  lines = 0;
  /** The last lines, for failure messages. */
  readonly tail: string[] = [];
  /** Lines that look like a crash (see {@linkcode CRASH_PATTERN}). */
  readonly crashes: string[] = [];
  /** Why clients were dropped, numbers blanked out so that alike reasons count together. */
  readonly dropReasons = new Map<string, number>();
  /** Lines by level: error, warn, info, debug. */
  readonly levels = new Map<string, number>();
  readonly done: Promise<void>;
  #watchers = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  #keep: ((line: string) => boolean)[] = [];
  #file: Deno.FsFile | undefined;

  constructor(stream: ReadableStream<Uint8Array>, file?: Deno.FsFile) {
    this.#file = file;
    this.done = this.#pump(stream);
  }

  /** Resolves with the first line from now on that matches `pattern`, or rejects after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Promise<string>((resolve, reject) => {
      const watcher = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          this.#watchers.delete(watcher);
          resolve(line);
        },
      };
      this.#watchers.add(watcher);
      timer = setTimeout(() => {
        this.#watchers.delete(watcher);
        reject(new Error(`no server log line matching ${pattern} within ${ms} ms`));
      }, ms);
    });
  }

  /** Keeps every later line for which `filter` is true; returns them as they come. */
  collect(filter: (line: string) => boolean): string[] {
    const kept: string[] = [];
    this.#keep.push((line) => {
      if (filter(line)) kept.push(line);
      return false;
    });
    return kept;
  }

  #line(line: string): void {
    this.lines++;
    this.tail.push(line);
    if (this.tail.length > 200) this.tail.shift();
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
    for (const keep of this.#keep) keep(line);
    for (const watcher of this.#watchers) if (watcher.pattern.test(line)) watcher.resolve(line);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    try {
      for await (const chunk of stream) {
        if (this.#file) await this.#file.write(chunk);
        partial += decoder.decode(chunk, { stream: true });
        const lines = partial.split("\n");
        partial = lines.pop()!;
        for (const line of lines) this.#line(line);
      }
    } finally {
      if (partial) this.#line(partial);
      this.#file?.close();
    }
  }
}

/** A running server process; `await using` stops it. */
export class ServerProcess implements AsyncDisposable {
  readonly pid: number;
  readonly log: ServerLog;
  readonly endpoints: ListeningEndpoint[] = [];
  /** Resolves with the exit status when the process ends. */
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #exited: Deno.CommandStatus | undefined;

  private constructor(child: Deno.ChildProcess, log: ServerLog) {
    this.#child = child;
    this.pid = child.pid;
    this.log = log;
    this.status = child.status.then((status) => this.#exited = status);
  }

  /** The command line that runs the server with `args`, as `deno task server` would. */
  static async command(args: string[], options: ServerProcessOptions = {}): Promise<string[]> {
    const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
    const task = config.tasks.server;
    const { flags, entry } = parseRunTask(typeof task === "string" ? task : task.command);
    const root = new URL("../../", import.meta.url).pathname;
    const deno = [denoPath(), "run", ...flags, `${root}${entry}`, ...args];
    return options.nofile
      ? ["prlimit", `--nofile=${options.nofile}:${options.nofile}`, ...deno]
      : deno;
  }

  /** The environment settings that `deno task server` starts the server with. */
  static async environment(): Promise<Record<string, string>> {
    const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
    const task = config.tasks.server;
    return parseRunTask(typeof task === "string" ? task : task.command).env;
  }

  /**
   * The server's --help text, to learn which options this version of it has (a tool can then
   * say that an option is missing rather than fail to start it).
   */
  static async help(): Promise<string> {
    const [program, ...rest] = await ServerProcess.command(["--help"]);
    const { stdout } = await new Deno.Command(program, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return decoder.decode(stdout);
  }

  /** Starts the server and waits until it says where it listens. */
  static async start(args: string[], options: ServerProcessOptions = {}): Promise<ServerProcess> {
    const [program, ...rest] = await ServerProcess.command(args, options);
    const child = new Deno.Command(program, {
      args: rest,
      env: await ServerProcess.environment(),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const file = options.logFile
      ? await Deno.open(options.logFile, { create: true, write: true, truncate: true })
      : undefined;
    const server = new ServerProcess(child, new ServerLog(child.stderr, file));
    const wanted = options.endpoints ?? 1;
    const found = server.log.collect((line) => / listening on /.test(line));
    const deadline = Date.now() + (options.startMs ?? 30_000);
    while (found.length < wanted) {
      if (server.#exited || Date.now() > deadline) {
        await server.stop();
        throw new Error(
          `the server did not start (${
            server.#exited ? `exit code ${server.#exited.code}` : "timed out"
          }):\n${server.log.tail.join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const line of found) {
      const match = /\S+ \S+ +(.*) listening on .*:(\d+)( \(TLS\))?$/.exec(line);
      if (match) {
        server.endpoints.push({ label: match[1], port: Number(match[2]), tls: !!match[3] });
      }
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
    options: ServerProcessOptions = {},
    random: () => number = Math.random,
  ): Promise<ServerProcess> {
    for (let attempt = 1;; attempt++) {
      const base = 10_000 + Math.floor(random() * 22_000);
      try {
        return await ServerProcess.start(
          ["--reference", "--base-port", String(base), ...args],
          { endpoints: 4, ...options },
        );
      } catch (error) {
        if (attempt >= 5 || !/in use/.test(String(error))) throw error;
      }
    }
  }

  /** The port of the first endpoint whose label is `label` (or the first plain/TLS one). */
  port(which: string | { tls: boolean }): number {
    const found = this.endpoints.find((e) =>
      typeof which === "string" ? e.label === which : e.tls === which.tls
    );
    if (!found) throw new Error(`the server has no ${JSON.stringify(which)} endpoint`);
    return found.port;
  }

  /** Whether the process has ended. */
  get exited(): boolean {
    return this.#exited !== undefined;
  }

  /** Sends a signal; false if the process is already gone. */
  kill(signal: Deno.Signal): boolean {
    if (this.#exited) return false;
    try {
      this.#child.kill(signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Memory, descriptors and CPU time; undefined where there is no /proc. On Linux a failed
   * read throws (see {@linkcode procStats}).
   */
  async stats(): Promise<ProcStats | undefined> {
    return await procStats(this.pid);
  }

  /** SIGTERM, then SIGKILL after `ms`; resolves with the exit status once the log is read. */
  async stop(ms = 5_000): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      const status = await this.status;
      await this.log.done;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * The Deno to run the server with: this one, if allowed to run it (tests); else `deno` from
 * PATH, which is what `--allow-run=deno` grants (the soak and fuzz tasks).
 */
function denoPath(): string {
  try {
    const self = Deno.execPath();
    if (Deno.permissions.querySync({ name: "run", command: self }).state === "granted") return self;
  } catch {
    // Not allowed to know where this Deno is: PATH's it is.
  }
  return "deno";
}

/** Whether this system has /proc with per-process status files (Linux). */
export function hasProc(): boolean {
  return Deno.build.os === "linux";
}

/**
 * Reads a process's /proc entries through `cat` and `ls`. Undefined where there is no /proc
 * (not Linux); on Linux a read that fails (the process is gone, `cat` cannot run) throws, so
 * that a check which needs the figures fails rather than being skipped.
 */
export async function procStats(pid: number): Promise<ProcStats | undefined> {
  if (!hasProc()) return undefined;
  const run = async (program: string, args: string[]) => {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(program, {
        args,
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(`cannot read /proc/${pid}: running ${program} failed: ${error}`);
    }
    if (output.code !== 0) {
      const why = decoder.decode(output.stderr).trim().split("\n")[0];
      throw new Error(`cannot read /proc/${pid}: ${program} ${args.join(" ")}: ${why}`);
    }
    return decoder.decode(output.stdout);
  };
  const [status, fds, stat] = await Promise.all([
    run("cat", [`/proc/${pid}/status`]),
    run("ls", [`/proc/${pid}/fd`]),
    run("cat", [`/proc/${pid}/stat`]),
  ]);
  const kib = (name: string) => {
    const value = Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    if (!Number.isFinite(value)) throw new Error(`/proc/${pid}/status has no ${name} line`);
    return value;
  };
  // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`/proc/${pid}/stat has no CPU times`);
  return {
    peakRssKiB: kib("VmHWM"),
    rssKiB: kib("VmRSS"),
    fds: fds.split("\n").filter((name) => name !== "").length,
    cpuSeconds: ticks / 100,
  };
}
