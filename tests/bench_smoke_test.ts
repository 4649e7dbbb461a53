/**
 * The benchmark's smoke run: `deno task bench --smoke` drives every server under test for a
 * second or so with a few displays. The rows must be well-formed, and wirechat's must show
 * nothing lost and every keyboard's order held. No timing thresholds: this machine's speed
 * is not under test here, only that the benchmark measures what it says.
 *
 * @module
 */

import assert from "node:assert/strict";
import { scenarios } from "../tools/bench/scenarios.ts";
import { type BenchRow, SERVER_NAMES } from "../tools/bench/types.ts";
import { parseRunTask } from "../tools/compile.ts";

const ROOT = new URL("../", import.meta.url);
/** Only a hang should reach this; the run itself takes seconds. */
const TIME_LIMIT_MS = 180_000;

function assertFiniteAtLeast(value: unknown, min: number, what: string): void {
  assert.equal(typeof value, "number", `${what} is a number`);
  assert.ok(Number.isFinite(value) && (value as number) >= min, `${what} = ${value}`);
}

function assertWellFormed(row: BenchRow): void {
  const where = `${row.server} ${row.scenario}`;
  assert.ok(SERVER_NAMES.includes(row.server), `unknown server in ${where}`);
  assert.ok(["ok", "skipped", "failed"].includes(row.status), `status of ${where}`);
  assert.equal(typeof row.note, "string");
  if (row.status !== "ok") {
    assert.ok(row.note.length > 0, `a ${row.status} row says why: ${where}`);
    return;
  }
  assertFiniteAtLeast(row.deliveriesPerSec, 0, `deliveries/s of ${where}`);
  assert.ok(Number.isInteger(row.sent) && row.sent! > 0, `messages sent in ${where}`);
  assert.ok(Number.isInteger(row.lost) && row.lost! >= 0, `lost in ${where}`);
  assert.ok(Number.isInteger(row.corrupt) && row.corrupt! >= 0, `corrupt in ${where}`);
  assert.equal(typeof row.orderHeld, "boolean", `order of ${where}`);
  assertFiniteAtLeast(row.serverCpuPct, 0, `server CPU of ${where}`);
  assertFiniteAtLeast(row.generatorCpuPct, 0, `generator CPU of ${where}`);
  assertFiniteAtLeast(row.serverPeakRssMiB, 0.001, `server peak RSS of ${where}`);
  if (row.latencyMs) {
    const { p50, p99, p999, max, samples } = row.latencyMs;
    assertFiniteAtLeast(p50, 0, `p50 of ${where}`);
    assert.ok(p50 <= p99 && p99 <= p999 && p999 <= max, `percentiles in order in ${where}`);
    assert.ok(Number.isInteger(samples) && samples > 0);
  }
}

Deno.test({
  name: "bench --smoke writes a well-formed row per scenario and server; wirechat loses nothing",
  permissions: { run: true, read: true, write: true, net: ["127.0.0.1"] },
  fn: async () => {
    const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks;
    const { flags, entry } = parseRunTask(tasks.bench.command);
    const out = await Deno.makeTempDir({ prefix: "bench_smoke_" });
    try {
      // The task's own permissions, writing into the temporary directory instead.
      const scoped = flags.map((f) => f.startsWith("--allow-write") ? `--allow-write=${out}` : f);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...scoped, entry, "--smoke", "--no-record", "--out", out],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), TIME_LIMIT_MS);
      const { code, stdout, stderr } = await child.output();
      clearTimeout(timer);
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `bench --smoke failed:\n${text}\n${new TextDecoder().decode(stderr)}`);

      const rows = (await Deno.readTextFile(`${out}/results.jsonl`))
        .trim().split("\n").map((line) => JSON.parse(line) as BenchRow);
      const expected = scenarios("smoke");
      assert.equal(rows.length, expected.length * SERVER_NAMES.length);
      for (const scenario of expected) {
        for (const server of SERVER_NAMES) {
          const row = rows.find((r) => r.server === server && r.scenario === scenario.id);
          assert.ok(row, `a row for ${server} ${scenario.id}`);
          assertWellFormed(row);
          if (server !== "wirechat") continue;
          assert.equal(row.status, "ok", `wirechat ${scenario.id}: ${row.note}`);
          assert.equal(row.lost, 0, `wirechat lost nothing in ${scenario.id}`);
          assert.equal(row.corrupt, 0, `wirechat corrupted nothing in ${scenario.id}`);
          assert.equal(row.orderHeld, true, `wirechat held order in ${scenario.id}`);
        }
      }
      // Every row also reached the table on stdout, and the chart was drawn.
      const tableLines = text.split("\n").filter((l) => SERVER_NAMES.some((s) => l.startsWith(s)));
      assert.equal(tableLines.length, rows.length);
      assert.match(await Deno.readTextFile(`${out}/chart.svg`), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
