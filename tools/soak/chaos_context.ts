/**
 * What the soak's chaos scenarios share: their context (server log, tallies, flood windows,
 * time limits), and how a connection the server should end is judged.
 *
 * @module
 */

import { encodeFrame } from "../../lib/protocol/frame.ts";
import type { Prng } from "../fuzz/prng.ts";
import type { HealthRecord } from "./health.ts";
import { dial, type Ending, type Target } from "./net.ts";
import type { Lines as ServerLog } from "../harness/lines.ts";

/** The server's time limits, in seconds, as the soak started it. */
export interface Timeouts {
  identify: number;
  frame: number;
  handshake: number;
  softSeconds: number;
}

/** What the chaos needs to know about the server and the run. */
export interface ChaosContext {
  plain: Target;
  tls: Target;
  timeouts: Timeouts;
  maxConnections: number;
  log: ServerLog;
  /** performance.now() after which no new scenario starts. */
  deadline: number;
  tally: Tally;
  floods: FloodWindows;
  /** Healthy exchanges after each kind of attack, if the run checks them. */
  health?: HealthRecord;
}

/** A kind of attack in the mix is followed by a healthy exchange at most this often. */
export const HEALTH_EVERY_MS = 4_000;

/** The health check's name for every kind of malformed frame together. */
export const MALFORMED_KINDS = "hostile: malformed frames (every kind)";

/** One scenario's runs: how many, which outcomes, and what failed. */
export interface ScenarioCount {
  runs: number;
  failed: number;
  outcomes: Map<string, number>;
  failures: string[];
}

/** Scenario counts by name, in the order first seen. */
export class Tally {
  readonly scenarios = new Map<string, ScenarioCount>();

  record(name: string, outcome: string, ok: boolean, detail?: string): void {
    let count = this.scenarios.get(name);
    if (!count) {
      count = { runs: 0, failed: 0, outcomes: new Map(), failures: [] };
      this.scenarios.set(name, count);
    }
    count.runs++;
    count.outcomes.set(outcome, (count.outcomes.get(outcome) ?? 0) + 1);
    if (!ok) {
      count.failed++;
      if (count.failures.length < 5) {
        count.failures.push(`${outcome}${detail ? `: ${detail}` : ""}`);
      }
    }
  }

  get failed(): number {
    let failed = 0;
    for (const count of this.scenarios.values()) failed += count.failed;
    return failed;
  }
}

/** When floods held the server at its connection limit: a refusal then is expected. */
export class FloodWindows {
  #windows: [number, number][] = [];
  #open = 0;

  begin(): void {
    this.#open = performance.now();
  }

  end(): void {
    // The server frees the flood's slots as it sees each close, which takes a moment under load.
    this.#windows.push([this.#open - 200, performance.now() + 3000]);
    this.#open = 0;
  }

  /** Whether a connection that lived from `from` to `to` overlapped a flood. */
  overlaps(from: number, to: number): boolean {
    if (this.#open && to >= this.#open - 200) return true;
    return this.#windows.some(([start, end]) => from <= end && to >= start);
  }
}

export const PROMPT_MS = 3_000;

/** Judges a connection the server should have ended within [minMs, maxMs]. */
export function judgeClose(
  ctx: ChaosContext,
  name: string,
  started: number,
  ending: Ending,
  minMs: number,
  maxMs: number,
): void {
  const closed = ending.how === "eof" || ending.how === "reset";
  const took = `${(ending.ms / 1000).toFixed(1)} s`;
  if (closed && ending.ms < minMs && ctx.floods.overlaps(started, performance.now())) {
    return ctx.tally.record(name, "refused during a flood", true);
  }
  if (closed && ending.ms >= minMs && ending.ms <= maxMs) {
    return ctx.tally.record(name, minMs > 0 ? "closed at the time limit" : "closed at once", true);
  }
  const outcome = closed
    ? `closed after ${took}, expected ${minMs / 1000}-${maxMs / 1000} s`
    : ending.how === "open"
    ? `still open after ${took}`
    : `read failed: ${ending.detail}`;
  ctx.tally.record(name, outcome, false);
}

/** Connects, or records a refusal during a flood (or a failure) and returns undefined. */
export async function connect(ctx: ChaosContext, name: string, target: Target) {
  const started = performance.now();
  try {
    return await dial(target);
  } catch (error) {
    const flood = ctx.floods.overlaps(started, performance.now());
    ctx.tally.record(name, flood ? "refused during a flood" : `connect failed: ${error}`, flood);
    return undefined;
  }
}

export function limitMs(seconds: number): [number, number] {
  return [seconds * 1000 - 300, seconds * 1000 + 3_000];
}

export const churnFrame = (rng: Prng, littleEndian: boolean) =>
  encodeFrame({
    username: `churn-${rng.int(1000)}`,
    time: { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 },
    text: "passing through",
  }, { littleEndian });

export type Scenario = (ctx: ChaosContext, rng: Prng) => Promise<void>;
