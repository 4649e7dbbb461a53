/**
 * `deno task fuzz-server [--seconds N] [--seed S] [--connections C] [--no-native-sockets]`:
 * runs the real server and throws random and mutated bytes at it from many connections at
 * once, on its plain and TLS ports: valid, mutated and random identify codes, then valid
 * frames, frames with one rule broken, mutations of valid frames and pure noise, in random
 * chunks at random pace. Some connections complete a TLS handshake and identify, then write
 * beneath TLS on the TCP connection: a replayed or mutated record of their own, a record with
 * a bad MAC, plain text, random bytes; the server must end those that break a record at once.
 * Every few seconds a storm of connections reset the moment they are made hits one of the
 * listeners, and a fresh display and keyboard must then exchange a message within 1 s. At the
 * end it checks that the server is alive, relays a healthy exchange on both ports, holds no
 * more descriptors than before, never complained about accepting, has "Uncaught" nowhere in
 * its stderr, and exits 0 on SIGTERM.
 *
 * @module
 */

import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { timedExchange } from "../soak/health.ts";
import {
  BENEATH_TLS,
  closeQuietly,
  dial,
  resetStorm,
  sleep,
  type Target,
  TlsBeneath,
  tryWrite,
} from "../soak/net.ts";
import { ServerProcess } from "../harness/server_process.ts";
import { hasProc, type ProcStats } from "../harness/proc_stats.ts";
import { writeThrowawayCerts } from "../throwaway_certs.ts";
import { concat, malformedFrame, mutate, randomFrames } from "./frames.ts";
import { freshSeed, Prng } from "./prng.ts";
import { numberOption, parseProgramOptions, runTool, stringOption } from "../../lib/cli/args.ts";

const USAGE = `Usage: deno task fuzz-server [--seconds N] [--seed S] [--connections C] [--out DIR]
                             [--no-native-sockets]

Throws random and mutated bytes at a running server from C connections at once (default 32)
for N seconds (default 60), some of them beneath TLS after a handshake, with a storm of
connections reset at once every few seconds (each followed by a healthy exchange within
1 s); then checks it is alive, relays a healthy exchange on its plain and TLS ports, holds
no more descriptors than before, never complained about accepting, and never printed
"Uncaught". --no-native-sockets runs the server with that option (every connection on
Deno's own sockets). Writes the server's log to DIR/server.log (default
bench-results/fuzz-server).`;

/** Connections in a reset storm. */
const STORM_SIZE = 300;
/** Lines at error or warn level about accepting: a failed accept is one connection's business. */
const ACCEPT_COMPLAINT = /^\S+ (error|warn) .*accept/;

/**
 * The fuzzer's steps in flight, by name: should the fuzzing never end, the watchdog's failure
 * names the steps it is stuck in.
 */
const inFlight = new Map<string, number>();

/** Awaits `work`, counted in {@linkcode inFlight} as `name` meanwhile. */
async function step<T>(name: string, work: Promise<T>): Promise<T> {
  inFlight.set(name, (inFlight.get(name) ?? 0) + 1);
  try {
    return await work;
  } finally {
    const left = inFlight.get(name)! - 1;
    if (left > 0) inFlight.set(name, left);
    else inFlight.delete(name);
  }
}

/** What the fuzzer sent, and what the server did about it. */
interface Counts {
  connections: number;
  bytes: number;
  closedByServer: number;
  closedByUs: number;
  connectFailures: number;
  /** Sessions that wrote beneath TLS, by what they wrote. */
  beneath: Map<string, { runs: number; ended: number; kept: number; keptBroken: number }>;
}

/** Ways of breaking a TLS session from beneath, beyond BENEATH_TLS's. */
const MUTATIONS = ["a replayed record of its own", "a record of its own with bits flipped"];
/** Not sure to break the session (a plausible record header makes the server wait). */
const RANDOM_BYTES = "random bytes";

/** The opening bytes: usually a valid identify code, sometimes a broken one. */
function opening(rng: Prng, littleEndian: boolean): Uint8Array {
  const r = rng.int(100);
  if (r < 45) return encodeIdentify("keyboard", littleEndian);
  if (r < 70) return encodeIdentify("display", littleEndian);
  if (r < 85) return rng.bytes(4);
  return mutate(
    rng,
    encodeIdentify(rng.chance(0.5) ? "keyboard" : "display", littleEndian),
    littleEndian,
  )
    .subarray(0, 4);
}

/** One piece of what follows the identify code. */
function piece(rng: Prng, littleEndian: boolean): Uint8Array {
  const r = rng.int(100);
  if (r < 35) return randomFrames(rng, rng.range(1, 8), littleEndian, 4096);
  if (r < 55) {
    return mutate(rng, randomFrames(rng, rng.range(1, 3), littleEndian, 512), littleEndian);
  }
  if (r < 70) return malformedFrame(rng, littleEndian).bytes;
  if (r < 85) return rng.bytes(rng.range(1, 2048));
  // The wrong byte order: every length looks absurd.
  return randomFrames(rng, rng.range(1, 3), !littleEndian, 1024);
}

/** One connection: connect, send an opening and pieces in random chunks, then leave. */
async function session(rng: Prng, targets: Target[], counts: Counts): Promise<void> {
  const target = rng.pick(targets);
  let conn: Deno.Conn;
  try {
    conn = await step(`dial ${target.tls ? "TLS" : "plain"}`, dial(target));
  } catch {
    counts.connectFailures++;
    return;
  }
  counts.connections++;
  let closedByServer = false;
  // Read and discard whatever comes back, so that a fuzzing display does not fill up.
  const reading = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    try {
      while ((await conn.read(buffer)) !== null) {
        // Discarded.
      }
      closedByServer = true;
    } catch {
      closedByServer = true;
    }
  })();
  const littleEndian = rng.chance(0.5);
  const stream = concat([
    opening(rng, littleEndian),
    ...Array.from({ length: rng.range(1, 12) }, () => piece(rng, littleEndian)),
  ]);
  for (let at = 0; at < stream.length && !closedByServer;) {
    const size = rng.chance(0.3) ? rng.range(1, 8) : rng.range(1, 4096);
    const chunk = stream.subarray(at, at + size);
    at += chunk.length;
    if (!(await step("write", tryWrite(conn, chunk)))) break;
    counts.bytes += chunk.length;
    if (rng.chance(0.2)) await sleep(rng.int(50));
  }
  // Leave at once, after a while, or wait for the server to end it (its time limits will).
  const wait = rng.pick([0, rng.int(500), 3000]);
  await step("read until leaving", Promise.race([reading, sleep(wait)]));
  if (closedByServer) counts.closedByServer++;
  else counts.closedByUs++;
  closeQuietly(conn);
  await step("read after close", reading);
}

/**
 * One TLS session that handshakes and identifies, sends a few pieces through TLS, then writes
 * beneath TLS. What is sure to break a record must end the session within 3 s.
 */
async function beneathSession(rng: Prng, tls: Target, counts: Counts): Promise<void> {
  let session: TlsBeneath;
  try {
    session = await step("beneath: connect", TlsBeneath.connect(tls, 5000));
  } catch {
    counts.connectFailures++;
    return;
  }
  counts.connections++;
  const littleEndian = rng.chance(0.5);
  await step("beneath: write through TLS", session.writeTls(opening(rng, littleEndian)));
  for (let i = rng.int(3); i > 0; i--) {
    await step("beneath: write through TLS", session.writeTls(piece(rng, littleEndian)));
  }
  const ways = [...Object.keys(BENEATH_TLS), ...MUTATIONS, RANDOM_BYTES];
  const way = rng.pick(ways);
  const records = session.lastRecords;
  let bytes: Uint8Array;
  if (way === MUTATIONS[0] && records) {
    bytes = records;
  } else if (way === MUTATIONS[1] && records && records.length > 5) {
    // Flips inside the first record's body: a flipped length would only make the server wait.
    bytes = records.slice();
    const end = Math.min(bytes.length, 5 + ((bytes[3] << 8) | bytes[4]));
    for (let i = rng.range(1, 4); i > 0; i--) bytes[rng.range(5, end - 1)] ^= 1 << rng.int(8);
  } else if (way in BENEATH_TLS) {
    bytes = BENEATH_TLS[way]((n) => rng.bytes(n));
  } else {
    bytes = rng.bytes(rng.range(1, 512));
  }
  const name = records || !MUTATIONS.includes(way) ? way : RANDOM_BYTES;
  const entry = counts.beneath.get(name) ?? { runs: 0, ended: 0, kept: 0, keptBroken: 0 };
  counts.beneath.set(name, entry);
  entry.runs++;
  // A session the server already ended (a broken opening) proves nothing here.
  const already = await step("beneath: ended?", session.waitEnded(0));
  await step("beneath: write raw", session.writeRaw(bytes));
  counts.bytes += bytes.length;
  const how = await step(
    "beneath: wait for the end",
    session.waitEnded(name === RANDOM_BYTES ? rng.int(500) : 3000),
  );
  session.destroy();
  if (how !== "open") {
    entry.ended++;
    counts.closedByServer++;
  } else {
    entry.kept++;
    counts.closedByUs++;
    if (name !== RANDOM_BYTES && already === "open") entry.keptBroken++;
  }
}

/**
 * Every `everyMs`, a storm of connections reset the moment they are made on one of the
 * listeners, then a healthy exchange of 1 s at most on that listener and on the plain and the
 * TLS port.
 */
async function storms(
  rng: Prng,
  listeners: (Target & { label: string })[],
  health: Target[],
  until: () => boolean,
  everyMs: number,
  failures: string[],
): Promise<string[]> {
  const summaries: string[] = [];
  while (!until()) {
    await sleep(everyMs / 2 + rng.int(everyMs));
    if (until()) break;
    const listener = rng.pick(listeners);
    const storm = await step("reset storm", resetStorm(listener.port, STORM_SIZE));
    // The listener stormed, and the plain and TLS ports checked at the end.
    const targets = [listener, ...health.filter((t) => t.port !== listener.port)];
    const checks = await step(
      "exchange after a storm",
      Promise.all(
        targets.map((target, i) =>
          timedExchange(target, `after-storm-${summaries.length}-${i}`, 1000)
        ),
      ),
    );
    const slowest = Math.max(...checks.map((c) => c.ms));
    const problems = checks.filter((c) => c.problem).map((c) => c.problem);
    summaries.push(
      `${listener.label}: ${storm.count} reset in ${storm.ms.toFixed(0)} ms, healthy after in ${
        slowest.toFixed(0)
      } ms${problems.length ? " FAILED" : ""}`,
    );
    for (const problem of problems) {
      failures.push(`no healthy exchange after a reset storm on the ${listener.label}: ${problem}`);
    }
  }
  return summaries;
}

/** Runs the server fuzzer; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const values = parseProgramOptions(args, {
    seconds: { type: "string" },
    seed: { type: "string" },
    connections: { type: "string" },
    out: { type: "string" },
    "no-native-sockets": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values === "help") {
    console.log(USAGE);
    return 0;
  }
  const seconds = numberOption(values, "seconds", 60, 1);
  const seed = Math.trunc(numberOption(values, "seed", freshSeed()));
  const workers = Math.trunc(numberOption(values, "connections", 32, 1, 10_000));
  const out = stringOption(values, "out", "bench-results/fuzz-server");
  const rng = new Prng(seed);
  const certs = await writeThrowawayCerts(`${out}/certs`);
  const nativeOff = values["no-native-sockets"] === true;
  if (nativeOff && !(await ServerProcess.help()).includes("--no-native-sockets")) {
    throw new Error("this server has no --no-native-sockets option");
  }
  const serverArgs = [
    "--certs",
    `${out}/certs`,
    "--identify-timeout",
    "2",
    "--frame-timeout",
    "2",
    "--handshake-timeout",
    "2",
    ...(nativeOff ? ["--no-native-sockets"] : []),
  ];
  const server = await ServerProcess.startReference(
    serverArgs,
    { logFile: `${out}/server.log`, keepLog: false },
    () => rng.float(),
  );
  const plain: Target = { port: server.portOf("full server"), tls: false };
  const tls: Target = { port: server.portOf("full TLS server"), tls: true, caCert: certs.caCert };
  // Noise on the TLS port both before the handshake (raw) and inside it.
  const targets = [plain, plain, plain, plain, plain, plain, { ...tls, tls: false }, tls];
  console.log(
    `fuzz-server: ${seconds} s, ${workers} connections at once, seed ${seed}${
      nativeOff ? ", native sockets off" : ""
    }`,
  );
  const failures: string[] = [];
  const counts: Counts = {
    connections: 0,
    bytes: 0,
    closedByServer: 0,
    closedByUs: 0,
    connectFailures: 0,
    beneath: new Map(),
  };
  // On Linux a failed /proc read fails the run; the check that needed it is then skipped.
  const stats = async (): Promise<ProcStats | undefined> => {
    try {
      return await server.stats();
    } catch (error) {
      failures.push(`the server's /proc figures could not be read: ${(error as Error).message}`);
      return undefined;
    }
  };
  const complaints = server.log.collect((line) => ACCEPT_COMPLAINT.test(line));
  let stormSummaries: string[] = [];
  try {
    const before = await stats();
    const deadline = performance.now() + seconds * 1000;
    const over = () => performance.now() >= deadline || server.exited;
    const listeners = server.endpoints.map(({ label, port, tls: isTls }) => ({
      label,
      port,
      tls: isTls,
      caCert: isTls ? certs.caCert : undefined,
    }));
    const stormsDone = storms(rng.fork(), listeners, [plain, tls], over, 4000, failures);
    // Every session and storm is bounded by the server's own time limits; should one still hang
    // (a connection the server neither serves nor closes), the run fails saying so, not hangs.
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<void>((resolve) => {
      watchdog = setTimeout(() => {
        const stuckIn = [...inFlight].map(([name, count]) => `${count} in ${name}`).join(", ");
        failures.push(
          `the fuzzing had not ended ${seconds + 60} s after it began: a connection the server ` +
            `neither served nor closed (replay with the seed); steps still waiting: ${
              stuckIn || "none"
            }`,
        );
        resolve();
      }, (seconds + 60) * 1000);
    });
    await Promise.race([
      stuck,
      Promise.all(Array.from({ length: workers }, async () => {
        const mine = rng.fork();
        while (!over()) {
          // One session in eight writes beneath TLS after a handshake.
          if (mine.chance(0.125)) await beneathSession(mine, tls, counts);
          else await session(mine, targets, counts);
        }
      })).then(async () => {
        stormSummaries = await stormsDone;
      }),
    ]);
    clearTimeout(watchdog);
    if (server.exited) failures.push("the server process ended during the fuzzing");
    const healthy: string[] = [];
    for (const [name, target] of [["plain", plain], ["TLS", tls]] as const) {
      const { problem, ms } = await timedExchange(target, `after fuzzing (${name})`, 1000);
      healthy.push(`${name} ${problem ? "FAILED" : `${ms.toFixed(0)} ms`}`);
      if (problem) failures.push(`a healthy ${name} exchange failed afterwards: ${problem}`);
    }
    console.log(`  healthy exchange afterwards: ${healthy.join(", ")}`);
    let after = await stats();
    for (let i = 0; i < 40 && before && after && after.fds > before.fds; i++) {
      await sleep(250);
      after = await stats();
    }
    if (!hasProc()) console.log("  /proc is absent: the descriptor check is skipped");
    if (before && after) {
      console.log(
        `  server: fds ${before.fds} before, ${after.fds} after; peak RSS ${
          (after.peakRssKiB / 1024).toFixed(1)
        } MiB`,
      );
      if (after.fds > before.fds) {
        failures.push(`the server holds ${after.fds - before.fds} more descriptors than before`);
      }
    }
  } finally {
    const status = await server.stop();
    if (status.code !== 0) failures.push(`the server exited with status ${status.code} on SIGTERM`);
  }
  if (complaints.length > 0) {
    failures.push(
      `the server complained about accepting (${complaints.length} lines): ${complaints[0]}`,
    );
  }
  if (server.tally.crashes.length > 0) {
    failures.push(
      `the server's stderr shows a crash: ${server.tally.crashes.slice(0, 3).join(" | ")}`,
    );
  }
  console.log(
    `  ${counts.connections} connections, ${(counts.bytes / 1e6).toFixed(1)} MB sent; ` +
      `${counts.closedByServer} ended by the server, ${counts.closedByUs} by the fuzzer` +
      (counts.connectFailures ? `, ${counts.connectFailures} connects refused` : ""),
  );
  for (const [way, entry] of counts.beneath) {
    console.log(
      `  beneath TLS, ${way}: ${entry.runs} sessions, ${entry.ended} ended by the server, ` +
        `${entry.kept} still open when the fuzzer left`,
    );
    if (entry.keptBroken > 0) {
      failures.push(
        `the server kept ${entry.keptBroken} of ${entry.runs} TLS sessions open 3 s after ` +
          `${way} beneath TLS`,
      );
    }
  }
  console.log(
    `  reset storms (${STORM_SIZE} connections each): ${stormSummaries.length}${
      stormSummaries.length ? `: ${stormSummaries.join("; ")}` : ""
    }`,
  );
  console.log("  the server's verdicts, by reason:");
  const reasons = [...server.tally.dropReasons].sort((a, b) => b[1] - a[1]);
  for (const [reason, count] of reasons.slice(0, 25)) console.log(`    ${count}\t${reason}`);
  if (reasons.length > 25) console.log(`    ... and ${reasons.length - 25} more kinds`);
  if (failures.length > 0) {
    console.log("fuzz-server: FAILED");
    for (const failure of failures) console.log(`  - ${failure}`);
    console.log(
      `  replay: deno task fuzz-server --seconds ${seconds} --seed ${seed}${
        nativeOff ? " --no-native-sockets" : ""
      }`,
    );
    return 1;
  }
  console.log("fuzz-server: OK, the server stayed up, relays, and released every connection");
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
