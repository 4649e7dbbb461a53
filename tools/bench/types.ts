/**
 * What the benchmark's driver and its load generator say to each other: the scenario a run
 * drives, the generator's measurements, and the row the driver reports.
 *
 * @module
 */

/**
 * The servers under test. `baseline` is wirechat from another checkout (`--baseline DIR`),
 * so that a change is measured side by side with the commit before it, in one run.
 */
export type ServerName = "wirechat" | "baseline" | "ncat" | "brief";

/** Every server a run measures by default, in the order rows are printed. */
export const SERVER_NAMES: readonly ServerName[] = ["wirechat", "ncat", "brief"];

/**
 * How keyboards send. `flood`: as fast as the server takes the bytes; `paced`: `rate`
 * messages/s per keyboard; `idle`: displays connect and sit, then one message goes out.
 */
export type Mode = "flood" | "paced" | "idle";

/** One workload, run against every server. */
export interface Scenario {
  /** Short stable name, e.g. `flood-1x100-32B`, `paced-1x1000-32B-tls`. */
  id: string;
  mode: Mode;
  keyboards: number;
  displays: number;
  /** Bytes of text in every message (at least the 18 of its stamp). */
  textSize: number;
  tls: boolean;
  /** Seconds keyboards send (flood, paced); for idle, the deadline for the one message. */
  seconds: number;
  /** Messages per second per keyboard, paced mode only. */
  rate?: number;
  /** Times the scenario runs against each server, interleaved; rows report the median. */
  rounds?: number;
  /** Scenarios of one group run their rounds interleaved with each other's. */
  group?: string;
}

/** Everything the generator needs to drive one server; passed to it as one JSON argument. */
export interface LoadSpec extends Scenario {
  host: string;
  port: number;
  /** No identify codes: for `ncat --broker`, which relays raw bytes. */
  raw: boolean;
  /** PEM file of the CA that signed the server's certificate (TLS only). */
  caFile?: string;
  /** The server's process id, for its CPU time and memory from /proc. */
  serverPid: number;
  /**
   * Flood only: bytes per display that may be sent but not yet received, split between the
   * keyboards. Keeps every relay's backlog bounded without slowing a relay that keeps up.
   */
  windowBytes: number;
}

/** Latency percentiles in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
}

/** What the generator measured; printed as one JSON line on its stdout. */
export interface LoadResult {
  ok: boolean;
  /** Why the run could not complete, in one sentence. */
  error?: string;
  /** Displays that connected (and identified). */
  connected: number;
  /** Measured messages the keyboards sent. */
  sent: number;
  /** Deliveries expected: every message to every display. */
  expected: number;
  /** Deliveries received, in order and intact. */
  delivered: number;
  /** Deliveries per second over the sending window. */
  deliveriesPerSec: number;
  /** Messages per second the keyboards got into the server. */
  sentPerSec: number;
  lost: number;
  /** Frames that failed the integrity check (a display stops trusting its stream after one). */
  corrupt: number;
  /** Messages that arrived after a later one from the same keyboard, or twice. */
  outOfOrder: number;
  latency: Latency | null;
  /** Server CPU over the window, percent of one core. */
  serverCpu: number;
  /** Generator CPU over the window, percent of one core. */
  generatorCpu: number;
  /** Server resident memory before any client connected, KiB. */
  serverRssBaseKiB: number;
  /**
   * Idle mode: server resident memory with every display connected and identified, two
   * seconds after the last one and before any message, KiB.
   */
  serverRssHeldKiB: number;
  /** Server resident memory once the run's messages were delivered, KiB. */
  serverRssAfterKiB: number;
  /** Server peak resident memory over its life, KiB. */
  serverPeakRssKiB: number;
  /** Seconds of the sending window (or, idle, until the last display had the message). */
  windowSeconds: number;
}

/** One row of the report: a scenario run against one server. */
export interface BenchRow {
  server: ServerName;
  scenario: string;
  mode: Mode;
  keyboards: number;
  displays: number;
  textBytes: number;
  tls: boolean;
  /** `ok`, `skipped` (server not installed) or `failed` (see `note`). */
  status: "ok" | "skipped" | "failed";
  deliveriesPerSec: number | null;
  latencyMs: Latency | null;
  sent: number | null;
  lost: number | null;
  corrupt: number | null;
  orderHeld: boolean | null;
  serverCpuPct: number | null;
  serverPeakRssMiB: number | null;
  /** Idle mode: server memory per held display, KiB (before any message). */
  rssPerDisplayKiB: number | null;
  /** Idle mode: the same once the message reached every display (transient garbage included). */
  rssPerDisplayAfterKiB: number | null;
  generatorCpuPct: number | null;
  /** Which process used (nearly) a whole core over the window, if any. */
  bound: "server" | "generator" | "both" | null;
  note: string;
  /** Each round's own row, when the scenario ran more than once. */
  rounds?: BenchRow[];
}
