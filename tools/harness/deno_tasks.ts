/**
 * What deno.json's `deno task` entries run each script with (permission flags, environment),
 * so that tests, the bench, the soak and the fuzzers start the programs exactly as users do and
 * deno.json stays the one place the permissions are written.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseRunTask } from "../compile.ts";

/** The repository, where the programs are run from. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** How a script's `deno task` entry runs it. */
export interface TaskSetting {
  /** The task's name in deno.json. */
  name: string;
  flags: readonly string[];
  env: Record<string, string>;
  /** The script, relative to the repository. */
  entry: string;
}

let tasks: ReadonlyMap<string, TaskSetting> | undefined;

/** The `deno run` tasks of deno.json, by the script they run. */
function runTasks(): ReadonlyMap<string, TaskSetting> {
  if (tasks) return tasks;
  const config = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)));
  const byEntry = new Map<string, TaskSetting>();
  for (
    const [name, task] of Object.entries(config.tasks) as [string, string | { command: string }][]
  ) {
    const command = typeof task === "string" ? task : task.command;
    try {
      const { env, flags, entry } = parseRunTask(command);
      if (!byEntry.has(entry)) byEntry.set(entry, { name, env, flags, entry });
    } catch {
      // Not a `deno run` task (test, check, ...).
    }
  }
  return tasks = byEntry;
}

/** The task setting of `script` (e.g. "main_server.ts"), if a `deno task` runs it. */
export function taskFor(script: string): TaskSetting | undefined {
  return runTasks().get(script);
}

/** The permissions of the clients' `deno task` entries: the default for other scripts. */
export function programPermissions(): readonly string[] {
  return taskFor("main_display.ts")?.flags ?? [];
}

/**
 * The Deno to run programs with: this one, if allowed to run it (tests; tasks that granted
 * `--allow-run` for its path); else `deno` from PATH, which is what `--allow-run=deno` grants.
 */
export function denoPath(): string {
  try {
    const self = Deno.execPath();
    if (Deno.permissions.querySync({ name: "run", command: self }).state === "granted") return self;
  } catch {
    // Not allowed to know where this Deno is: PATH's it is.
  }
  return "deno";
}
