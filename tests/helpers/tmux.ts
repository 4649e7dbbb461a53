/**
 * A program in a real terminal for the end-to-end tests: tmux on a private socket per test
 * (`/tmp/chat/sock-<pid>-<n>`), keys typed with send-keys, the screen read with capture-pane,
 * every wait a poll with a deadline. The pane runs a small shell script that records
 * `stty -a` before and after the program and prints its exit status, so tests can check that
 * the terminal was put back. Disposal kills this tmux server (and only it) and removes its
 * files.
 *
 * @module
 */

import { join } from "node:path";
import { programCommand } from "../../tools/harness/program.ts";
import { REPO_ROOT, taskFor } from "../../tools/harness/deno_tasks.ts";
import { WAIT_MS } from "../../tools/harness/wait.ts";

const SOCKET_DIR = "/tmp/chat";
/** How often a wait looks at the screen again. */
const POLL_MS = 50;
let sockets = 0;

/** Quotes `word` for sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Options for {@linkcode TmuxProgram.start}. */
export interface TmuxOptions {
  columns?: number;
  rows?: number;
  /** Extra environment for the program, e.g. NO_COLOR. */
  env?: Record<string, string>;
}

/** What the shell in the pane printed after the program ended. */
const EXITED = /^program exited with (\d+)$/m;

/** One repository script running in its own tmux server. */
export class TmuxProgram implements AsyncDisposable {
  readonly socket: string;
  readonly dir: string;
  readonly name: string;
  #killed = false;

  private constructor(socket: string, dir: string, name: string) {
    this.socket = socket;
    this.dir = dir;
    this.name = name;
  }

  /** Starts `script` with `args` (and its deno task's permissions) in a fresh tmux server. */
  static async start(
    script: string,
    args: string[],
    options: TmuxOptions = {},
  ): Promise<TmuxProgram> {
    await Deno.mkdir(SOCKET_DIR, { recursive: true });
    const socket = join(SOCKET_DIR, `sock-${Deno.pid}-${++sockets}`);
    const dir = await Deno.makeTempDir({ prefix: "wirechat_tmux_" });
    const environment = { ...taskFor(script)?.env, ...options.env };
    const command = [
      // A NO_COLOR of the test run's own (CI sets it for readable logs) must not reach a
      // program the test expects colours from.
      ...("NO_COLOR" in environment ? [] : ["env", "-u", "NO_COLOR"]),
      ...Object.entries(environment).map(([k, v]) => `${k}=${shellQuote(v)}`),
      ...programCommand(script, args).map(shellQuote),
    ].join(" ");
    const before = shellQuote(join(dir, "stty_before"));
    const after = shellQuote(join(dir, "stty_after"));
    const pid = shellQuote(join(dir, "shell_pid"));
    const shell = `cd ${shellQuote(REPO_ROOT)}; echo $$ > ${pid}; stty -a > ${before}; ` +
      `${command}; echo "program exited with $?"; stty -a > ${after}; exec sleep 600`;
    const program = new TmuxProgram(socket, dir, [script, ...args].join(" "));
    try {
      await program.tmux(
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        String(options.columns ?? 80),
        "-y",
        String(options.rows ?? 24),
        `sh -c ${shellQuote(shell)}`,
      );
    } catch (error) {
      await program[Symbol.asyncDispose]();
      throw error;
    }
    return program;
  }

  /** Runs a tmux command against this server; returns its stdout. */
  async tmux(...args: string[]): Promise<string> {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("tmux", {
        args: ["-S", this.socket, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new Error("tmux is not installed: apt-get install tmux (.ci/run does it)");
    }
    const { code, stdout, stderr } = output;
    const decoder = new TextDecoder();
    if (code !== 0) {
      throw new Error(`tmux ${args.join(" ")} failed: ${decoder.decode(stderr).trim()}`);
    }
    return decoder.decode(stdout);
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.tmux("send-keys", "-t", "t", "-l", text);
  }

  /** Presses keys by tmux's names: Enter, Left, C-a, M-b, PageUp, S-Up, ... */
  async press(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** Pastes `text` as a terminal paste would (bracketed, if the program asked for it). */
  async paste(text: string): Promise<void> {
    const file = join(this.dir, "paste");
    await Deno.writeTextFile(file, text);
    await this.tmux("load-buffer", "-b", "p", file);
    await this.tmux("paste-buffer", "-p", "-d", "-b", "p", "-t", "t");
  }

  /** The screen's rows as text (colours left out). */
  async screen(): Promise<string[]> {
    const text = await this.tmux("capture-pane", "-p", "-t", "t");
    return text.replace(/\n$/, "").split("\n");
  }

  /** The screen with its SGR attributes, as capture-pane -e writes them. */
  async screenWithColors(): Promise<string> {
    return await this.tmux("capture-pane", "-p", "-e", "-t", "t");
  }

  /** A tmux format about the pane, e.g. `#{alternate_on}` or `#{cursor_x}`. */
  async format(format: string): Promise<string> {
    return (await this.tmux("display-message", "-p", "-t", "t", format)).trim();
  }

  /** Resizes the terminal. */
  async resize(columns: number, rows: number): Promise<void> {
    await this.tmux("resize-window", "-t", "t", "-x", String(columns), "-y", String(rows));
  }

  /** Polls the screen until `check` holds, failing after `ms` with the last screen seen. */
  async waitFor(
    what: string,
    check: (lines: string[]) => boolean,
    ms = WAIT_MS,
  ): Promise<string[]> {
    const deadline = Date.now() + ms;
    let lines: string[] = [];
    for (;;) {
      lines = await this.screen();
      if (check(lines)) return lines;
      if (Date.now() > deadline) {
        throw new Error(
          `${this.name}: waiting for ${what}: not seen within ${ms} ms. Screen:\n${
            lines.join("\n")
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Waits for a row matching `pattern`; returns it. */
  async waitForLine(pattern: RegExp, ms?: number): Promise<string> {
    const lines = await this.waitFor(
      `a row matching ${pattern}`,
      (l) => l.some((x) => pattern.test(x)),
      ms,
    );
    return lines.find((line) => pattern.test(line))!;
  }

  /** Waits for the program to end; its exit status as the pane's shell printed it. */
  async exitCode(ms?: number): Promise<number> {
    const lines = await this.waitFor("the program to exit", (l) => EXITED.test(l.join("\n")), ms);
    return Number(EXITED.exec(lines.join("\n"))![1]);
  }

  /** `stty -a` in the pane before the program started and after it ended. */
  async stty(): Promise<{ before: string; after: string }> {
    const read = (name: string) => Deno.readTextFile(join(this.dir, name));
    let after = "";
    const deadline = Date.now() + WAIT_MS;
    while ((after = await read("stty_after").catch(() => "")) === "" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return { before: await read("stty_before"), after };
  }

  /** The PID of the program (the pane's shell's child). */
  async programPid(): Promise<number> {
    const shell = (await Deno.readTextFile(join(this.dir, "shell_pid"))).trim();
    const { stdout } = await new Deno.Command("pgrep", { args: ["-P", shell], stdout: "piped" })
      .output();
    const pid = Number(new TextDecoder().decode(stdout).trim().split("\n")[0]);
    if (!(pid > 0)) throw new Error(`no child of the pane's shell ${shell}`);
    return pid;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#killed) {
      this.#killed = true;
      await this.tmux("kill-server").catch(() => {});
    }
    await Deno.remove(this.socket).catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
