/**
 * Child processes for tests and tools: any command (a peer server, a load generator) or one of
 * the repository's scripts run as its `deno task` entry runs it. Every handle is `await
 * using`-able: disposal stops the process by its own PID (SIGTERM, then SIGKILL after a bound),
 * awaits its exit and drains its pipes, so the test sanitizers stay on.
 *
 * @module
 */

import { denoPath, programPermissions, REPO_ROOT, taskFor } from "./deno_tasks.ts";
import { Lines, type LinesOptions } from "./lines.ts";
import { WAIT_MS, within } from "./wait.ts";

/** How long a process gets to end on SIGTERM before it is killed. */
const STOP_MS = 3_000;

/** How a program ended and everything it printed. */
export interface ProgramResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode Child}. */
export interface ChildOptions {
  /** Pipe stdin so the caller can write to it; otherwise stdin is /dev/null. */
  stdin?: boolean;
  /** Read stdout (default); false sends it to /dev/null. */
  stdout?: boolean;
  /** Environment added to this process's own. */
  env?: Record<string, string>;
  /** Working directory; default the repository. */
  cwd?: string;
  /** How stderr is kept (see {@linkcode LinesOptions}). */
  stderr?: LinesOptions;
}

/** A child process with its output read line by line as it comes. */
export class Child implements AsyncDisposable {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  /** Its stdout; empty when started with `stdout: false`. */
  readonly stdout: Lines;
  readonly stderr: Lines;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited = false;

  constructor(name: string, command: readonly string[], options: ChildOptions = {}) {
    this.name = name;
    const readOut = options.stdout ?? true;
    this.child = new Deno.Command(command[0], {
      args: command.slice(1),
      cwd: options.cwd ?? REPO_ROOT,
      env: { NO_COLOR: "1", ...options.env },
      stdin: options.stdin ? "piped" : "null",
      stdout: readOut ? "piped" : "null",
      stderr: "piped",
    }).spawn();
    this.#stdin = options.stdin ? this.child.stdin.getWriter() : undefined;
    this.stdout = new Lines(
      `stdout of ${name}`,
      readOut ? this.child.stdout : ReadableStream.from<Uint8Array>([]),
    );
    this.stderr = new Lines(`stderr of ${name}`, this.child.stderr, options.stderr);
    this.status = this.child.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Whether the process has ended. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Writes `text` to the program's stdin. */
  async write(text: string): Promise<void> {
    if (!this.#stdin) throw new Error(`${this.name} was started without a stdin pipe`);
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Ends the program's stdin (EOF); harmless if it is closed already. */
  async closeStdin(): Promise<void> {
    const stdin = this.#stdin;
    this.#stdin = undefined;
    await stdin?.close().catch(() => {});
  }

  /** Sends `signal` to this process only; false if it has already exited. */
  kill(signal: Deno.Signal = "SIGTERM"): boolean {
    if (this.#exited) return false;
    try {
      this.child.kill(signal);
      return true;
    } catch {
      return false; // It exited between the check and the kill.
    }
  }

  /** The exit status, once the program has exited by itself within `ms`. */
  async exitWithin(ms = WAIT_MS): Promise<Deno.CommandStatus> {
    try {
      return await within(ms, `${this.name} to exit`, this.status);
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nstdout so far:\n${this.stdout.text}\nstderr so far:\n${
          this.stderr.tail.join("\n")
        }`,
      );
    }
  }

  /** Waits for the program to exit by itself, then returns its status and output. */
  async result(ms = WAIT_MS): Promise<ProgramResult> {
    const { code, signal } = await this.exitWithin(ms);
    await Promise.all([this.stdout.done, this.stderr.done]);
    return { code, signal, stdout: this.stdout.text, stderr: this.stderr.text };
  }

  /**
   * SIGTERM, then SIGKILL if it is still running after `ms`; resolves with the exit status
   * once its output is read to the end.
   */
  async stop(ms = STOP_MS): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      const status = await this.status;
      await Promise.all([this.stdout.done, this.stderr.done]);
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    await this.stop();
  }
}

/** Options for {@linkcode Program}. */
export interface ProgramOptions extends ChildOptions {
  /**
   * `deno run` permission flags; default those of the script's `deno task` entry, or the
   * clients' for a script that has none.
   */
  permissions?: readonly string[];
  /** Commands to run the program under, e.g. `["prlimit", "--nofile=64:64"]`. */
  wrapper?: readonly string[];
}

/** The command line that runs `script` with `args` as its `deno task` entry would. */
export function programCommand(
  script: string,
  args: readonly string[],
  options: ProgramOptions = {},
): string[] {
  return [
    ...(options.wrapper ?? []),
    denoPath(),
    "run",
    ...(options.permissions ?? taskFor(script)?.flags ?? programPermissions()),
    script,
    ...args,
  ];
}

/** One of the repository's scripts running as a child process, as its `deno task` runs it. */
export class Program extends Child {
  constructor(script: string, args: readonly string[], options: ProgramOptions = {}) {
    super([script, ...args].join(" "), programCommand(script, args, options), {
      ...options,
      env: { ...taskFor(script)?.env, ...options.env },
    });
  }
}

/** Runs a program to completion with `input` (if any) on stdin; fails if it takes over `ms`. */
export async function run(
  script: string,
  args: string[],
  options: ProgramOptions & { input?: string; ms?: number } = {},
): Promise<ProgramResult> {
  await using program = new Program(script, args, {
    ...options,
    stdin: options.input !== undefined,
  });
  if (options.input !== undefined) {
    await program.write(options.input);
    await program.closeStdin();
  }
  return await program.result(options.ms);
}
