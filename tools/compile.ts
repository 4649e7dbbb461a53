/**
 * `deno task compile`: builds the standalone executables with `deno compile`, each with the
 * same permission flags as its `deno task` entry in deno.json, which stays the one place
 * where a program's permissions are written down.
 *
 * @module
 */

import { parseOptions, runTool, stringOption } from "../lib/cli/args.ts";
import { UsageError } from "../lib/cli/user_errors.ts";
import { VERSION } from "../lib/cli/version.ts";
import { type ArchiveEntry, sha256Sums, tarGz, zip } from "./release_archive.ts";

/** The programs shipped as executables, by their deno.json task name. */
export const PROGRAMS = [
  "server",
  "display",
  "keyboard",
  "chat",
  "history",
  "conformance",
] as const;

/** Every target `deno compile` offers for the three systems. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * How a task names the Deno that runs it, where a flag needs its path (`--allow-run` of the
 * soak and fuzz-server tasks): the task shell runs `deno` as itself, whatever PATH holds.
 */
export const THIS_DENO = `"$(deno eval --no-config 'console.log(Deno.execPath())')"`;

function thisDeno(): string {
  try {
    return Deno.execPath();
  } catch {
    return "deno";
  }
}

/**
 * The environment, permission flags and entry file of a `deno run` task command (with
 * {@linkcode THIS_DENO} replaced by this Deno's path), which may
 * start with `NAME=value` settings (the server's allocator setting, say).
 */
export function parseRunTask(
  command: string,
): { env: Record<string, string>; flags: string[]; entry: string } {
  const self = "\u0000deno\u0000";
  const words = command.replaceAll(THIS_DENO, self).trim().split(/\s+/)
    .map((word) => word.replaceAll(self, thisDeno()));
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

const USAGE = `Usage: deno task compile [options]

Builds wirechat-server, wirechat-display, wirechat-keyboard and wirechat-conformance into
DIR/<target>/, each with the permissions of its deno task entry in deno.json, and packs each
target into DIR/wirechat-VERSION-<target>.tar.gz (.zip for Windows), with DIR/SHA256SUMS.

Options:
  --target T   build for T only (repeatable; default: every target, or this machine's
               when DENORT_BIN is set). Targets: ${TARGETS.join(", ")}
  --out DIR    where to build (default: dist)
  --help       show this help
  --version    show the version

Set DENORT_BIN to a denort binary for this machine to build where Deno's download server
cannot be reached.`;

/**
 * The sentence for a failed `deno compile`, from what it printed: the runtime image that
 * could not be fetched or found, or else Deno's own first error line. Stack backtraces and
 * progress lines are left out.
 */
export function compileFailure(program: string, target: string, output: string): string {
  const said = output.split("Stack backtrace:")[0];
  const lines = said.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const lastCause = lines.filter((line) => /^\d+: /.test(line)).map((l) => l.replace(/^\d+: /, ""));
  const error = lines.find((line) => line.startsWith("error: "))?.slice(7) ?? lines.at(-1) ?? "";
  const what = `deno compile failed for ${program} on ${target}`;
  const denort = /Could not find denort at '([^']*)'/.exec(output);
  if (denort) return `${what}: DENORT_BIN points to ${denort[1]}, where there is no file.`;
  if (
    /denort|Setting up base binary/i.test(output) &&
    /error sending request|dns error|download/i.test(output)
  ) {
    return `${what}: Deno's runtime image for ${target} could not be downloaded (${
      lastCause.at(-1) ?? error
    }); build on a machine that can download it, take the executables from the release page, or set DENORT_BIN to a denort binary for this machine.`;
  }
  return `${what}: ${(lastCause.at(0) ?? error).replace(/\.$/, "")}.`;
}

/** Builds every program for each target; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    target: { type: "string", multiple: true },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}". Try --help.`);
  }
  const denortBin = Deno.env.get("DENORT_BIN");
  // A DENORT_BIN runtime only fits the machine it was built for.
  const targets = (values.target as string[] | undefined) ??
    (denortBin ? [hostTarget()] : [...TARGETS]);
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      throw new UsageError(`Unknown --target "${target}": one of ${TARGETS.join(", ")}.`);
    }
  }
  if (denortBin !== undefined) {
    const found = await Deno.stat(denortBin).then((info) => info.isFile, () => false);
    if (!found) throw new UsageError(`DENORT_BIN points to ${denortBin}, where there is no file.`);
  }
  const out = stringOption(values, "out", "dist");
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks;
  const outExisted = await Deno.stat(out).then(() => true, () => false);
  const archives: string[] = [];
  for (const target of targets) {
    const dir = `${out}/${target}`;
    const existed = await Deno.stat(dir).then(() => true, () => false);
    for (const program of PROGRAMS) {
      const task = tasks[program];
      if (!task) continue;
      const { flags, entry } = parseRunTask(typeof task === "string" ? task : task.command);
      const suffix = target.includes("windows") ? ".exe" : "";
      const output = `${dir}/wirechat-${program}${suffix}`;
      console.error(`compiling ${output}`);
      const result = await new Deno.Command(Deno.execPath(), {
        // The server serves the web chat's page from web/ (lib/server/web/web_server.ts).
        args: [
          "compile",
          ...flags,
          ...(program === "server" ? ["--include", "web"] : []),
          "--target",
          target,
          "--output",
          output,
          entry,
        ],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (result.code !== 0) {
        const said = new TextDecoder().decode(result.stderr) +
          new TextDecoder().decode(result.stdout);
        // deno compile makes the directory before it fails; an empty one helps nobody.
        if (!existed) await Deno.remove(dir).catch(() => {});
        if (!outExisted) await Deno.remove(out).catch(() => {});
        console.error(compileFailure(program, target, said));
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
