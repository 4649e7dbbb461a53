/**
 * One scenario against one server: start the server under test, run the load generator
 * (load.ts) in its own process, and turn what it measured into a row.
 *
 * @module
 */

import { Child, programCommand } from "../harness/program.ts";
import { denoPath, REPO_ROOT, taskFor } from "../harness/deno_tasks.ts";
import { SETTLE_MS, setupMs } from "./load.ts";
import { type Environment, wrap } from "./machine.ts";
import { readProc, tableListens } from "./proc.ts";
import { BUSY_PERCENT } from "./rounds.ts";
import type { BenchRow, LoadResult, LoadSpec, Scenario, ServerName } from "./types.ts";

export const HOST = "127.0.0.1";
/** Bytes per display a flood may have sent and not yet seen delivered (see LoadSpec). */
const FLOOD_WINDOW = 128 * 1024;
const HERE = new URL(".", import.meta.url);

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Resolves once `port` is listening (read from /proc/net/tcp: the peers log nothing, and
 * wirechat runs at --log-level warn); rejects with the server's last words if it exits first.
 */
async function waitListening(proc: Child, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exited) {
      throw new Error(`exited with code ${(await proc.status).code}: ${lastWords(proc)}`);
    }
    const table = await readProc("/proc/net/tcp");
    // No /proc: give the server a second.
    if (table === null) return void await pause(1000, proc);
    if (tableListens(table, port)) return;
    await pause(50, proc);
  }
  throw new Error(`did not start listening within ${ms / 1000} s`);
}

/** Waits `ms`, or less if the process exits meanwhile. */
async function pause(ms: number, proc: Child): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([proc.status, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

/** The last line the server wrote to stderr. */
function lastWords(proc: Child): string {
  return proc.stderr.tail.at(-1)?.slice(0, 160) ?? "";
}

function serverCommand(
  server: ServerName,
  port: number,
  tls: boolean,
  env: Environment,
  connections: number,
  extraArgs: readonly string[],
): string[] {
  const cert = `${env.certDir}/server.crt`;
  const key = `${env.certDir}/server.key`;
  switch (server) {
    case "wirechat":
    case "baseline": {
      // The same permissions as `deno task server`, read from deno.json; the baseline runs
      // its own main_server.ts, in its own checkout (see runOne).
      const script = server === "baseline" ? `${env.baselineDir}/main_server.ts` : "main_server.ts";
      return programCommand(script, [
        ...["--host", HOST, "--port", String(port)],
        ...["--keyboard-rate", "0", "--log-level", "warn"],
        ...(tls ? ["--cert", cert, "--key", key] : []),
        ...extraArgs,
      ], { permissions: taskFor("main_server.ts")?.flags });
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

/**
 * Runs one scenario against one server; never throws, bounded in time. `extraArgs` go to
 * wirechat's server only (the history rows' --history-db, say).
 */
export async function runOne(
  server: ServerName,
  s: Scenario,
  env: Environment,
  extraArgs: readonly string[] = [],
): Promise<BenchRow> {
  const row = emptyRow(server, s);
  if (env.missing[server]) {
    row.status = "skipped";
    row.note = env.missing[server]!;
    return row;
  }
  const port = freePort();
  const files = s.displays + s.keyboards + 64;
  const command = wrap(
    env,
    0,
    files,
    serverCommand(server, port, s.tls, env, s.displays + s.keyboards, extraArgs),
  );
  const wirechat = server === "wirechat" || server === "baseline";
  await using proc = new Child(server, command, {
    stdout: false,
    stderr: { keepAll: false },
    env: wirechat ? taskFor("main_server.ts")?.env : {},
    cwd: server === "baseline" ? env.baselineDir : undefined,
  });
  try {
    await waitListening(proc, port, 10_000);
  } catch (error) {
    row.note = `server ${error instanceof Error ? error.message : error}`;
    return row;
  }
  const spec: LoadSpec = {
    ...s,
    host: HOST,
    port,
    raw: server === "ncat",
    caFile: s.tls ? `${env.certDir}/root_ca.crt` : undefined,
    serverPid: proc.pid,
    windowBytes: FLOOD_WINDOW,
  };
  // wrap() put taskset/prlimit first: run that, with deno as its argument.
  const generator = wrap(env, 1, files, [denoPath()]);
  const args = [
    ...generator.slice(1),
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${env.certDir}`,
    "--allow-run=cat",
    new URL("load.ts", HERE).pathname,
    JSON.stringify(spec),
  ];
  const child = new Deno.Command(generator[0], {
    args,
    cwd: REPO_ROOT,
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
    row.note = `server exited (code ${(await proc.status).code}): ${lastWords(proc)}` +
      (row.note ? `; ${row.note}` : "");
  }
  return row;
}
