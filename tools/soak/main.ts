/**
 * `deno task soak [--seconds N]`: runs the real server as a process and, for N seconds, all
 * at once: steady keyboards and displays that check every message arrives, in order and
 * intact; churn; slow displays; hostile clients; floods above the connection limit; and a
 * certificate reload by SIGHUP. Then, one at a time: keyboards holding partial frames, a
 * server behind many fast displays, and storms of connections reset at once (hunt.ts). After
 * every kind of attack a fresh display and keyboard must exchange a message within 1 s.
 * Then it checks that nothing was lost, that the server's peak memory stayed under a bound,
 * that its descriptors came back to where they were, that it is idle when idle, and that it
 * still accepts and relays. Exit status 1 if any check fails.
 *
 * @module
 */

import { DEFAULT_RELAY_OPTIONS } from "../../lib/server/relay.ts";
import { freshSeed, Prng } from "../fuzz/prng.ts";
import {
  type ChaosContext,
  FloodWindows,
  MALFORMED_KINDS,
  Tally,
  type Timeouts,
} from "./chaos_context.ts";
import { flood, slowDisplays, worker } from "./chaos.ts";
import { CHURN } from "./churn.ts";
import { malformedSweep, QUICK_HOSTILE, SLOW_HOSTILE } from "./hostile.ts";
import { HealthRecord } from "./health.ts";
import {
  type HuntContext,
  partialFramesPhase,
  type PhaseResult,
  resetStormPhase,
  serverBehindPhase,
} from "./hunt.ts";
import { sleep, type Target } from "./net.ts";
import { ServerProcess } from "../harness/server_process.ts";
import { hasProc, type ProcStats } from "../harness/proc_stats.ts";
import { writeThrowawayCerts } from "../throwaway_certs.ts";
import { SteadyDisplay, SteadyKeyboard } from "./steady.ts";
import { numberOption, parseProgramOptions, runTool, stringOption } from "../../lib/cli/args.ts";

const USAGE = `Usage: deno task soak [--seconds N] [--seed S] [--max-rss MIB] [--out DIR]
                      [--no-native-sockets]

Runs the server under steady load, churn, slow and hostile clients and connection floods for
N seconds (default 60); then, one at a time, keyboards holding partial frames, a server
behind 50 fast displays (plain, then TLS), and storms of connections reset at once (plain,
then TLS). After every kind of attack a fresh display and keyboard must exchange a message
within 1 s. At the end it checks: nothing lost, peak RSS under MIB (default 256), open
descriptors back to the baseline, no CPU spin when idle, and the server still relays.
Writes DIR/report.json and DIR/server.log (default bench-results/soak).

--no-native-sockets runs the server with that option: every connection on Deno's own
sockets, the fallback path, so that both paths can be soaked.

The server's time limits are scaled down for short runs so that each is hit several times;
from --seconds 240 on, the server runs with its defaults (but --max-connections 300).`;

/** Connections the soak's server allows, so that a flood above it stays cheap. */
const MAX_CONNECTIONS = 300;
/**
 * The soak server's --max-client-memory: well above what the mix holds (the displays that
 * never read share what they hold), well below what the partial-frames phase would.
 */
const CLIENT_MEMORY = 8 * 1024 * 1024;

/** The server's time limits for a run of `seconds`: the defaults, or shorter for short runs. */
export function timeoutsFor(seconds: number): Timeouts {
  const d = DEFAULT_RELAY_OPTIONS;
  const scaled = (fallback: number, divisor: number, floor: number) =>
    Math.min(fallback, Math.max(floor, Math.round(seconds / divisor * 10) / 10));
  return {
    identify: scaled(d.identifyTimeout, 8, 2),
    frame: scaled(d.frameTimeout, 6, 3),
    handshake: scaled(d.handshakeTimeout, 8, 2),
    softSeconds: scaled(d.softSeconds, 6, 3),
  };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** Names of the healthy exchanges that follow no one kind of attack. */
const END_OF_MIX = "the whole mix, at its end";
const END_OF_SOAK = "the end of the soak";

/** Runs the soak; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const values = parseProgramOptions(args, {
    seconds: { type: "string" },
    seed: { type: "string" },
    "max-rss": { type: "string" },
    out: { type: "string" },
    "no-native-sockets": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values === "help") {
    console.log(USAGE);
    return 0;
  }
  const seconds = numberOption(values, "seconds", 60, 5);
  const seed = Math.trunc(numberOption(values, "seed", freshSeed()));
  const maxRssMiB = numberOption(values, "max-rss", 256, 1);
  const out = stringOption(values, "out", "bench-results/soak");
  const rng = new Prng(seed);
  const timeouts = timeoutsFor(seconds);
  const certs = await writeThrowawayCerts(`${out}/certs`);
  const nativeOff = values["no-native-sockets"] === true;
  // A server from before an option existed is still soaked, and the check that needs it fails.
  const serverHelp = await ServerProcess.help();
  if (nativeOff && !serverHelp.includes("--no-native-sockets")) {
    throw new Error("this server has no --no-native-sockets option");
  }
  const clientMemory = serverHelp.includes("--max-client-memory") ? CLIENT_MEMORY : undefined;

  const serverArgs = [
    "--certs",
    `${out}/certs`,
    "--max-connections",
    String(MAX_CONNECTIONS),
    "--identify-timeout",
    String(timeouts.identify),
    "--frame-timeout",
    String(timeouts.frame),
    "--handshake-timeout",
    String(timeouts.handshake),
    "--soft-seconds",
    String(timeouts.softSeconds),
    ...(clientMemory ? ["--max-client-memory", String(clientMemory)] : []),
    ...(nativeOff ? ["--no-native-sockets"] : []),
  ];
  const server = await ServerProcess.startReference(
    serverArgs,
    { logFile: `${out}/server.log`, keepLog: false },
    () => rng.float(),
  );
  const plain: Target = { port: server.portOf("full server"), tls: false };
  const tls: Target = { port: server.portOf("full TLS server"), tls: true, caCert: certs.caCert };
  console.log(`soak: ${seconds} s, seed ${seed}; server pid ${server.pid}`);
  console.log(`  server: deno task server --reference --base-port BASE ${serverArgs.join(" ")}`);
  if (!clientMemory) console.log("  the server has no --max-client-memory option");
  console.log(
    `  time limits: identify ${timeouts.identify} s, frame ${timeouts.frame} s, ` +
      `handshake ${timeouts.handshake} s, soft backlog ${timeouts.softSeconds} s`,
  );
  const failures: string[] = [];
  const fail = (text: string) => failures.push(text);
  let report: Record<string, unknown> = {};
  try {
    report = await soak(server, {
      plain,
      tls,
      seconds,
      rng,
      timeouts,
      maxRssMiB,
      clientMemory,
      fail,
    });
  } finally {
    const status = await server.stop();
    if (status.code !== 0) fail(`the server exited with status ${status.code} on SIGTERM`);
    if (server.tally.crashes.length > 0) {
      fail(`the server's stderr shows a crash: ${server.tally.crashes.slice(0, 3).join(" | ")}`);
    }
  }
  const dropReasons = Object.fromEntries(
    [...server.tally.dropReasons].sort((a, b) => b[1] - a[1]),
  );
  console.log(`  server log: ${server.log.count} lines (${out}/server.log); drops by reason:`);
  for (const [reason, count] of Object.entries(dropReasons)) console.log(`    ${count}\t${reason}`);
  report = {
    ...report,
    seed,
    seconds,
    nativeSockets: !nativeOff,
    serverArgs,
    dropReasons,
    failures,
  };
  await Deno.writeTextFile(`${out}/report.json`, JSON.stringify(report, null, 2) + "\n");
  if (failures.length > 0) {
    console.log(`soak: FAILED (${failures.length}):`);
    for (const failure of failures) console.log(`  - ${failure}`);
    console.log(
      `  replay: deno task soak --seconds ${seconds} --seed ${seed}${
        nativeOff ? " --no-native-sockets" : ""
      }`,
    );
    return 1;
  }
  console.log("soak: OK");
  return 0;
}

interface SoakOptions {
  plain: Target;
  tls: Target;
  seconds: number;
  rng: Prng;
  timeouts: Timeouts;
  maxRssMiB: number;
  /** The server's --max-client-memory; undefined if it has no such option. */
  clientMemory: number | undefined;
  fail: (text: string) => void;
}

async function soak(server: ServerProcess, options: SoakOptions): Promise<Record<string, unknown>> {
  const { plain, tls, seconds, rng, timeouts, fail } = options;
  // On Linux a failed /proc read fails the run; the checks that needed it are then skipped.
  const statsFailures = new Set<string>();
  const stats = async (): Promise<ProcStats | undefined> => {
    try {
      return await server.stats();
    } catch (error) {
      const text = server.exited
        ? "the server's /proc figures could not be read: the process has ended"
        : `the server's /proc figures could not be read: ${(error as Error).message}`;
      if (!statsFailures.has(text)) fail(text);
      statsFailures.add(text);
      return undefined;
    }
  };
  // Steady displays first, so that they see every steady message from the first one.
  const identified = server.log.collect((line) => / identified as display/.test(line));
  const displays = [
    new SteadyDisplay("display 1 (plain, big-endian)", plain),
    new SteadyDisplay("display 2 (plain, little-endian)", plain, true),
    new SteadyDisplay("display 3 (TLS, big-endian)", tls),
    new SteadyDisplay("display 4 (TLS, little-endian)", tls, true),
  ];
  for (const display of displays) await display.connect();
  while (identified.length < displays.length) await sleep(20);
  const keyboards = [
    new SteadyKeyboard("k1-plain-be", plain, { rate: 150, window: 1500 }),
    new SteadyKeyboard("k2-plain-le", plain, { rate: 150, window: 1500, littleEndian: true }),
    new SteadyKeyboard("k3-tls-be", tls, { rate: 150, window: 1500 }),
    // Offers twice the server's default flood limit: it must be slowed down, not lose anything.
    new SteadyKeyboard("k4-over-rate", plain, {
      rate: 2 * DEFAULT_RELAY_OPTIONS.keyboardRate,
      window: 4000,
    }),
    // Long messages (24 KB at 20/s), so that a display that does not read falls behind soon.
    new SteadyKeyboard("k5-bulk", tls, { rate: 20, window: 40, size: 24_000 }),
  ];
  for (const keyboard of keyboards) await keyboard.connect();
  for (const keyboard of keyboards) keyboard.start(() => displays[0].seen(keyboard.name));
  await sleep(1000);
  const baseline = await stats();
  if (!hasProc()) console.log("  /proc is absent: memory and descriptor checks are skipped");
  else if (baseline) console.log(`  baseline: ${baseline.fds} fds, RSS ${mib(baseline.rssKiB)}`);

  const started = performance.now();
  const deadline = started + seconds * 1000;
  const tally = new Tally();
  const floodWindows = new FloodWindows();
  const health = new HealthRecord({
    plain,
    tls,
    ms: 1000,
    excused: (from, to) => floodWindows.overlaps(from, to),
    started,
  });
  const ctx: ChaosContext = {
    plain,
    tls,
    timeouts,
    maxConnections: MAX_CONNECTIONS,
    log: server.log,
    deadline,
    tally,
    floods: floodWindows,
    health,
  };
  const chaos: Promise<unknown>[] = [];
  for (let i = 0; i < 6; i++) chaos.push(worker(ctx, rng.fork(), CHURN));
  for (let i = 0; i < 2; i++) chaos.push(worker(ctx, rng.fork(), QUICK_HOSTILE, 40));
  for (let i = 0; i < 2; i++) chaos.push(worker(ctx, rng.fork(), SLOW_HOSTILE));
  chaos.push(malformedSweep(ctx, rng.fork()));
  const slow = [
    slowDisplays(ctx, "never reads"),
    slowDisplays(ctx, "reads a byte a second"),
    slowDisplays(ctx, "never reads", true),
  ];
  chaos.push(...slow);
  // Floods at a third and two thirds of the run, then every minute; a reload halfway.
  const events: Promise<unknown>[] = [];
  const floodTimes = [seconds / 3, (2 * seconds) / 3];
  for (let t = 90; t < seconds - 10; t += 60) floodTimes.push(t);
  const floods: string[] = [];
  for (const [i, t] of floodTimes.entries()) {
    // Every other flood on the TLS port.
    events.push(sleep(t * 1000).then(async () => floods.push(await flood(ctx, 100, i % 2 === 1))));
  }
  let reloaded = "";
  events.push(
    sleep(seconds * 500).then(async () => {
      const lines = server.log.collect((line) => /certificate reloaded/.test(line));
      server.kill("SIGHUP");
      for (let i = 0; i < 50 && lines.length < 2; i++) await sleep(100);
      reloaded = lines.length >= 2
        ? "both TLS listeners reloaded"
        : `${lines.length} of 2 reloaded`;
      tally.record("certificate reload (SIGHUP)", reloaded, lines.length >= 2);
      await health.after("certificate reload (SIGHUP)", true);
    }),
  );

  let peak: ProcStats | undefined = baseline;
  let peakFds = baseline?.fds ?? 0;
  const sampler = (async () => {
    let next = started + 10_000;
    while (performance.now() < deadline) {
      await sleep(1000);
      if (server.exited) return;
      const now = await stats();
      if (now) {
        peak = now;
        peakFds = Math.max(peakFds, now.fds);
      }
      if (performance.now() >= next) {
        next += 10_000;
        const elapsed = Math.round((performance.now() - started) / 1000);
        const delivered = displays.reduce((sum, d) => sum + d.delivered, 0);
        const runs = [...tally.scenarios.values()].reduce((sum, s) => sum + s.runs, 0);
        console.log(
          `  ${elapsed} s: ${delivered} steady messages delivered, ${runs} chaos clients, ` +
            (now ? `server RSS ${mib(now.rssKiB)}, ${now.fds} fds` : ""),
        );
      }
    }
  })();
  await Promise.all([...chaos, ...events, sampler]);
  if (server.exited) fail("the server process ended during the soak");
  await health.after(END_OF_MIX, true);
  // Latencies up to here are the mix's; the phases after pause keyboards by design.
  const mixSamples = displays.map((d) => new Map([...d.latencies].map(([k, l]) => [k, l.length])));

  // One at a time, with the steady clients still on (their messages must all arrive too).
  const hunt: HuntContext = {
    plain,
    tls,
    log: server.log,
    stats,
    clientMemory: options.clientMemory,
    frameTimeout: timeouts.frame,
  };
  const phases: PhaseResult[] = [];
  const phase = async (name: string, run: () => Promise<PhaseResult>) => {
    if (server.exited) return;
    let result: PhaseResult;
    const at = new Date().toISOString();
    try {
      result = await run();
      result.figures = { startedAt: at, ...result.figures };
    } catch (error) {
      result = { name, summary: "did not run to its end", problems: [`${error}`], figures: {} };
    }
    await health.after(result.name, true);
    const after = await stats();
    if (after) {
      result.summary += `; RSS then ${mib(after.rssKiB)} (peak ${mib(after.peakRssKiB)})`;
      result.figures.rssAfterMiB = Math.round(after.rssKiB / 102.4) / 10;
    }
    phases.push(result);
    for (const problem of result.problems) fail(`${result.name}: ${problem}`);
  };
  await phase("partial frames holding memory", () => partialFramesPhase(hunt));
  await phase("server behind (plain)", () => serverBehindPhase(hunt, plain, "plain"));
  await phase("server behind (TLS)", () => serverBehindPhase(hunt, tls, "TLS"));
  // Last: a server that stops accepting after one stops for a long time.
  await phase("reset storm (plain port)", () => resetStormPhase(hunt, plain, "plain"));
  await phase("reset storm (TLS port)", () => resetStormPhase(hunt, tls, "TLS"));

  // Drain: every steady message sent must reach every steady display.
  for (const keyboard of keyboards) await keyboard.stop();
  const drainDeadline = performance.now() + 20_000;
  const complete = () =>
    displays.every((d) => keyboards.every((k) => d.seen(k.name) >= k.sent) || d.ended);
  while (!complete() && performance.now() < drainDeadline) await sleep(100);
  let sent = 0;
  let lost = 0;
  for (const keyboard of keyboards) {
    sent += keyboard.sent;
    if (keyboard.failure) fail(keyboard.failure);
    for (const display of displays) {
      lost += Math.max(0, keyboard.sent - display.seen(keyboard.name));
    }
  }
  const delivered = displays.reduce((sum, d) => sum + d.delivered, 0);
  const problems = displays.flatMap((d) => d.problems);
  for (const display of displays) {
    if (display.ended) fail(`${display.label} was cut off: ${display.ended}`);
  }
  if (lost > 0) fail(`${lost} steady messages lost`);
  if (problems.length > 0) fail(`out of order or corrupted: ${problems.slice(0, 5).join("; ")}`);
  const overRate = keyboards[3];
  // Latency of the keyboards under the rate; the over-rate one waits, by design, in its socket.
  const samples = (mix: boolean) =>
    displays.flatMap((d, i) =>
      [...d.latencies].filter(([name]) => name !== overRate.name).flatMap(([name, l]) => {
        const mark = mixSamples[i].get(name) ?? 0;
        return mix ? l.slice(0, mark) : l.slice(mark);
      })
    ).sort((a, b) => a - b);
  const latencies = samples(true);
  const huntLatencies = samples(false);
  const percentile = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;

  // Descriptors back to the baseline once the chaos has gone (the steady clients remain).
  let final = await stats();
  const fdDeadline = performance.now() + 15_000;
  while (baseline && final && final.fds > baseline.fds && performance.now() < fdDeadline) {
    await sleep(250);
    final = await stats();
  }
  if (baseline && final && final.fds !== baseline.fds) {
    fail(`open descriptors ${final.fds} after the churn, not back to the baseline ${baseline.fds}`);
  }
  const peakRss = final?.peakRssKiB ?? peak?.peakRssKiB ?? 0;
  if (final && peakRss > options.maxRssMiB * 1024) {
    fail(`peak RSS ${mib(peakRss)} over the bound ${options.maxRssMiB} MiB`);
  }
  // Idle means idle: no spinning once the clients are quiet.
  let idleCpu = -1;
  if (final) {
    await sleep(500);
    const before = await stats();
    await sleep(3000);
    const after = await stats();
    if (before && after) {
      idleCpu = (after.cpuSeconds - before.cpuSeconds) / 3;
      if (idleCpu > 0.05) fail(`the server uses ${(idleCpu * 100).toFixed(0)}% CPU while idle`);
    }
  }
  await health.after(END_OF_SOAK, true);
  for (const failure of health.failures()) fail(failure);
  for (const display of displays) await display.close();
  for (const keyboard of keyboards) keyboard.close();
  for (const [name, count] of tally.scenarios) {
    for (const failure of count.failures) fail(`${name}: ${failure}`);
  }
  const slowDrops = await Promise.all(slow);
  if (seconds >= timeouts.softSeconds + 15) {
    const modes = ["never reads", "reads a byte a second", "never reads (TLS)"];
    for (const [i, mode] of modes.entries()) {
      if (slowDrops[i].length === 0) fail(`no slow display that ${mode} was dropped`);
    }
  }

  // The report.
  console.log("  the mix, by kind (runs, outcomes; healthy exchanges after, of 1 s at most):");
  for (const [name, count] of tally.scenarios) {
    const outcomes = [...count.outcomes].map(([o, n]) => `${n} ${o}`).join(", ");
    const failed = count.failed ? ` — ${count.failed} FAILED` : "";
    const after = health.summary(name);
    console.log(`    ${name}: ${count.runs} (${outcomes})${failed}${after ? `; ${after}` : ""}`);
  }
  for (const name of [MALFORMED_KINDS, END_OF_MIX]) {
    console.log(`    ${name}: ${health.summary(name)}`);
  }
  console.log("  one at a time, after the mix:");
  for (const result of phases) {
    const failed = result.problems.length ? ` — FAILED: ${result.problems.join("; ")}` : "";
    console.log(`    ${result.name}: ${result.summary}; ${health.summary(result.name)}${failed}`);
  }
  for (const summary of floods) console.log(`  flood: ${summary}`);
  console.log(
    `  steady: ${sent} messages sent by ${keyboards.length} keyboards, ${delivered} delivered to ` +
      `${displays.length} displays, lost ${lost}, out of order or corrupted ${problems.length}`,
  );
  console.log(
    `  latency under the rate (sampled): median ${percentile(0.5)} ms, 99th percentile ${
      percentile(0.99)
    } ms, ` +
      `max ${latencies.at(-1) ?? 0} ms (the mix); while the phases after it ran: median ${
        huntLatencies[Math.floor(huntLatencies.length / 2)] ?? 0
      } ms, max ${huntLatencies.at(-1) ?? 0} ms`,
  );
  console.log(
    `  over-rate keyboard: offered ${overRate.options.rate} msg/s, achieved ` +
      `${
        overRate.achievedRate.toFixed(0)
      } msg/s (server limit ${DEFAULT_RELAY_OPTIONS.keyboardRate}), lost 0 of it: ${
        displays.every((d) => d.seen(overRate.name) >= overRate.sent)
      }`,
  );
  if (baseline && final) {
    console.log(
      `  server: peak RSS ${mib(peakRss)} (bound ${options.maxRssMiB} MiB), fds ${baseline.fds} ` +
        `before, ${peakFds} at peak, ${final.fds} after; CPU ${final.cpuSeconds.toFixed(1)} s ` +
        `in all, ${(idleCpu * 100).toFixed(1)}% when idle`,
    );
  }
  console.log(`  after the soak: ${health.summary(END_OF_SOAK)}`);
  if (health.first) console.log(`  the first failed healthy exchange: ${health.first}`);
  return {
    sent,
    delivered,
    lost,
    outOfOrderOrCorrupted: problems.length,
    latencyMs: { median: percentile(0.5), p99: percentile(0.99), max: latencies.at(-1) ?? 0 },
    phasesLatencyMs: {
      median: huntLatencies[Math.floor(huntLatencies.length / 2)] ?? 0,
      max: huntLatencies.at(-1) ?? 0,
    },
    overRateKeyboard: {
      offered: overRate.options.rate,
      achieved: Math.round(overRate.achievedRate),
    },
    peakRssMiB: Math.round(peakRss / 102.4) / 10,
    fds: { baseline: baseline?.fds, peak: peakFds, after: final?.fds },
    cpuSeconds: final?.cpuSeconds,
    idleCpuPercent: idleCpu >= 0 ? Math.round(idleCpu * 1000) / 10 : undefined,
    floods,
    reload: reloaded,
    slowDisplayDropsSeconds: slowDrops.map((d) => d.map((ms) => Math.round(ms / 100) / 10)),
    scenarios: Object.fromEntries(
      [...tally.scenarios].map((
        [name, c],
      ) => [name, { runs: c.runs, failed: c.failed, outcomes: Object.fromEntries(c.outcomes) }]),
    ),
    health: Object.fromEntries(
      [...health.kinds].map(([name, h]) => [name, {
        checks: h.checks,
        maxMs: Math.round(h.maxMs),
        excused: h.excused,
        failures: h.failures,
      }]),
    ),
    phases: phases.map(({ name, summary, problems, figures }) => ({
      name,
      summary,
      problems,
      ...figures,
    })),
  };
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
