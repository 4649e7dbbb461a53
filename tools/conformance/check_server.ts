/**
 * `conformance server`: connects to a running server as displays and keyboards and runs the
 * core checks, then the `--extensions` and `--hostile` groups when asked. After every check a
 * quick probe makes sure the server still relays; once it does not, the report says after
 * which check it stopped answering and skips the rest instead of hanging on them.
 *
 * @module
 */

import { formatAddress } from "../../lib/net/transport.ts";
import { type Check, runCheck, skipped } from "./check.ts";
import type { Reporter } from "./report.ts";
import { coreChecks, pair } from "./server_core.ts";
import { extensionChecks } from "./server_extensions.ts";
import type { ServerTarget } from "./server_helpers.ts";
import { hostileChecks } from "./server_hostile.ts";

/** What `conformance server` was asked to do. */
export interface ServerCheckOptions {
  target: ServerTarget;
  timeoutMs: number;
  extensions: boolean;
  hostile: boolean;
  /** Run only these checks (by name); the prerequisites run regardless. */
  only?: string[];
}

/** Checks the others depend on: if one fails, nothing else can be checked. */
const PREREQUISITES = ["connect", "identify"];

/** Every server check the options select, in running order. */
export function serverChecks(
  target: ServerTarget,
  groups: { extensions: boolean; hostile: boolean },
): Check[] {
  return [
    ...coreChecks(target),
    ...(groups.extensions ? extensionChecks(target) : []),
    ...(groups.hostile ? hostileChecks(target) : []),
  ];
}

/** Runs the server checks, adding each result to `reporter`. */
export async function checkServer(options: ServerCheckOptions, reporter: Reporter): Promise<void> {
  const { target, timeoutMs } = options;
  const address = formatAddress(target.host, target.port);
  const all = serverChecks(target, options);
  const only = options.only ? new Set(options.only) : undefined;
  let stopped: string | undefined;
  for (const check of all) {
    const selected = only === undefined || only.has(check.name);
    const prerequisite = PREREQUISITES.includes(check.name);
    if (!selected && !prerequisite) continue;
    if (stopped !== undefined) {
      if (selected) reporter.add(skipped(check, stopped));
      continue;
    }
    const record = await runCheck(check, timeoutMs);
    if (prerequisite) {
      if (record.status !== "PASS") {
        stopped = check.name === "connect"
          ? `cannot connect to ${address}`
          : "the server relayed no message: see the identify check";
        reporter.add(record);
      } else if (selected) {
        reporter.add(record);
      }
      continue;
    }
    if (!(await answers(target, timeoutMs))) {
      stopped = `the server stopped answering after the ${check.name} check`;
      record.status = "FAIL";
      record.got = record.got === undefined ? stopped : `${record.got}; then ${stopped}`;
      reporter.add(record);
      reporter.note(`${stopped}; the remaining checks are skipped`);
      continue;
    }
    reporter.add(record);
  }
}

/** Whether a fresh display and keyboard can still exchange a message. */
async function answers(target: ServerTarget, timeoutMs: number): Promise<boolean> {
  const probe: Check = {
    group: "probe",
    name: "probe",
    description: "the server still relays",
    run: async (ctx) => {
      await pair(ctx, target);
    },
  };
  return (await runCheck(probe, timeoutMs)).status === "PASS";
}
