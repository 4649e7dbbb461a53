/**
 * End to end for a newcomer following the README (issue 15): the documented `deno task`
 * commands obey ordinary process control (kill PID, Ctrl-C at a real terminal, exit 0), a
 * first run downloads nothing, and the tools that start Deno work where none is on PATH.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT, ServerProcess } from "./helpers/processes.ts";
import { taskFor } from "../tools/harness/deno_tasks.ts";
import { bounded, within } from "../tools/harness/wait.ts";

const DENO = Deno.execPath();
const decoder = new TextDecoder();

/** Whether tmux runs here (the terminal tests need it; .ci/run installs it). */
function tmuxRuns(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const hasTmux = Deno.build.os !== "windows" && tmuxRuns();

/** The PIDs of `pid`'s children, from `ps` (Deno asks for --allow-all to read /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const output = await new Deno.Command("ps", {
    args: ["-o", "pid=", "--ppid", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  return decoder.decode(output.stdout).split("\n").filter((l) => l.trim() !== "").map(Number);
}

/** Whether `pid` is still running (and not a zombie waiting for its parent). */
async function alive(pid: number): Promise<boolean> {
  const output = await new Deno.Command("ps", {
    args: ["-o", "stat=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const stat = decoder.decode(output.stdout).trim();
  return stat !== "" && !stat.startsWith("Z");
}

/** Reads a child's stderr until `pattern` shows up; the rest keeps draining into `text`. */
class Stderr {
  text = "";
  readonly done: Promise<void>;
  #wake = () => {};

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
        this.#wake();
      }
      this.#wake();
    })();
  }

  async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    for (;;) {
      const match = pattern.exec(this.text);
      if (match) return match;
      await within(
        20_000,
        `${pattern} on stderr (so far: ${this.text})`,
        new Promise<void>((resolve) => this.#wake = resolve),
      );
    }
  }
}

Deno.test({
  name: "kill PID of `deno task server` stops the server itself: exit status 0, port free",
  ignore: Deno.build.os !== "linux",
  fn: bounded(60_000, async () => {
    const task = new Deno.Command(DENO, {
      args: ["task", "-q", "server", "--host", "127.0.0.1", "--port", "0"],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Stderr(task.stderr);
    let servers: number[] = [];
    try {
      const [, port] = await stderr.waitFor(/listening on 127\.0\.0\.1:(\d+)\n/);
      servers = await childrenOf(task.pid);
      assert.equal(servers.length, 1, "deno task runs the server as its one child");
      // What `deno task server & ... kill $!` does.
      task.kill("SIGTERM");
      const status = await within(10_000, "deno task to exit", task.status);
      assert.equal(status.code, 0, stderr.text);
      assert.match(stderr.text, / info {2}stopped\n/);
      assert.ok(!(await alive(servers[0])), `the server (pid ${servers[0]}) is still running`);
      await assert.rejects(
        Deno.connect({ hostname: "127.0.0.1", port: Number(port) }),
        Deno.errors.ConnectionRefused,
      );
    } finally {
      // On a failure, the server may outlive deno task, holding the stderr pipe: it goes too.
      for (const pid of [task.pid, ...servers]) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Exited, as it should.
        }
      }
      await task.status;
      await stderr.done;
    }
  }),
});

/** A tmux server on a private socket: one window running bash, typed into like a person. */
class Terminal implements AsyncDisposable {
  #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(): Promise<Terminal> {
    const dir = await Deno.makeTempDir({ prefix: "wirechat_tmux_" });
    const terminal = new Terminal(dir);
    await terminal.#tmux(
      "new-session",
      "-d",
      "-x",
      "200",
      "-y",
      "50",
      "-c",
      REPO_ROOT,
      "env",
      "NO_COLOR=1",
      "PS1=$ ",
      "bash",
      "--norc",
      "--noprofile",
    );
    return terminal;
  }

  async #tmux(...args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", {
      args: ["-S", join(this.#dir, "socket"), ...args],
      env: { TERM: "xterm-256color" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) throw new Error(`tmux ${args[0]}: ${decoder.decode(output.stderr)}`);
    return decoder.decode(output.stdout);
  }

  /** Types `line` and Enter. */
  async type(line: string): Promise<void> {
    await this.#tmux("send-keys", "-t", "0", "-l", line);
    await this.#tmux("send-keys", "-t", "0", "Enter");
  }

  async ctrlC(): Promise<void> {
    await this.#tmux("send-keys", "-t", "0", "C-c");
  }

  /** What the window shows, lines joined (tmux wraps long lines at the window's width). */
  async screen(): Promise<string> {
    return await this.#tmux("capture-pane", "-p", "-J", "-t", "0", "-S", "-200");
  }

  /** Waits until the screen matches `pattern`. */
  async waitFor(pattern: RegExp, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const screen = await this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`no ${pattern} on the terminal:\n${screen}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#tmux("kill-server").catch(() => {});
    await Deno.remove(this.#dir, { recursive: true });
  }
}

Deno.test({
  name: "Ctrl-C at a terminal ends `deno task` server, display and keyboard with exit status 0",
  ignore: !hasTmux,
  fn: bounded(120_000, async () => {
    await using terminal = await Terminal.open();
    await terminal.type(
      `${DENO} task -q server --host 127.0.0.1 --port 0; echo "server exit=$?"`,
    );
    const started = await terminal.waitFor(/full server listening on 127\.0\.0\.1:\d+/);
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(started)![1];
    await terminal.ctrlC();
    await terminal.waitFor(/server exit=0\n/);

    await using server = await ServerProcess.start([]);
    const at = `127.0.0.1:${server.port}`;
    await terminal.type(
      `${DENO} task -q display --host 127.0.0.1 --port ${server.port}; echo "display exit=$?"`,
    );
    await terminal.waitFor(
      new RegExp(
        `Connected to ${at.replaceAll(".", "\\.")}; waiting for messages \\(Ctrl-C quits\\)\\.`,
      ),
    );
    await terminal.ctrlC();
    await terminal.waitFor(/display exit=0\n/);

    await terminal.type(
      `${DENO} task -q keyboard --host 127.0.0.1 --port ${server.port} --user Jason; ` +
        `echo "keyboard exit=$?"`,
    );
    await terminal.waitFor(/as Jason\. Type a message and press Enter/);
    await terminal.ctrlC();
    const screen = await terminal.waitFor(/keyboard exit=0\n/);
    assert.doesNotMatch(screen, /exit=130|Uncaught|Stack backtrace/);
    assert.notEqual(port, String(server.port));
  }),
});

Deno.test(
  "a display whose stderr is not a terminal says nothing there, and prints only message lines",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    const display = new Deno.Command(DENO, {
      args: ["task", "-q", "display", "--host", "127.0.0.1", "--port", String(server.port)],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Stderr(display.stderr);
    const stdout = new Stderr(display.stdout);
    try {
      await server.log.waitFor(/ identified as display\b/);
      display.kill("SIGTERM");
      const status = await within(10_000, "the display to exit", display.status);
      assert.equal(status.code, 0);
    } finally {
      try {
        display.kill("SIGKILL");
      } catch {
        // Exited.
      }
      await display.status;
      await Promise.all([stderr.done, stdout.done]);
    }
    assert.equal(stderr.text, "");
    assert.equal(stdout.text, "");
  }),
);

Deno.test(
  "a first run with an empty DENO_DIR downloads nothing: display, keyboard, server, certs",
  bounded(120_000, async () => {
    // `deno task` fetches every npm package of deno.json's imports and deno.lock before any
    // task (Deno's design): they must stay empty (a tool that needs a package keeps it in a
    // lock file of its own, as lint-workflows does), or at least list nothing unexpected.
    const imports: Record<string, string> =
      JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))).imports ?? {};
    const listed = Object.values(imports).map((specifier) =>
      specifier.replace(/^npm:/, "").replace(/@[^@/]+$/, "")
    );
    const unlisted = (line: string) =>
      /^Download /.test(line) && !listed.some((name) => line.includes(`/${name}/-/`));
    const dir = await Deno.makeTempDir({ prefix: "wirechat_first_run_" });
    try {
      const denoDir = join(dir, "deno_dir");
      for (
        const args of [
          ["display", "--help"],
          ["keyboard", "--help"],
          ["server", "--help"],
          ["certs", "--out", join(dir, "certs")],
        ]
      ) {
        // Not -q: the Task line and any Download line would show on stderr.
        const output = await new Deno.Command(DENO, {
          args: ["task", ...args],
          cwd: REPO_ROOT,
          env: { DENO_DIR: denoDir, NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = decoder.decode(output.stderr);
        assert.equal(output.code, 0, stderr);
        const lines = stderr.trim().split("\n");
        assert.deepEqual(lines.filter(unlisted), [], args.join(" "));
        assert.doesNotMatch(stderr, /jsr:|peculiar|asn1/, args.join(" "));
        assert.equal(lines.filter((line) => !/^Download /.test(line)).length, 1, stderr);
        assert.match(lines.at(-1)!, /^Task \S+ /, "the Task line, and nothing of the program");
      }
      if (listed.length === 0) {
        const npm = await Array.fromAsync(Deno.readDir(join(denoDir, "npm"))).catch(() => []);
        assert.deepEqual(npm.map((entry) => entry.name), [], "nothing in DENO_DIR/npm");
      }
      const { code } = await new Deno.Command(DENO, {
        args: ["eval", `Deno.statSync(${JSON.stringify(join(dir, "certs", "server.crt"))})`],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(code, 0, "certs wrote server.crt");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }),
);

Deno.test({
  name: "`deno task soak` and `fuzz-server` may run this Deno where no deno is on PATH",
  ignore: Deno.build.os === "windows",
  fn: bounded(60_000, async () => {
    // The usual system directories (the test may not read PATH), less any that hold a deno.
    const system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
    const path = system.filter((dir) => {
      try {
        Deno.statSync(join(dir, "deno"));
        return false;
      } catch {
        return true;
      }
    }).join(":");
    const dir = await Deno.makeTempDir({ prefix: "wirechat_no_deno_" });
    try {
      // What the tools ask before they start the server (tools/harness/deno_tasks.ts).
      const probe = join(dir, "probe.ts");
      await Deno.writeTextFile(
        probe,
        'console.log(Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state);',
      );
      for (
        const [task, script] of [["soak", "tools/soak/main.ts"], [
          "fuzz-server",
          "tools/fuzz/server.ts",
        ]]
      ) {
        const help = await new Deno.Command(DENO, {
          args: ["task", task, "--help"],
          cwd: REPO_ROOT,
          env: { PATH: path, NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const said = decoder.decode(help.stderr);
        assert.equal(help.code, 0, said);
        assert.doesNotMatch(said, /Failed to resolve|cannot find binary path/, task);
        const flags = taskFor(script)?.flags ?? [];
        assert.ok(flags.some((flag) => flag.startsWith(`--allow-run=${DENO},`)), flags.join(" "));
        const granted = await new Deno.Command(DENO, {
          args: ["run", ...flags, probe],
          cwd: REPO_ROOT,
          env: { PATH: path, NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(decoder.decode(granted.stdout), "granted\n", decoder.decode(granted.stderr));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }),
});
