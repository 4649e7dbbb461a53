/**
 * `deno task bench`: fan-out throughput, latency and capacity of wirechat's server against
 * `ncat --broker` and the lab brief's literal design, in one run (issue 3).
 *
 * Each server under test runs as its own process on 127.0.0.1, pinned to CPU 0 when
 * `taskset` exists; the load generator (load.ts) runs as another, pinned to CPU 1. Rows print
 * as they finish; the run writes `results.jsonl`, `table.md` and `chart.svg` into `--out`,
 * and a full run also records its table, verdicts and chart in BENCHMARKS.md.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeThrowawayCerts } from "../throwaway_certs.ts";
import { commandWorks, describeMachine, type Environment, fdLimit } from "./machine.ts";
import { recordRun } from "./record.ts";
import { mergeRounds } from "./rounds.ts";
import { runOne } from "./run_one.ts";
import { historyLines, historyRows } from "./history_rows.ts";
import { scenarios } from "./scenarios.ts";
import {
  formatTableLine,
  markdownTable,
  markdownVerdicts,
  svgChart,
  TABLE_WIDTHS,
  verdicts,
} from "./report.ts";
import { type BenchRow, SERVER_NAMES, type ServerName } from "./types.ts";
import { runTool } from "../../lib/cli/args.ts";
import { runWebRows, webReport } from "./web_rows.ts";

const USAGE = `Usage: deno task bench [options]

  --quick          a short run (about a minute): fewer and shorter scenarios
  --smoke          a tiny run (seconds) for tests: a few displays, one second per row
  --servers LIST   comma-separated subset of ${SERVER_NAMES.join(",")} (default all)
  --only TEXT      only scenarios whose id contains TEXT (e.g. flood-1x100; "history" for
                   the history rows alone, which otherwise run after the others)
  --out DIR        where results go (default bench-results)
  --baseline DIR   also measure wirechat from another checkout (an earlier commit, e.g. a
                   git worktree), as server "baseline", interleaved with this one
  --no-web         leave out the web rows (WebSocket receivers, wirechat --web vs Node's ws)
  --no-record      do not update BENCHMARKS.md and tools/bench/chart.svg (a full run does)
  --help           show this help
`;

/** Runs the benchmark; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      smoke: { type: "boolean" },
      servers: { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
      baseline: { type: "string" },
      "no-record": { type: "boolean" },
      "no-web": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const kind = values.smoke ? "smoke" : values.quick ? "quick" : "full";
  const known: ServerName[] = values.baseline
    ? ["wirechat", "baseline", ...SERVER_NAMES.slice(1)]
    : [...SERVER_NAMES];
  const servers = (values.servers?.split(",") ?? known) as ServerName[];
  for (const name of servers) {
    if (!known.includes(name)) {
      console.error(`Unknown server "${name}": choose from ${known.join(", ")}.`);
      return 2;
    }
  }
  let baselineDir: string | undefined;
  if (values.baseline) {
    try {
      baselineDir = await Deno.realPath(values.baseline);
      await Deno.stat(`${baselineDir}/main_server.ts`);
    } catch {
      console.error(`The --baseline directory ${values.baseline} has no main_server.ts.`);
      return 2;
    }
  }
  const list = scenarios(kind).filter((s) => !values.only || s.id.includes(values.only));
  const withWeb = kind !== "smoke" && !values["no-web"] &&
    (!values.only || "web".includes(values.only));
  const out = values.out ?? "bench-results";
  const record = kind === "full" && !values.only && !values.servers && !values["no-record"];
  await Deno.mkdir(out, { recursive: true });
  const certDir = await Deno.realPath(out).then((p) => `${p}/certs`);
  const env: Environment = {
    taskset: (await commandWorks("taskset", ["-V"])) !== null,
    cores: navigator.hardwareConcurrency,
    missing: {},
    fdLimit: await fdLimit(),
    certDir,
    baselineDir,
  };
  if (!(await commandWorks("ncat", ["--version"]))) {
    env.missing.ncat = "ncat not installed (Debian: apt-get install ncat); skipped";
  }
  if (!(await commandWorks("python3", ["--version"]))) {
    env.missing.brief = "python3 not installed; skipped";
  }
  if (list.some((s) => s.tls)) await writeThrowawayCerts(certDir);
  const machine = await describeMachine(env);
  if (baselineDir) machine.push(`baseline: wirechat from ${baselineDir}`);
  const command = `deno task bench${argv.length ? " " + argv.join(" ") : ""}`;
  console.log(`# ${command}`);
  for (const line of machine) console.log(`# ${line}`);
  console.log(formatTableLine(null, TABLE_WIDTHS));

  const jsonl = `${out}/results.jsonl`;
  await Deno.writeTextFile(jsonl, "");
  const rows: BenchRow[] = [];
  const started = Date.now();
  const done = new Set<string>();
  for (const first of list) {
    if (done.has(first.id)) continue;
    const batch = first.group ? list.filter((s) => s.group === first.group) : [first];
    const runs = new Map<string, BenchRow[]>();
    const rounds = Math.max(...batch.map((s) => s.rounds ?? 1));
    for (let round = 0; round < rounds; round++) {
      for (const s of batch.filter((s) => round < (s.rounds ?? 1))) {
        for (const server of servers) {
          const key = `${s.id} ${server}`;
          runs.set(key, [...runs.get(key) ?? [], await runOne(server, s, env)]);
        }
      }
    }
    for (const s of batch) {
      done.add(s.id);
      for (const server of servers) {
        const row = mergeRounds(runs.get(`${s.id} ${server}`)!);
        rows.push(row);
        console.log(formatTableLine(row, TABLE_WIDTHS));
        await Deno.writeTextFile(jsonl, JSON.stringify(row) + "\n", { append: true });
      }
    }
  }
  // The history rows (issue 12): their own module, table and targets.
  let historyMarkdown: string | undefined;
  if (
    kind !== "smoke" && servers.includes("wirechat") && (!values.only || values.only === "history")
  ) {
    const history = historyLines(await historyRows(env, { quick: kind === "quick", out }));
    console.log("\n# history (issue 12)");
    for (const line of history.console) console.log(`# ${line}`);
    historyMarkdown = history.markdown;
    await Deno.writeTextFile(`${out}/history.md`, history.markdown + "\n");
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const list2 = verdicts(rows);
  console.log(`\n# targets (issue 3), run took ${minutes} min`);
  for (const v of list2) {
    console.log(
      `# ${v.met === null ? "n/a " : v.met ? "MET " : "MISS"} ${v.target}: ${v.measured}`,
    );
  }
  let web: string[] = [];
  if (withWeb) {
    console.log("\n# web rows: 1 sender x N WebSocket receivers, wirechat --web vs Node's ws");
    const webRows = await runWebRows(kind === "quick", env);
    web = typeof webRows === "string" ? [`Web rows skipped: ${webRows}.`] : webReport(webRows);
    for (const line of web.filter((l) => l.startsWith("- "))) console.log(`# ${line.slice(2)}`);
    await Deno.writeTextFile(`${out}/web.md`, web.join("\n") + "\n");
  }
  const title = `wirechat vs ncat --broker vs the brief's design: flood fan-out (${kind} run)`;
  const chart = svgChart(rows, title);
  const table = markdownTable(rows);
  await Deno.writeTextFile(`${out}/chart.svg`, chart);
  await Deno.writeTextFile(`${out}/table.md`, table + "\n");
  if (record) {
    const section = [
      `Latest full run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ` +
      `${minutes} minutes, \`${command}\`.`,
      "",
      ...machine.map((line) => `- ${line}`),
      "",
      "### Targets",
      "",
      markdownVerdicts(list2),
      "",
      "### Results",
      "",
      table,
      "",
      "![deliveries/s against displays, one line per server](tools/bench/chart.svg)",
      ...(web.length > 0 ? ["", "### Web rows (issue 13)", "", ...web] : []),
      ...(historyMarkdown ? ["", historyMarkdown] : []),
    ].join("\n");
    await recordRun(section, chart);
    console.log("# recorded in BENCHMARKS.md and tools/bench/chart.svg");
  }
  console.log(`# rows: ${jsonl}; table: ${out}/table.md; chart: ${out}/chart.svg`);
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
