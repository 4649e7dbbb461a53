/**
 * `deno task compile`: builds the standalone executables with `deno compile`, each with the
 * same permission flags as its `deno task` entry in deno.json, which stays the one place
 * where a program's permissions are written down.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runTool } from "../lib/cli/args.ts";
import { VERSION } from "../lib/cli/version.ts";
import { type ArchiveEntry, sha256Sums, tarGz, zip } from "./release_archive.ts";

/** The programs shipped as executables, by their deno.json task name. */
export const PROGRAMS = ["server", "display", "keyboard", "chat", "conformance"] as const;

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
  const archives: string[] = [];
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
    const archive = await packageTarget(target, { out });
    console.error(`packed ${out}/${archive}`);
    archives.push(archive);
  }
  await writeChecksums(out, archives);
  console.error(`checksums in ${out}/SHA256SUMS`);
  return 0;
}

/** Options for {@linkcode packageTarget}. */
export interface PackageOptions {
  /** Where `<target>/wirechat-*` were built, and the archive goes. */
  out: string;
  /** Default deno.json's version. */
  version?: string;
}

/**
 * Packs the executables built in `<out>/<target>/` into `<out>/wirechat-<version>-<target>`
 * `.tar.gz` (`.zip` for Windows), under a folder of that name, with a README for classmates and
 * the license. Returns the archive's file name.
 */
export async function packageTarget(target: string, options: PackageOptions): Promise<string> {
  const version = options.version ?? VERSION;
  const folder = `wirechat-${version}-${target}`;
  const windows = target.includes("windows");
  const entries: ArchiveEntry[] = [];
  const built = [];
  for await (const entry of Deno.readDir(`${options.out}/${target}`)) {
    if (entry.isFile && entry.name.startsWith("wirechat-")) built.push(entry.name);
  }
  if (built.length === 0) throw new Error(`nothing was built in ${options.out}/${target}`);
  for (const name of built.sort()) {
    const bytes = await Deno.readFile(`${options.out}/${target}/${name}`);
    entries.push({ path: `${folder}/${name}`, bytes, mode: 0o755 });
  }
  const readme = (await Deno.readTextFile(new URL("release_readme.txt", import.meta.url)))
    .replaceAll("{VERSION}", version).replaceAll("{TARGET}", target)
    .replaceAll("{EXE}", windows ? ".exe" : "");
  entries.push({ path: `${folder}/README.txt`, bytes: new TextEncoder().encode(readme) });
  entries.push({
    path: `${folder}/LICENSE`,
    bytes: await Deno.readFile(new URL("../LICENSE", import.meta.url)),
  });
  const archive = `${folder}.${windows ? "zip" : "tar.gz"}`;
  await Deno.writeFile(`${options.out}/${archive}`, windows ? zip(entries) : await tarGz(entries));
  return archive;
}

/** Writes `<out>/SHA256SUMS` for `archives` (file names in `out`). */
export async function writeChecksums(out: string, archives: string[]): Promise<void> {
  const files = new Map<string, Uint8Array>();
  for (const name of archives) files.set(name, await Deno.readFile(`${out}/${name}`));
  await Deno.writeTextFile(`${out}/SHA256SUMS`, await sha256Sums(files));
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
