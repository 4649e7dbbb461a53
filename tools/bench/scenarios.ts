/**
 * The benchmark's scenarios: which load, how many displays, how long, how many rounds.
 *
 * @module
 */

import type { Scenario } from "./types.ts";

function scenario(
  mode: Scenario["mode"],
  keyboards: number,
  displays: number,
  textSize: number,
  tls: boolean,
  seconds: number,
  rounds = 1,
  group?: string,
): Scenario {
  const size = textSize >= 1024 ? `${textSize / 1024}KiB` : `${textSize}B`;
  const id = `${mode}-${keyboards}x${displays}-${size}${tls ? "-tls" : ""}`;
  return { id, mode, keyboards, displays, textSize, tls, seconds, rate: 100, rounds, group };
}

/**
 * The scenarios of issue 3, and the shorter sets for --quick and --smoke. The rows a target
 * is judged on run in interleaved rounds (server A, B, C, then A, B, C again...) and report
 * the median round, so a burst of other load on this shared machine lands on one round of
 * one server rather than deciding the comparison. Flood 1x100 and 10x100, compared with each
 * other, also interleave with each other.
 */
export function scenarios(kind: "full" | "quick" | "smoke"): Scenario[] {
  const KiB = 1024;
  if (kind === "smoke") {
    return [
      scenario("flood", 2, 3, 32, false, 1),
      scenario("flood", 1, 3, KiB, true, 0.5),
    ];
  }
  const quick = kind === "quick";
  const flood = quick ? 1.5 : 3;
  const paced = quick ? 3 : 5;
  const rounds = quick ? 1 : 3;
  const list: Scenario[] = [];
  for (const size of quick ? [32] : [32, KiB]) {
    const judged = size === 32 ? rounds : 1;
    const pair = size === 32 ? { rounds: quick ? 1 : 5, group: "flood-x100" } : { rounds: 1 };
    for (const displays of quick ? [1, 10, 100] : [1, 10, 100, 1000]) {
      const { rounds, group } = displays === 100 ? pair : { rounds: 1, group: undefined };
      list.push(scenario("flood", 1, displays, size, false, flood, rounds, group));
    }
    list.push(scenario("flood", 10, 100, size, false, flood, pair.rounds, pair.group));
    list.push(scenario("flood", 1, 100, size, true, flood, judged));
  }
  for (const tls of [false, true]) {
    for (const displays of quick ? [100] : [100, 1000]) {
      // p99 is the noisiest figure of all: five rounds for the judged (plain) rows.
      list.push(scenario("paced", 1, displays, 32, tls, paced, tls ? 1 : quick ? 1 : 5));
    }
  }
  list.push(scenario("idle", 1, quick ? 1000 : 10_000, 32, false, 20));
  return list;
}
