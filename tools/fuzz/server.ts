/**
 * `deno task fuzz-server [--seconds N] [--seed S] [--connections C]`: runs the real server and
 * throws random and mutated bytes at it from many connections at once, on its plain and TLS
 * ports: valid, mutated and random identify codes, then valid frames, frames with one rule
 * broken, mutations of valid frames and pure noise, in random chunks at random pace. Then it
 * checks that the server is alive, relays a healthy exchange on both ports, holds no more
 * descriptors than before, has "Uncaught" nowhere in its stderr, and exits 0 on SIGTERM.
 *
 * @module
 */

import { encodeIdentify } from "../../lib/identify.ts";
import { healthyExchange } from "../soak/health.ts";
import { closeQuietly, dial, sleep, type Target, tryWrite } from "../soak/net.ts";
import { ServerProcess } from "../soak/server_process.ts";
import { writeThrowawayCerts } from "../throwaway_certs.ts";
import { concat, malformedFrame, mutate, randomFrames } from "./frames.ts";
import { freshSeed, Prng } from "./prng.ts";
import { numberOption, parseProgramOptions, runTool, stringOption } from "../../lib/args.ts";

const USAGE = `Usage: deno task fuzz-server [--seconds N] [--seed S] [--connections C] [--out DIR]

Throws random and mutated bytes at a running server from C connections at once (default 32)
for N seconds (default 60), then checks it is alive, relays a healthy exchange on its plain
and TLS ports, holds no more descriptors than before, and never printed "Uncaught".
Writes the server's log to DIR/server.log (default bench-results/fuzz-server).`;

/** What the fuzzer sent, and what the server did about it. */
interface Counts {
  connections: number;
  bytes: number;
  closedByServer: number;
  closedByUs: number;
  connectFailures: number;
}

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
    conn = await dial(target);
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
    if (!(await tryWrite(conn, chunk))) break;
    counts.bytes += chunk.length;
    if (rng.chance(0.2)) await sleep(rng.int(50));
  }
  // Leave at once, after a while, or wait for the server to end it (its time limits will).
  const wait = rng.pick([0, rng.int(500), 3000]);
  await Promise.race([reading, sleep(wait)]);
  if (closedByServer) counts.closedByServer++;
  else counts.closedByUs++;
  closeQuietly(conn);
  await reading;
}

/** Runs the server fuzzer; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const values = parseProgramOptions(args, {
    seconds: { type: "string" },
    seed: { type: "string" },
    connections: { type: "string" },
    out: { type: "string" },
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
  const serverArgs = [
    "--certs",
    `${out}/certs`,
    "--identify-timeout",
    "2",
    "--frame-timeout",
    "2",
    "--handshake-timeout",
    "2",
  ];
  const server = await ServerProcess.startReference(
    serverArgs,
    { logFile: `${out}/server.log` },
    () => rng.float(),
  );
  const plain: Target = { port: server.port("full server"), tls: false };
  const tls: Target = { port: server.port("full TLS server"), tls: true, caCert: certs.caCert };
  // Noise on the TLS port both before the handshake (raw) and inside it.
  const targets = [plain, plain, plain, plain, plain, plain, { ...tls, tls: false }, tls];
  console.log(`fuzz-server: ${seconds} s, ${workers} connections at once, seed ${seed}`);
  const failures: string[] = [];
  const counts: Counts = {
    connections: 0,
    bytes: 0,
    closedByServer: 0,
    closedByUs: 0,
    connectFailures: 0,
  };
  try {
    const before = await server.stats();
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: workers }, async () => {
      const mine = rng.fork();
      while (performance.now() < deadline && !server.exited) {
        await session(mine, targets, counts);
      }
    }));
    if (server.exited) failures.push("the server process ended during the fuzzing");
    for (const [name, target] of [["plain", plain], ["TLS", tls]] as const) {
      const problem = await healthyExchange(target, `after fuzzing (${name})`);
      if (problem) failures.push(`a healthy ${name} exchange failed afterwards: ${problem}`);
    }
    let after = await server.stats();
    for (let i = 0; i < 40 && before && after && after.fds > before.fds; i++) {
      await sleep(250);
      after = await server.stats();
    }
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
  if (server.log.crashes.length > 0) {
    failures.push(
      `the server's stderr shows a crash: ${server.log.crashes.slice(0, 3).join(" | ")}`,
    );
  }
  console.log(
    `  ${counts.connections} connections, ${(counts.bytes / 1e6).toFixed(1)} MB sent; ` +
      `${counts.closedByServer} ended by the server, ${counts.closedByUs} by the fuzzer` +
      (counts.connectFailures ? `, ${counts.connectFailures} connects refused` : ""),
  );
  console.log("  the server's verdicts, by reason:");
  const reasons = [...server.log.dropReasons].sort((a, b) => b[1] - a[1]);
  for (const [reason, count] of reasons.slice(0, 25)) console.log(`    ${count}\t${reason}`);
  if (reasons.length > 25) console.log(`    ... and ${reasons.length - 25} more kinds`);
  if (failures.length > 0) {
    console.log("fuzz-server: FAILED");
    for (const failure of failures) console.log(`  - ${failure}`);
    console.log(`  replay: deno task fuzz-server --seconds ${seconds} --seed ${seed}`);
    return 1;
  }
  console.log("fuzz-server: OK, the server stayed up, relays, and released every connection");
  return 0;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
