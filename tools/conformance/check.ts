/**
 * Running one check under a deadline. A check throws {@linkcode CheckFailure} to fail and
 * {@linkcode CheckSkip} to skip; whatever it opened through {@linkcode CheckContext.track} is
 * closed when it ends, so a check that hangs on a silent implementation is cut off, reported
 * as "no answer within N s", and leaves nothing running behind it.
 *
 * @module
 */

import { before, seconds } from "./deadline.ts";
import type { CheckRecord } from "./report.ts";

/** Details of a failed check, shown under its FAIL line. */
export interface FailureDetails {
  expected?: string;
  hint?: string;
  dump?: string[];
}

/** Thrown by a check that found the implementation wrong; the message is "got". */
export class CheckFailure extends Error {
  readonly expected?: string;
  readonly hint?: string;
  readonly dump?: string[];

  constructor(got: string, details: FailureDetails = {}) {
    super(got);
    this.name = "CheckFailure";
    this.expected = details.expected;
    this.hint = details.hint;
    this.dump = details.dump;
  }
}

/** Thrown by a check that cannot run; the message says why. */
export class CheckSkip extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "CheckSkip";
  }
}

/** Anything a check opens and must close. */
export interface Closable {
  close(): void;
}

/** What a running check gets. */
export interface CheckContext {
  /** Absolute `Date.now()` time by which the check must be done. */
  readonly deadline: number;
  /** The whole budget, for messages. */
  readonly timeoutMs: number;
  /** Registers a resource to close when the check ends, and returns it. */
  track<T extends Closable>(resource: T): T;
}

/** A check's result when it passes: optionally a warning. */
export type CheckOutcome = void | { warning?: string };

/** One named check. */
export interface Check {
  group: string;
  name: string;
  /** One line saying what is checked, for --list. */
  description: string;
  run(ctx: CheckContext): Promise<CheckOutcome>;
}

/** Extra time the runner allows past the check's own deadline before cutting it off. */
const GRACE_MS = 1000;

/** Runs `check` with `timeoutMs` and returns its record. */
export async function runCheck(check: Check, timeoutMs: number): Promise<CheckRecord> {
  const started = Date.now();
  const tracked: Closable[] = [];
  const ctx: CheckContext = {
    deadline: started + timeoutMs,
    timeoutMs,
    track(resource) {
      tracked.push(resource);
      return resource;
    },
  };
  const base = { group: check.group, name: check.name };
  let record: Omit<CheckRecord, "durationMs">;
  try {
    const settled = await before(check.run(ctx), started + timeoutMs + GRACE_MS);
    if (settled.timedOut) {
      record = {
        ...base,
        status: "FAIL",
        got: `no answer within ${seconds(timeoutMs)}`,
        hint: "the implementation stopped responding during this check",
      };
    } else {
      record = { ...base, status: "PASS", hint: settled.value?.warning };
    }
  } catch (error) {
    record = recordFromError(base, error);
  } finally {
    for (const resource of tracked.reverse()) {
      try {
        resource.close();
      } catch {
        // Closing is best effort; the resource may already be gone.
      }
    }
  }
  return { ...dropUndefined(record), durationMs: Date.now() - started };
}

/** A SKIP record for a check that was not run. */
export function skipped(check: Check, reason: string): CheckRecord {
  return { group: check.group, name: check.name, status: "SKIP", reason, durationMs: 0 };
}

function recordFromError(
  base: { group: string; name: string },
  error: unknown,
): Omit<CheckRecord, "durationMs"> {
  if (error instanceof CheckFailure) {
    return {
      ...base,
      status: "FAIL",
      expected: error.expected,
      got: error.message,
      hint: error.hint,
      dump: error.dump,
    };
  }
  if (error instanceof CheckSkip) return { ...base, status: "SKIP", reason: error.message };
  // A bug in the checker itself must still end as a readable line, not a stack trace.
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { ...base, status: "FAIL", got: `the checker hit an unexpected error: ${message}` };
}

function dropUndefined<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as T;
}
