/**
 * What `--version` prints in every program and tool: wirechat's version (deno.json's `version`,
 * the one source of truth, built into compiled executables too), the protocol version, and the
 * Deno version running it.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };
import { PROTOCOL_VERSION } from "../protocol/version.ts";

/** wirechat's version, from deno.json. */
export const VERSION: string = config.version;

/** `wirechat 0.9.0 (protocol 1, Deno 2.9.6)`. */
export function versionText(): string {
  return `wirechat ${VERSION} (protocol ${PROTOCOL_VERSION}, Deno ${Deno.version.deno})`;
}

/** Whether `args` ask for the version (before any `--`, after which arguments are not ours). */
export function wantsVersion(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--version");
}
