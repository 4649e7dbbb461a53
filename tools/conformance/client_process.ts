/**
 * The client under test as a child process: started from the user's command with `{host}`,
 * `{port}`, `{ca}` and `{user}` filled in, its stdout and stderr collected, its stdin fed,
 * and stopped for certain at the end however it behaves, or when the checker itself is
 * interrupted (Ctrl-C, SIGTERM): a client under test is never left running.
 *
 * @module
 */

import { UsageError } from "../../lib/cli/user_errors.ts";
import { before } from "./deadline.ts";

/** Options for {@linkcode ClientProcess.start}. */
export interface ClientProcessOptions {
  /** Give the child a stdin pipe (keyboards); otherwise stdin is /dev/null. */
  stdin?: boolean;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/** Replaces `{name}` placeholders in each argument; unknown placeholders are an error. */
export function substitute(
  command: string[],
  values: Record<string, string | undefined>,
): string[] {
  return command.map((arg) =>
    arg.replace(/\{(host|port|ca|user)\}/g, (_, name: string) => {
      const value = values[name];
      if (value === undefined) {
        throw new UsageError(
          name === "ca"
            ? "The command uses {ca}, but there is no CA file: add --tls (and --ca if you pass --cert/--key)."
            : `The command uses {${name}}, which this mode does not provide.`,
        );
      }
      return value;
    })
  );
}

/** The signals that stop the checker, with the exit status each one means. */
const STOP_SIGNALS: readonly [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143]];

/** A started client with its output captured. */
export class ClientProcess {
  /** Clients not yet exited; while there are any, a stop signal takes them down first. */
  static #running = new Set<ClientProcess>();
  static #handlers = STOP_SIGNALS.map(([signal, status]) => ({
    signal,
    handler: () => void ClientProcess.#stopAllAndExit(status),
  }));

  readonly commandLine: string;
  #child: Deno.ChildProcess;
  #stdout: Uint8Array[] = [];
  #stdoutLength = 0;
  #stderr: Uint8Array[] = [];
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #pumps: Promise<void>[] = [];
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #status: Deno.CommandStatus | undefined;
  #waiters: (() => void)[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;

  private constructor(command: string[], child: Deno.ChildProcess, stdin: boolean) {
    this.commandLine = command.map((a) => /[\s"'\\]/.test(a) ? JSON.stringify(a) : a).join(" ");
    this.#child = child;
    if (stdin) this.#stdin = child.stdin.getWriter();
    this.#pumps.push(this.#pump(child.stdout, this.#stdout, true));
    this.#pumps.push(this.#pump(child.stderr, this.#stderr, false));
    this.exited = child.status.then((status) => {
      this.#status = status;
      ClientProcess.#forget(this);
      this.#notify();
      return status;
    });
    ClientProcess.#watch(this);
  }

  static #watch(client: ClientProcess): void {
    if (ClientProcess.#running.size === 0) {
      for (const { signal, handler } of ClientProcess.#handlers) {
        try {
          Deno.addSignalListener(signal, handler);
        } catch {
          // Not a signal this system has (SIGTERM on Windows).
        }
      }
    }
    ClientProcess.#running.add(client);
  }

  static #forget(client: ClientProcess): void {
    if (!ClientProcess.#running.delete(client) || ClientProcess.#running.size > 0) return;
    for (const { signal, handler } of ClientProcess.#handlers) {
      try {
        Deno.removeSignalListener(signal, handler);
      } catch {
        // Never added.
      }
    }
  }

  /** SIGTERM to every running client, SIGKILL to those still there after 500 ms, then exit. */
  static async #stopAllAndExit(status: number): Promise<never> {
    const clients = [...ClientProcess.#running];
    for (const client of clients) client.#kill("SIGTERM");
    const deadline = Date.now() + 500;
    await before(Promise.all(clients.map((client) => client.exited)), deadline);
    for (const client of clients) if (client.#status === undefined) client.#kill("SIGKILL");
    Deno.exit(status);
  }

  /** Starts `command`; a program that cannot be started is a {@linkcode UsageError}. */
  static start(command: string[], options: ClientProcessOptions = {}): ClientProcess {
    const [program, ...args] = command;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args,
        stdin: options.stdin ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
        // Python block-buffers stdout into a pipe; the checker reads it as a terminal would.
        env: { PYTHONUNBUFFERED: "1" },
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new UsageError(`Cannot start the client: "${program}" was not found.`);
      }
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        throw new UsageError(
          `Cannot start the client "${program}": permission denied (run the checker with --allow-run).`,
        );
      }
      throw new UsageError(
        `Cannot start the client "${program}": ${error instanceof Error ? error.message : error}.`,
      );
    }
    return new ClientProcess(command, child, options.stdin ?? false);
  }

  /** The exit status, once it has exited. */
  get status(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Everything written to stdout so far, decoded leniently. */
  stdoutText(): string {
    return decoder.decode(concat(this.#stdout, this.#stdoutLength));
  }

  /** The last `lines` lines of stderr. */
  stderrTail(lines = 6): string {
    const text = decoder.decode(concat(this.#stderr)).trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  }

  /** "exited with status 1" / "was killed by SIGSEGV" / "is still running". */
  describeExit(): string {
    const status = this.#status;
    if (status === undefined) return "is still running";
    if (status.signal) return `was killed by ${status.signal}`;
    return `exited with status ${status.code}`;
  }

  /** Writes to the child's stdin; false if it is gone. */
  async type(text: string): Promise<boolean> {
    if (this.#stdin === undefined) return false;
    try {
      await this.#stdin.write(new TextEncoder().encode(text));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the child's stdin, its end of input. */
  async closeStdin(): Promise<void> {
    const stdin = this.#stdin;
    this.#stdin = undefined;
    if (stdin) await before(stdin.close().catch(() => {}), Date.now() + 500);
  }

  /** Waits until `done(stdout)` holds, the process exits, or the deadline; returns `done`. */
  async waitForOutput(done: (stdout: string) => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      if (done(this.stdoutText())) return true;
      if (this.#status !== undefined) return done(this.stdoutText());
      const changed = new Promise<void>((resolve) => this.#waiters.push(resolve));
      if ((await before(changed, deadline)).timedOut) return false;
    }
  }

  /** Stops the child (SIGTERM, then SIGKILL) and releases its pipes. */
  async stop(graceMs = 1000): Promise<void> {
    await this.closeStdin();
    if ((await before(this.exited, Date.now() + 50)).timedOut) {
      this.#kill("SIGTERM");
      if ((await before(this.exited, Date.now() + graceMs)).timedOut) {
        this.#kill("SIGKILL");
        await before(this.exited, Date.now() + graceMs);
      }
    }
    // Grandchildren may hold the pipes open: collect what is there, then let go.
    await before(Promise.all(this.#pumps), Date.now() + 200);
    for (const reader of this.#readers) await reader.cancel().catch(() => {});
    await Promise.all(this.#pumps);
  }

  #kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // It exited in the meantime.
    }
  }

  async #pump(
    stream: ReadableStream<Uint8Array>,
    into: Uint8Array[],
    isStdout: boolean,
  ): Promise<void> {
    const reader = stream.getReader();
    this.#readers.push(reader);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        into.push(value);
        if (isStdout) this.#stdoutLength += value.length;
        this.#notify();
      }
    } catch {
      // Cancelled at stop().
    } finally {
      reader.releaseLock();
    }
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

function concat(chunks: Uint8Array[], length?: number): Uint8Array {
  const out = new Uint8Array(length ?? chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
