/**
 * `deno task install`: installs the programs as global commands (`wirechat-server`,
 * `wirechat-display`, `wirechat-keyboard`, `wirechat-chat`, `wirechat-conformance`) with
 * `deno install --global`, each with the permission flags of its `deno task` entry, so
 * deno.json stays the one place they are written. The commands run this checkout's code with
 * the `deno` on PATH: keep the checkout, and `git pull` updates them. `--uninstall` removes them.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runTool } from "../lib/cli/args.ts";
import { UsageError } from "../lib/cli/user_errors.ts";
// The commands are the programs the release ships as executables.
import { parseRunTask, PROGRAMS } from "./compile.ts";

const USAGE = `Usage: deno task install [options]

Installs wirechat-server, wirechat-display, wirechat-keyboard, wirechat-chat,
wirechat-history and wirechat-conformance as commands, with the permissions of their deno
tasks.

Options:
  --root DIR     install into DIR/bin (default: Deno's, $DENO_INSTALL_ROOT or ~/.deno)
  --uninstall    remove the commands instead
  --help         show this help
  --version      show the version`;

/** The `deno install` (or `uninstall`) arguments for each command the tasks define. */
export async function installArgs(
  options: { root?: string; uninstall?: boolean },
): Promise<{ command: string; argv: string[] }[]> {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)))
    .tasks;
  const root = options.root ? ["--root", options.root] : [];
  const out: { command: string; argv: string[] }[] = [];
  for (const name of PROGRAMS) {
    const task = tasks[name];
    if (!task) continue;
    const command = `wirechat-${name}`;
    if (options.uninstall) {
      out.push({ command, argv: ["uninstall", "--global", ...root, command] });
      continue;
    }
    const { flags, entry } = parseRunTask(typeof task === "string" ? task : task.command);
    const script = new URL(`../${entry}`, import.meta.url).href;
    out.push({
      command,
      argv: ["install", "--global", "--force", ...root, "--name", command, ...flags, script],
    });
  }
  return out;
}

/** Runs the install; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: "string" },
      uninstall: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.root === "") throw new UsageError("--root needs a directory.");
  const commands = await installArgs(values);
  for (const { command, argv } of commands) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: argv,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      const why = new TextDecoder().decode(stderr).trim().split("\n").at(-1) ?? "";
      throw new Error(`deno ${argv[0]} failed for ${command}: ${why}`);
    }
  }
  const bin = values.root ? `${values.root}/bin` : "Deno's bin directory (~/.deno/bin)";
  if (values.uninstall) {
    console.log(`Removed the wirechat commands from ${bin}.`);
    return 0;
  }
  console.log(
    `Installed ${commands.map((c) => c.command).join(", ")} into ${bin}.\n` +
      `They run this checkout (${new URL("..", import.meta.url).pathname}) with the deno on ` +
      "your PATH; add the directory to PATH if it is not there.",
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
