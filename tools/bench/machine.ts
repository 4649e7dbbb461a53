/**
 * What this machine offers a run (CPU pinning, descriptor limits, the peers' programs), and
 * its description for the record.
 *
 * @module
 */

import { readProc } from "./proc.ts";
import type { ServerName } from "./types.ts";

/** What this machine offers the run. */
export interface Environment {
  taskset: boolean;
  cores: number;
  /** The tools each server needs, or why it is skipped. */
  missing: Partial<Record<ServerName, string>>;
  fdLimit: { soft: number; hard: number } | null;
  certDir: string;
  /** The checkout the baseline server runs from (--baseline). */
  baselineDir?: string;
}

export async function commandWorks(command: string, args: string[]): Promise<string | null> {
  try {
    const { success, stdout, stderr } = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) return null;
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    return text.trim().split("\n")[0] || "present";
  } catch {
    return null;
  }
}

export async function fdLimit(): Promise<{ soft: number; hard: number } | null> {
  const limits = await readProc("/proc/self/limits");
  const match = limits?.match(/^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m);
  if (!match) return null;
  const value = (s: string) => (s === "unlimited" ? Infinity : Number(s));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/** Wraps a command so it runs on `cpu` and may open `files` descriptors. */
export function wrap(env: Environment, cpu: number, files: number, command: string[]): string[] {
  let wrapped = command;
  if (env.taskset && env.cores >= 2) wrapped = ["taskset", "-c", String(cpu), ...wrapped];
  // Deno raises its own soft limit to the hard one; ncat and Python do not.
  if (env.fdLimit && env.fdLimit.soft < files) {
    const hard = Math.max(env.fdLimit.hard, files);
    wrapped = ["prlimit", `--nofile=${files}:${hard}`, ...wrapped];
  }
  return wrapped;
}

/** The machine, for the record. */
export async function describeMachine(env: Environment): Promise<string[]> {
  const cpuinfo = (await readProc("/proc/cpuinfo")) ?? "";
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const meminfo = (await readProc("/proc/meminfo")) ?? "";
  const memKiB = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const kernel = ((await readProc("/proc/sys/kernel/osrelease")) ?? "").trim();
  const ncat = await commandWorks("ncat", ["--version"]);
  const python = await commandWorks("python3", ["--version"]);
  return [
    `${model}, ${env.cores} cores, ${(memKiB / 1024 / 1024).toFixed(1)} GiB RAM, Linux ${kernel}`,
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); ${ncat ?? "ncat not installed"}; ${
      python ?? "python3 not installed"
    }`,
    env.taskset && env.cores >= 2
      ? "server pinned to CPU 0, load generator to CPU 1 (taskset)"
      : "no CPU pinning (taskset missing or one core)",
    `open files limit ${env.fdLimit?.soft ?? "?"} (soft) / ${env.fdLimit?.hard ?? "?"} (hard)` +
    (env.fdLimit && env.fdLimit.soft < 10_100 ? "; processes raised with prlimit" : ""),
  ];
}
