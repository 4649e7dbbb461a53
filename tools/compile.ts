/**
 * `deno task compile`: builds the standalone executables with `deno compile`, each with the
 * same permission flags as its `deno task` entry in deno.json, which stays the one place
 * where a program's permissions are written down.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runTool } from "../lib/cli/args.ts";

/** The programs shipped as executables, by their deno.json task name. */
export const PROGRAMS = ["server", "display", "keyboard", "conformance"] as const;

/** Every target `deno compile` offers for the three systems. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * The environment, permission flags and entry file of a `deno run` task command, which may
 * start with `NAME=value` settings (the server's allocator setting, say).
 */
export function parseRunTask(
  command: string,
): { env: Record<string, string>; flags: string[]; entry: string } {
  const words = command.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] ?? "")) {
    const [name, ...value] = words.shift()!.split("=");
    env[name] = value.join("=");
  }
  if (words[0] !== "deno" || words[1] !== "run") throw new Error(`not a deno run task: ${command}`);
  const flags = words.slice(2).filter((w) => w.startsWith("--"));
  const entry = words.slice(2).find((w) => !w.startsWith("--"));
  if (!entry) throw new Error(`no entry file in task: ${command}`);
  return { env, flags, entry };
}

function hostTarget(): string {
  const { arch, os } = Deno.build;
  if (os === "windows") return `${arch}-pc-windows-msvc`;
  if (os === "darwin") return `${arch}-apple-darwin`;
  return `${arch}-unknown-linux-gnu`;
}

/** Builds every program for each target; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { target: { type: "string", multiple: true }, out: { type: "string" } },
  });
  // A DENORT_BIN runtime only fits the machine it was built for.
  const targets = values.target ?? (Deno.env.get("DENORT_BIN") ? [hostTarget()] : [...TARGETS]);
  const out = values.out ?? "dist";
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks;
  for (const target of targets) {
    for (const program of PROGRAMS) {
      const task = tasks[program];
      if (!task) continue;
      const { flags, entry } = parseRunTask(typeof task === "string" ? task : task.command);
      const suffix = target.includes("windows") ? ".exe" : "";
      const output = `${out}/${target}/wirechat-${program}${suffix}`;
      console.error(`compiling ${output}`);
      const { code } = await new Deno.Command(Deno.execPath(), {
        args: ["compile", ...flags, "--target", target, "--output", output, entry],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (code !== 0) {
        console.error(
          `deno compile failed for ${program} on ${target}. It needs Deno's runtime image for ` +
            "that target: build on a machine that can download it, or set DENORT_BIN to a " +
            "denort binary for this machine.",
        );
        return 1;
      }
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
