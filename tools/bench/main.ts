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
import { parseRunTask } from "../compile.ts";
import { SETTLE_MS, setupMs } from "./load.ts";
import { readProc, tableListens } from "./proc.ts";
import {
  formatTableLine,
  markdownTable,
  markdownVerdicts,
  svgChart,
  TABLE_WIDTHS,
  verdicts,
} from "./report.ts";
import {
  type BenchRow,
  type LoadResult,
  type LoadSpec,
  type Scenario,
  SERVER_NAMES,
  type ServerName,
} from "./types.ts";
import { runTool } from "../../lib/cli/args.ts";

const USAGE = `Usage: deno task bench [options]

  --quick          a short run (about a minute): fewer and shorter scenarios
  --smoke          a tiny run (seconds) for tests: a few displays, one second per row
  --servers LIST   comma-separated subset of ${SERVER_NAMES.join(",")} (default all)
  --only TEXT      only scenarios whose id contains TEXT (e.g. flood-1x100)
  --out DIR        where results go (default bench-results)
  --no-record      do not update BENCHMARKS.md and tools/bench/chart.svg (a full run does)
  --help           show this help
`;

const HOST = "127.0.0.1";
/** Bytes per display a flood may have sent and not yet seen delivered (see LoadSpec). */
const FLOOD_WINDOW = 128 * 1024;
/** Above this share of one core, a process is called the bottleneck of its row. */
const BUSY_PERCENT = 85;
const HERE = new URL(".", import.meta.url);
const ROOT = new URL("../../", import.meta.url);

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

/** What this machine offers the run. */
interface Environment {
  taskset: boolean;
  cores: number;
  /** The tools each server needs, or why it is skipped. */
  missing: Partial<Record<ServerName, string>>;
  fdLimit: { soft: number; hard: number } | null;
  certDir: string;
}

async function commandWorks(command: string, args: string[]): Promise<string | null> {
  try {
    const { success, stdout, stderr } = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) return null;
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    return text.trim().split("\n")[0] || "present";
  } catch {
    return null;
  }
}

async function fdLimit(): Promise<{ soft: number; hard: number } | null> {
  const limits = await readProc("/proc/self/limits");
  const match = limits?.match(/^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m);
  if (!match) return null;
  const value = (s: string) => (s === "unlimited" ? Infinity : Number(s));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/** Wraps a command so it runs on `cpu` and may open `files` descriptors. */
function wrap(env: Environment, cpu: number, files: number, command: string[]): string[] {
  let wrapped = command;
  if (env.taskset && env.cores >= 2) wrapped = ["taskset", "-c", String(cpu), ...wrapped];
  // Deno raises its own soft limit to the hard one; ncat and Python do not.
  if (env.fdLimit && env.fdLimit.soft < files) {
    const hard = Math.max(env.fdLimit.hard, files);
    wrapped = ["prlimit", `--nofile=${files}:${hard}`, ...wrapped];
  }
  return wrapped;
}

/**
 * The deno binary to start: this one, or `deno` from PATH where only that name may run (with
 * `--allow-run=deno`, a symlinked install resolves to the link, not to Deno.execPath()).
 */
function denoBinary(): string {
  const self = Deno.execPath();
  return Deno.permissions.querySync({ name: "run", command: self }).state === "granted"
    ? self
    : "deno";
}

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A server under test: its process, and the tail of what it wrote to stderr. */
class ServerProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  #stderr = "";
  #exited: Deno.CommandStatus | null = null;
  readonly done: Promise<Deno.CommandStatus>;

  constructor(command: string[], port: number) {
    this.port = port;
    this.child = new Deno.Command(command[0], {
      args: command.slice(1),
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.done = this.child.status.then((status) => this.#exited = status);
    this.#collect();
  }

  async #collect(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.child.stderr) {
        this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-4000);
      }
    } catch {
      // The process is gone.
    }
  }

  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** The last line the server wrote to stderr. */
  get lastWords(): string {
    return this.#stderr.trim().split("\n").at(-1)?.slice(0, 160) ?? "";
  }

  async waitListening(deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if (this.#exited) throw new Error(`exited with code ${this.#exited.code}: ${this.lastWords}`);
      const table = await readProc("/proc/net/tcp");
      if (table === null) {
        await sleep(1000); // No /proc: give the server a second.
        return;
      }
      if (tableListens(table, this.port)) return;
      await sleep(50);
    }
    throw new Error("did not start listening within 10 s");
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    try {
      this.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 3000);
    await this.done;
    clearTimeout(timer);
  }
}

function serverCommand(
  server: ServerName,
  port: number,
  tls: boolean,
  env: Environment,
  connections: number,
  serverTask: string,
): string[] {
  const cert = `${env.certDir}/server.crt`;
  const key = `${env.certDir}/server.key`;
  switch (server) {
    case "wirechat": {
      // The same permissions as `deno task server`, read from deno.json.
      const { flags, entry } = parseRunTask(serverTask);
      return [
        denoBinary(),
        "run",
        ...flags,
        entry,
        ...["--host", HOST, "--port", String(port)],
        ...["--keyboard-rate", "0", "--log-level", "warn"],
        ...(tls ? ["--cert", cert, "--key", key] : []),
      ];
    }
    case "ncat":
      return [
        "ncat",
        "--broker",
        ...["--listen", HOST, String(port)],
        ...["--max-conns", String(connections + 16)],
        ...(tls ? ["--ssl", "--ssl-cert", cert, "--ssl-key", key] : []),
      ];
    case "brief":
      return [
        "python3",
        new URL("brief_server.py", HERE).pathname,
        ...["--host", HOST, "--port", String(port)],
        ...(tls ? ["--cert", cert, "--key", key] : []),
      ];
  }
}

function emptyRow(server: ServerName, s: Scenario): BenchRow {
  return {
    server,
    scenario: s.id,
    mode: s.mode,
    keyboards: s.keyboards,
    displays: s.displays,
    textBytes: s.textSize,
    tls: s.tls,
    status: "failed",
    deliveriesPerSec: null,
    latencyMs: null,
    sent: null,
    lost: null,
    corrupt: null,
    orderHeld: null,
    serverCpuPct: null,
    serverPeakRssMiB: null,
    rssPerDisplayKiB: null,
    rssPerDisplayAfterKiB: null,
    generatorCpuPct: null,
    bound: null,
    note: "",
  };
}

function rowFrom(row: BenchRow, s: Scenario, result: LoadResult): BenchRow {
  const idle = s.mode === "idle";
  row.status = result.ok ? "ok" : "failed";
  row.note = result.error ?? "";
  if (!result.ok) return row;
  row.deliveriesPerSec = result.deliveriesPerSec;
  row.latencyMs = result.latency;
  row.sent = result.sent;
  row.lost = result.lost;
  row.corrupt = result.corrupt;
  row.orderHeld = result.outOfOrder === 0 && result.corrupt === 0;
  row.serverPeakRssMiB = result.serverPeakRssKiB / 1024;
  if (idle) {
    row.rssPerDisplayKiB = (result.serverRssHeldKiB - result.serverRssBaseKiB) / s.displays;
    row.rssPerDisplayAfterKiB = (result.serverRssAfterKiB - result.serverRssBaseKiB) /
      s.displays;
  } else {
    row.serverCpuPct = result.serverCpu;
    row.generatorCpuPct = result.generatorCpu;
    const server = result.serverCpu >= BUSY_PERCENT;
    const generator = result.generatorCpu >= BUSY_PERCENT;
    row.bound = server && generator ? "both" : server ? "server" : generator ? "generator" : null;
  }
  if (result.corrupt > 0) {
    row.note = `${result.corrupt} of ${s.displays} displays received a corrupt frame`;
  }
  return row;
}

/** Runs one scenario against one server; never throws, bounded in time. */
async function runOne(
  server: ServerName,
  s: Scenario,
  env: Environment,
  serverTask: string,
): Promise<BenchRow> {
  const row = emptyRow(server, s);
  if (env.missing[server]) {
    row.status = "skipped";
    row.note = env.missing[server]!;
    return row;
  }
  const port = freePort();
  const files = s.displays + s.keyboards + 64;
  const proc = new ServerProcess(
    wrap(
      env,
      0,
      files,
      serverCommand(server, port, s.tls, env, s.displays + s.keyboards, serverTask),
    ),
    port,
  );
  try {
    await proc.waitListening(Date.now() + 10_000);
  } catch (error) {
    await proc.stop();
    row.note = `server ${error instanceof Error ? error.message : error}`;
    return row;
  }
  const spec: LoadSpec = {
    ...s,
    host: HOST,
    port,
    raw: server === "ncat",
    caFile: s.tls ? `${env.certDir}/root_ca.crt` : undefined,
    serverPid: proc.child.pid,
    windowBytes: FLOOD_WINDOW,
  };
  // wrap() put taskset/prlimit first: run that, with deno as its argument.
  const command = wrap(env, 1, files, [denoBinary()]);
  const args = [
    ...command.slice(1),
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${env.certDir}`,
    "--allow-run=cat",
    new URL("load.ts", HERE).pathname,
    JSON.stringify(spec),
  ];
  const child = new Deno.Command(command[0], {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const budget = setupMs(s) + s.seconds * 1000 + SETTLE_MS + 20_000;
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, budget);
  const output = await child.output();
  clearTimeout(timer);
  const serverDied = proc.exited;
  await proc.stop();
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  let result: LoadResult | null = null;
  try {
    result = JSON.parse(text) as LoadResult;
  } catch {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").at(-1) ?? "";
    row.note = output.signal === "SIGKILL"
      ? `load generator killed after ${budget / 1000} s`
      : `load generator failed: ${err.slice(0, 160)}`;
    return row;
  }
  rowFrom(row, s, result);
  if (serverDied) {
    row.status = "failed";
    row.note = `server exited (code ${serverDied.code}): ${proc.lastWords}` +
      (row.note ? `; ${row.note}` : "");
  }
  return row;
}

/** The machine, for the record. */
async function describeMachine(env: Environment): Promise<string[]> {
  const cpuinfo = (await readProc("/proc/cpuinfo")) ?? "";
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const meminfo = (await readProc("/proc/meminfo")) ?? "";
  const memKiB = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const kernel = ((await readProc("/proc/sys/kernel/osrelease")) ?? "").trim();
  const ncat = await commandWorks("ncat", ["--version"]);
  const python = await commandWorks("python3", ["--version"]);
  return [
    `${model}, ${env.cores} cores, ${(memKiB / 1024 / 1024).toFixed(1)} GiB RAM, Linux ${kernel}`,
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); ${ncat ?? "ncat not installed"}; ${
      python ?? "python3 not installed"
    }`,
    env.taskset && env.cores >= 2
      ? "server pinned to CPU 0, load generator to CPU 1 (taskset)"
      : "no CPU pinning (taskset missing or one core)",
    `open files limit ${env.fdLimit?.soft ?? "?"} (soft) / ${env.fdLimit?.hard ?? "?"} (hard)` +
    (env.fdLimit && env.fdLimit.soft < 10_100 ? "; processes raised with prlimit" : ""),
  ];
}

const BEGIN = "<!-- bench:begin (written by deno task bench; edit outside these markers) -->";
const END = "<!-- bench:end -->";

/** Puts the generated section between the markers of BENCHMARKS.md, keeping the rest. */
export function spliceSection(document: string, section: string): string {
  const start = document.indexOf(BEGIN);
  const end = document.indexOf(END);
  const block = `${BEGIN}\n${section.trim()}\n${END}`;
  if (start < 0 || end < start) return `${document.trimEnd()}\n\n${block}\n`;
  return document.slice(0, start) + block + document.slice(end + END.length);
}

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
      "no-record": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const kind = values.smoke ? "smoke" : values.quick ? "quick" : "full";
  const servers = (values.servers?.split(",") ?? [...SERVER_NAMES]) as ServerName[];
  for (const name of servers) {
    if (!SERVER_NAMES.includes(name)) {
      console.error(`Unknown server "${name}": choose from ${SERVER_NAMES.join(", ")}.`);
      return 2;
    }
  }
  const list = scenarios(kind).filter((s) => !values.only || s.id.includes(values.only));
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
  };
  if (!(await commandWorks("ncat", ["--version"]))) {
    env.missing.ncat = "ncat not installed (Debian: apt-get install ncat); skipped";
  }
  if (!(await commandWorks("python3", ["--version"]))) {
    env.missing.brief = "python3 not installed; skipped";
  }
  if (list.some((s) => s.tls)) await writeThrowawayCerts(certDir);
  const serverTask = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.server;
  const machine = await describeMachine(env);
  const command = `deno task bench${argv.length ? " " + argv.join(" ") : ""}`;
  console.log(`# ${command}`);
  for (const line of machine) console.log(`# ${line}`);
  console.log(formatTableLine(null, TABLE_WIDTHS));

  const jsonl = `${out}/results.jsonl`;
  await Deno.writeTextFile(jsonl, "");
  const rows: BenchRow[] = [];
  const started = Date.now();
  const task = typeof serverTask === "string" ? serverTask : serverTask.command;
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
          runs.set(key, [...runs.get(key) ?? [], await runOne(server, s, env, task)]);
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
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const list2 = verdicts(rows);
  console.log(`\n# targets (issue 3), run took ${minutes} min`);
  for (const v of list2) {
    console.log(
      `# ${v.met === null ? "n/a " : v.met ? "MET " : "MISS"} ${v.target}: ${v.measured}`,
    );
  }
  const title = `wirechat vs ncat --broker vs the brief's design: flood fan-out (${kind} run)`;
  const chart = svgChart(rows, title);
  const table = markdownTable(rows);
  await Deno.writeTextFile(`${out}/chart.svg`, chart);
  await Deno.writeTextFile(`${out}/table.md`, table + "\n");
  if (record) {
    await Deno.writeTextFile(new URL("chart.svg", HERE), chart);
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
    ].join("\n");
    const path = new URL("BENCHMARKS.md", ROOT);
    const document = await Deno.readTextFile(path).catch(() => "# Benchmarks\n");
    await Deno.writeTextFile(path, spliceSection(document, section));
    // The repository's formatter aligns Markdown tables and indents SVG: keep
    // `deno task check` clean.
    const chartPath = new URL("chart.svg", HERE).pathname;
    try {
      await new Deno.Command(denoBinary(), { args: ["fmt", "--quiet", path.pathname, chartPath] })
        .output();
    } catch (error) {
      console.error(`# could not run deno fmt on what was recorded: ${error}`);
    }
    console.log("# recorded in BENCHMARKS.md and tools/bench/chart.svg");
  }
  console.log(`# rows: ${jsonl}; table: ${out}/table.md; chart: ${out}/chart.svg`);
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
