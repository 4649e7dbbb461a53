/**
 * Statistics over a scenario's rounds: one row from several, by the median.
 *
 * @module
 */

import type { BenchRow } from "./types.ts";

/** Above this share of one core, a process is called the bottleneck of its row. */
export const BUSY_PERCENT = 85;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * One row from a scenario's rounds against one server: the median of each rate, latency
 * and CPU figure, the sum of what was lost or corrupt, the worst memory.
 */
export function mergeRounds(rounds: BenchRow[]): BenchRow {
  const ok = rounds.filter((r) => r.status === "ok");
  if (rounds.length === 1) return rounds[0];
  if (ok.length === 0) return { ...rounds[0], note: `every round failed: ${rounds[0].note}` };
  const pick = (f: (r: BenchRow) => number | null | undefined) => {
    const values = ok.map(f).filter((v): v is number => typeof v === "number");
    return values.length ? median(values) : null;
  };
  const sum = (f: (r: BenchRow) => number | null) => ok.reduce((a, r) => a + (f(r) ?? 0), 0);
  const merged: BenchRow = {
    ...ok[0],
    deliveriesPerSec: pick((r) => r.deliveriesPerSec),
    latencyMs: ok[0].latencyMs && {
      p50: pick((r) => r.latencyMs?.p50)!,
      p99: pick((r) => r.latencyMs?.p99)!,
      p999: pick((r) => r.latencyMs?.p999)!,
      max: Math.max(...ok.map((r) => r.latencyMs?.max ?? 0)),
      samples: sum((r) => r.latencyMs?.samples ?? 0),
    },
    sent: sum((r) => r.sent),
    lost: sum((r) => r.lost),
    // Displays that saw a corrupt frame: the worst round, not a sum over rounds.
    corrupt: Math.max(...ok.map((r) => r.corrupt ?? 0)),
    orderHeld: ok.every((r) => r.orderHeld),
    serverCpuPct: pick((r) => r.serverCpuPct),
    generatorCpuPct: pick((r) => r.generatorCpuPct),
    serverPeakRssMiB: Math.max(...ok.map((r) => r.serverPeakRssMiB ?? 0)),
    note: [
      `median of ${ok.length} rounds`,
      ...rounds.filter((r) => r.status !== "ok").map((r) => `a round failed: ${r.note}`),
      ...ok.map((r) => r.note).filter((n) => n),
    ].filter((n, i, all) => all.indexOf(n) === i).join("; "),
    rounds: rounds.map(({ rounds: _, ...rest }) => rest),
  };
  const server = (merged.serverCpuPct ?? 0) >= BUSY_PERCENT;
  const generator = (merged.generatorCpuPct ?? 0) >= BUSY_PERCENT;
  merged.bound = server && generator ? "both" : server ? "server" : generator ? "generator" : null;
  return merged;
}
