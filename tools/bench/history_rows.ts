/**
 * The history rows of `deno task bench` (issue 12), in one run: the 1 keyboard x 100
 * displays flood against wirechat with --history-db and without, interleaved round by round
 * (goal: at least 0.8x); the rate at which the SQLite store writes messages (goal: at least
 * 100,000/s); and how long a new display takes to receive a 10,000-message replay.
 *
 * @module
 */

import { join } from "node:path";
import { concatBytes } from "../../lib/protocol/bytes.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { writeAll } from "../../lib/net/wire_io.ts";
import { Logger } from "../../lib/cli/log.ts";
import { SqliteStore } from "../../lib/server/history/sqlite_store.ts";
import { REPO_ROOT } from "../harness/deno_tasks.ts";
import { ServerProcess } from "../harness/server_process.ts";
import type { Environment } from "./machine.ts";
import { mergeRounds } from "./rounds.ts";
import { HOST, runOne } from "./run_one.ts";
import type { BenchRow, Scenario } from "./types.ts";

/** What the history rows measured. */
export interface HistoryBench {
  without: BenchRow;
  withDb: BenchRow;
  /** withDb's deliveries/s over without's; null if either failed. */
  ratio: number | null;
  /** Messages/s the SQLite store committed, one run of {@linkcode WRITE_BATCH} per commit. */
  writesPerSec: number;
  /** Milliseconds from a display's identify to the last frame of a 10,000-message replay (median). */
  replayMs: number | null;
  replayNote: string;
}

/**
 * Messages per append in the write-rate row: one keyboard read of a flood (32 KiB of frames
 * with 32-byte texts), one turn of the event loop.
 */
const WRITE_BATCH = 450;
const REPLAY_COUNT = 10_000;
const REPLAY_TRIES = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A 32-byte-text frame, as the flood rows send. */
function benchFrame(i: number): Uint8Array {
  const time = { year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
  return encodeFrame({ username: "bench", time, text: `${i}`.padEnd(32, ".") });
}

async function removeDb(path: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(join(REPO_ROOT, path + suffix)).catch(() => {});
  }
}

/** The flood 1x100 rounds, with and without --history-db, alternated. */
async function floodPair(
  env: Environment,
  seconds: number,
  rounds: number,
): Promise<[BenchRow, BenchRow]> {
  const s: Scenario = {
    id: "flood-1x100-32B",
    mode: "flood",
    keyboards: 1,
    displays: 100,
    textSize: 32,
    tls: false,
    seconds,
    rate: 100,
  };
  // Under history/: the only place the server's deno task may write.
  const db = `history/bench_flood_${Deno.pid}.db`;
  const without: BenchRow[] = [];
  const withDb: BenchRow[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      without.push(await runOne("wirechat", s, env));
      await removeDb(db);
      const row = await runOne("wirechat", s, env, ["--history-db", db]);
      withDb.push({ ...row, scenario: `${s.id}-history-db` });
    }
  } finally {
    await removeDb(db);
  }
  return [mergeRounds(without), mergeRounds(withDb)];
}

/** Messages/s the store commits for `seconds`, in appends of WRITE_BATCH flood frames. */
function writeRate(dir: string, seconds: number): number {
  const path = join(dir, `history_write_rate_${Deno.pid}.db`);
  const store = SqliteStore.open(path, {
    replayCount: 100,
    log: new Logger("warn"),
    stepMs: 60_000,
  });
  try {
    const run = concatBytes(Array.from({ length: WRITE_BATCH }, (_, i) => benchFrame(i)));
    const runs = [{ frames: run, littleEndian: false }];
    let written = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      store.append(runs, Date.now());
      written += WRITE_BATCH;
    }
    return written / ((performance.now() - start) / 1000);
  } finally {
    store.close();
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        Deno.removeSync(path + suffix);
      } catch {
        // SQLite removed it on close.
      }
    }
  }
}

/** Reads from `conn` until `bytes` have arrived; resolves with when the last did. */
async function readBytes(conn: Deno.Conn, bytes: number): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  for (let got = 0; got < bytes;) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`the server closed the connection after ${got} bytes`);
    got += n;
  }
  return performance.now();
}

/** Median time from identify to the last replayed frame, over REPLAY_TRIES new displays. */
async function replayTime(): Promise<number> {
  const db = `history/bench_replay_${Deno.pid}.db`;
  await removeDb(db);
  try {
    await using server = await ServerProcess.start([
      ...["--history", String(REPLAY_COUNT), "--history-db", db, "--keyboard-rate", "0"],
    ]);
    const frames = concatBytes(Array.from({ length: REPLAY_COUNT }, (_, i) => benchFrame(i)));
    const keyboard = await Deno.connect({ hostname: HOST, port: server.port });
    const witness = await Deno.connect({ hostname: HOST, port: server.port });
    try {
      await writeAll(witness, encodeIdentify("display"));
      await server.log.waitFor(/identified as display/);
      await writeAll(keyboard, encodeIdentify("keyboard"));
      await writeAll(keyboard, frames);
      await readBytes(witness, frames.length);
      const times: number[] = [];
      for (let i = 0; i < REPLAY_TRIES; i++) {
        const display = await Deno.connect({ hostname: HOST, port: server.port });
        try {
          const start = performance.now();
          await writeAll(display, encodeIdentify("display"));
          times.push(await readBytes(display, frames.length) - start);
        } finally {
          display.close();
        }
      }
      return median(times);
    } finally {
      keyboard.close();
      witness.close();
    }
  } finally {
    await removeDb(db);
  }
}

/** Runs the history rows; never throws (a failed part says why in its row or note). */
export async function historyRows(
  env: Environment,
  options: { quick: boolean; out: string },
): Promise<HistoryBench> {
  const [without, withDb] = await floodPair(env, options.quick ? 1.5 : 3, options.quick ? 1 : 3);
  const ratio = without.deliveriesPerSec && withDb.deliveriesPerSec !== null
    ? withDb.deliveriesPerSec / without.deliveriesPerSec
    : null;
  const writesPerSec = writeRate(options.out, options.quick ? 1 : 3);
  let replayMs: number | null = null;
  let replayNote = `median of ${REPLAY_TRIES} displays`;
  try {
    replayMs = await replayTime();
  } catch (error) {
    replayNote = `failed: ${error instanceof Error ? error.message : error}`;
  }
  return { without, withDb, ratio, writesPerSec, replayMs, replayNote };
}

const rate = (n: number | null) => n === null ? "failed" : Math.round(n).toLocaleString("en-US");

/** The history rows as lines for the console (each prefixed `# `) and for BENCHMARKS.md. */
export function historyLines(h: HistoryBench): { console: string[]; markdown: string } {
  const ratio = h.ratio === null ? "n/a" : `${h.ratio.toFixed(2)}x`;
  const met = (ok: boolean | null) => ok === null ? "n/a " : ok ? "MET " : "MISS";
  const console = [
    `flood-1x100-32B without history: ${rate(h.without.deliveriesPerSec)} deliveries/s (${
      h.without.note || h.without.status
    })`,
    `flood-1x100-32B with --history-db: ${rate(h.withDb.deliveriesPerSec)} deliveries/s (${
      h.withDb.note || h.withDb.status
    }), lost ${h.withDb.lost}, order held ${h.withDb.orderHeld}`,
    `${
      met(h.ratio === null ? null : h.ratio >= 0.8)
    } flood with --history-db at least 0.8x of without: ${ratio}`,
    `${met(h.writesPerSec >= 100_000)} SQLite history writes at least 100,000 messages/s: ${
      rate(h.writesPerSec)
    }/s (one commit per run of ${WRITE_BATCH}, a flood's 32 KiB read)`,
    `replay of ${REPLAY_COUNT.toLocaleString("en-US")} messages to a new display: ${
      h.replayMs === null ? "failed" : `${h.replayMs.toFixed(1)} ms`
    } from identify to the last frame (${h.replayNote})`,
  ];
  const markdown = [
    "### History (issue 12)",
    "",
    "| row | figure | goal |",
    "| --- | --- | --- |",
    `| flood 1x100, 32 B, without history | ${rate(h.without.deliveriesPerSec)} deliveries/s | |`,
    `| flood 1x100, 32 B, --history-db | ${
      rate(h.withDb.deliveriesPerSec)
    } deliveries/s (${ratio}) | >= 0.8x |`,
    `| SQLite writes, one commit per run of ${WRITE_BATCH} (a 32 KiB read) | ${
      rate(h.writesPerSec)
    } messages/s | >= 100,000 |`,
    `| replay of 10,000 messages, identify to last frame | ${
      h.replayMs === null ? "failed" : `${h.replayMs.toFixed(1)} ms`
    } | |`,
  ].join("\n");
  return { console, markdown };
}
