/**
 * The real programs as child processes, for the end-to-end tests: the server (waited on
 * until it logs where it listens), displays (waited on until the server saw them identify),
 * keyboards with piped stdin, and one-shot runs. Every handle is `await using`-able: disposal
 * stops the process by its own PID (SIGTERM, then SIGKILL after a bound), awaits its exit and
 * drains its pipes, so the test sanitizers stay on.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CertificateSet, generateCertificates } from "../../tools/certificates.ts";
import { parseRunTask } from "../../tools/compile.ts";
import { WAIT_MS, Watch, within } from "./wait.ts";

/** The repository, where the programs are run from. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** What a script's `deno task` entry runs it with: deno.json stays the one place for it. */
interface TaskSetting {
  flags: readonly string[];
  env: Record<string, string>;
}

/** The `deno run` tasks of deno.json, by the file they run. */
const TASKS: ReadonlyMap<string, TaskSetting> = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync(join(REPO_ROOT, "deno.json"))).tasks;
  const byEntry = new Map<string, TaskSetting>();
  for (const task of Object.values(tasks) as (string | { command: string })[]) {
    const command = typeof task === "string" ? task : task.command;
    try {
      const { env, flags, entry } = parseRunTask(command);
      byEntry.set(entry, { env, flags });
    } catch {
      // Not a `deno run` task (test, check, ...).
    }
  }
  return byEntry;
})();

/** The permissions of the programs' `deno task` entries (display, keyboard, server). */
export const PROGRAM_PERMISSIONS: readonly string[] = TASKS.get("main_display.ts")?.flags ?? [];
/** How long a process gets to end on SIGTERM before it is killed. */
const STOP_MS = 3_000;
/** How many trailing lines a failure message shows. */
const SHOWN_LINES = 40;

/** Escapes `text` for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/** A line cut to a length a failure message can show. */
function shorten(line: string): string {
  return line.length > 200 ? `${line.slice(0, 200)}... (${line.length} characters)` : line;
}

/** Lines of text arriving on a pipe, kept for assertions and waited on as they come. */
export class Lines {
  /** Every complete line so far (and, once the pipe ends, an unterminated last one). */
  readonly all: string[] = [];
  /** Resolves when the pipe has ended and been read to the end. */
  readonly done: Promise<void>;
  #chunks: Uint8Array[] = [];
  #partial = "";
  #watch: Watch;

  constructor(label: string, stream: ReadableStream<Uint8Array>) {
    this.#watch = new Watch(label, () => this.all.slice(-SHOWN_LINES).map(shorten).join("\n"));
    this.done = this.#pump(stream);
  }

  /** Every byte received, exactly as it came. */
  get bytes(): Uint8Array {
    const out = new Uint8Array(this.#chunks.reduce((sum, c) => sum + c.length, 0));
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /** Everything received, as text. */
  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }

  /** The lines matching `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.all.filter((line) => pattern.test(line));
  }

  /** The first line at index `from` or later that matches `pattern`, once it arrives. */
  async waitFor(pattern: RegExp, options: { from?: number; ms?: number } = {}): Promise<string> {
    const from = options.from ?? 0;
    const find = () => this.all.findIndex((line, i) => i >= from && pattern.test(line));
    await this.#watch.until(() => find() >= 0, `a line matching ${pattern}`, options.ms);
    return this.all[find()];
  }

  /** The first `count` lines matching `pattern`, once that many have arrived. */
  async waitForCount(pattern: RegExp, count: number, ms?: number): Promise<string[]> {
    await this.#watch.until(
      () => this.matching(pattern).length >= count,
      `${count} lines matching ${pattern}`,
      ms,
    );
    return this.matching(pattern).slice(0, count);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.#chunks.push(chunk);
        this.#add(decoder.decode(chunk, { stream: true }));
      }
      this.#add(decoder.decode());
    } finally {
      if (this.#partial !== "") this.all.push(this.#partial);
      this.#partial = "";
      this.#watch.end("the pipe ended (the process exited)");
    }
  }

  #add(text: string): void {
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    if (parts.length === 0) return;
    this.all.push(...parts);
    this.#watch.changed();
  }
}

/** How a program ended and everything it printed. */
export interface ProgramResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode Program}. */
export interface ProgramOptions {
  /** Pipe stdin so the test can write to it; otherwise stdin is /dev/null. */
  stdin?: boolean;
  /**
   * `deno run` permission flags; default those of the script's `deno task` entry, or
   * {@linkcode PROGRAM_PERMISSIONS} for a script that has none.
   */
  permissions?: readonly string[];
}

/** One of the programs (or any script of the repository) running as a child process. */
export class Program implements AsyncDisposable {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Lines;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited = false;

  constructor(script: string, args: string[], options: ProgramOptions = {}) {
    this.name = [script, ...args].join(" ");
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...(options.permissions ?? TASKS.get(script)?.flags ?? PROGRAM_PERMISSIONS),
        script,
        ...args,
      ],
      cwd: REPO_ROOT,
      env: { ...TASKS.get(script)?.env, NO_COLOR: "1" },
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = options.stdin ? this.child.stdin.getWriter() : undefined;
    this.stdout = new Lines(`stdout of ${this.name}`, this.child.stdout);
    this.stderr = new Lines(`stderr of ${this.name}`, this.child.stderr);
    this.status = this.child.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  get pid(): number {
    return this.child.pid;
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

  /** Sends `signal` to this process only, unless it has already exited. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#exited) return;
    try {
      this.child.kill(signal);
    } catch {
      // It exited between the check and the kill.
    }
  }

  /** The exit status, once the program has exited by itself within `ms`. */
  async exited(ms = WAIT_MS): Promise<Deno.CommandStatus> {
    try {
      return await within(ms, `${this.name} to exit`, this.status);
    } catch (error) {
      throw new Error(
        `${
          (error as Error).message
        }\nstdout so far:\n${this.stdout.text}\nstderr so far:\n${this.stderr.text}`,
      );
    }
  }

  /** Waits for the program to exit by itself, then returns its status and output. */
  async result(ms = WAIT_MS): Promise<ProgramResult> {
    const { code, signal } = await this.exited(ms);
    await Promise.all([this.stdout.done, this.stderr.done]);
    return { code, signal, stdout: this.stdout.text, stderr: this.stderr.text };
  }

  /** SIGTERM, then SIGKILL if it is still running after `ms`; resolves with the exit status. */
  async stop(ms = STOP_MS): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill("SIGKILL");
        resolve();
      }, ms);
    });
    try {
      await Promise.race([this.status, killed]);
      return await this.status;
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    await this.stop();
    await Promise.all([this.stdout.done, this.stderr.done]);
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

/** One listener of a running server, as its "listening on" line announced it. */
export interface Endpoint {
  label: string;
  port: number;
  tls: boolean;
}

/** Options for {@linkcode Server.start}. */
export interface ServerOptions extends ProgramOptions {
  /** `--host`; default 127.0.0.1. */
  host?: string;
  /** `--port`; default 0 (a free one). null leaves it out (for `--reference`). */
  port?: number | null;
  /** How many "listening on" lines to wait for; default 1 (4 for `--reference`). */
  listeners?: number;
}

const LISTENING = / info\s+(.+?) listening on (\S+):(\d+)( \(TLS\))?$/;

/** A running main_server.ts, with its log lines on `log`. */
export class Server implements AsyncDisposable {
  readonly program: Program;
  readonly endpoints: Endpoint[];

  private constructor(program: Program, endpoints: Endpoint[]) {
    this.program = program;
    this.endpoints = endpoints;
  }

  /** Starts the server and resolves once every listener has logged its address. */
  static async start(args: string[], options: ServerOptions = {}): Promise<Server> {
    const port = options.port === undefined ? 0 : options.port;
    const program = new Program("main_server.ts", [
      "--host",
      options.host ?? "127.0.0.1",
      ...(port === null ? [] : ["--port", String(port)]),
      ...args,
    ], options);
    try {
      const count = options.listeners ?? (args.includes("--reference") ? 4 : 1);
      const lines = await program.stderr.waitForCount(/ listening on /, count);
      const endpoints = lines.map((line) => {
        const [, label, , port, tls] = LISTENING.exec(line) ?? [];
        if (!label) throw new Error(`cannot parse the server's line: ${line}`);
        return { label, port: Number(port), tls: tls !== undefined };
      });
      return new Server(program, endpoints);
    } catch (error) {
      await program[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** The server's stderr: its log. */
  get log(): Lines {
    return this.program.stderr;
  }

  /** The port of the first (or only) listener. */
  get port(): number {
    return this.endpoints[0].port;
  }

  /** The port of the listener whose label is exactly `label`, e.g. "full TLS server". */
  portOf(label: string): number {
    const endpoint = this.endpoints.find((e) => e.label === label);
    if (!endpoint) {
      throw new Error(`no listener "${label}" among ${this.endpoints.map((e) => e.label)}`);
    }
    return endpoint.port;
  }

  /** The log lines that name `peer` (e.g. "127.0.0.1:40312"). */
  linesAbout(peer: string): string[] {
    return this.log.matching(new RegExp(` ${escapeRegExp(peer)} `));
  }

  /** Resolves once the server has logged that `peer` identified as `role`. */
  async sawIdentify(peer: string, role: "display" | "keyboard"): Promise<void> {
    await this.log.waitFor(new RegExp(` ${escapeRegExp(peer)} identified as ${role}\\b`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.program[Symbol.asyncDispose]();
  }
}

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
export async function startDisplays(server: Server, argLists: string[][]): Promise<Program[]> {
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
export async function startDisplay(server: Server, args: string[]): Promise<Program> {
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

/**
 * A fresh throwaway root CA and server certificate, written to a temporary directory and
 * removed on dispose: the one certificate writer of the tests.
 */
export class CertificateDir implements AsyncDisposable {
  readonly dir: string;
  /** The certificates and keys, PEM. */
  readonly set: CertificateSet;

  private constructor(dir: string, set: CertificateSet) {
    this.dir = dir;
    this.set = set;
  }

  /** root_ca.crt, server.crt and server.key, as `deno task certs` names them. */
  static async create(): Promise<CertificateDir> {
    const dir = await Deno.makeTempDir({ prefix: "wirechat_e2e_certs_" });
    const certs = new CertificateDir(dir, await generateCertificates());
    await Deno.writeTextFile(certs.caFile, certs.set.caCert);
    await certs.install(certs.set);
    return certs;
  }

  /** The root CA certificate's PEM text, for in-process TLS clients. */
  get caCert(): string {
    return this.set.caCert;
  }

  /** Writes `set`'s server certificate (and key, unless only the certificate is asked for). */
  async install(set: CertificateSet, parts: "both" | "cert" = "both"): Promise<void> {
    await Deno.writeTextFile(this.certFile, set.serverCert);
    if (parts === "both") await Deno.writeTextFile(this.keyFile, set.serverKey, { mode: 0o600 });
  }

  get caFile(): string {
    return join(this.dir, "root_ca.crt");
  }
  get certFile(): string {
    return join(this.dir, "server.crt");
  }
  get keyFile(): string {
    return join(this.dir, "server.key");
  }
  /** The server options that serve TLS with this set. */
  get serverArgs(): string[] {
    return ["--cert", this.certFile, "--key", this.keyFile];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
