/**
 * The benchmark's load generator, run as its own process beside the server under test.
 *
 * Keyboards stamp every text with their number, a sequence number and the send time (see
 * stamp.ts); displays cut their stream into frames, check every frame byte for byte against
 * what that keyboard sent, check the order, and record the latency of every message.
 *
 * Every frame of a run has one length and one header (all keyboards send one username, one
 * time and one text size), so a display needs no general decoder: a frame is valid exactly
 * when its header equals the run's, byte for byte, and its text is a readable stamp and the
 * right filler. That is stricter than validation, and about twice as fast as decoding with
 * lib/protocol/frame_decoder.ts, which matters because one core checks everything every display gets.
 * The one JSON line on stdout is a {@linkcode LoadResult}.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-read --allow-run=cat load.ts '<LoadSpec>'`
 * (the spec as JSON; `cat` reads the server's /proc files, see proc.ts).
 *
 * @module
 */

import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { localTimestamp } from "../../lib/protocol/time.ts";
import { writeAll } from "../../lib/net/wire_io.ts";
import { dial } from "../../lib/net/transport.ts";
import process from "node:process";
import { Histogram } from "./histogram.ts";
import { sampleProcess } from "./proc.ts";
import { KIND_MESSAGE, KIND_PROBE } from "./stamp.ts";
import type { LoadResult, LoadSpec } from "./types.ts";
import { Display, type DisplayRun, FrameShape, sleep } from "./display_check.ts";

/** Time allowed to connect every client and see every display registered. */
export function setupMs(spec: { displays: number }): number {
  return 20_000 + spec.displays * 8;
}

/** How long idle displays sit before the server's memory is read. */
const IDLE_SETTLE_MS = 2_000;
/** Longest wait, after sending stops, for what is in flight to arrive. */
export const SETTLE_MS = 30_000;
/**
 * Displays connecting at once. One at a time without identify codes: a display that sends
 * nothing cannot finish a handshake the server's full accept queue dropped, and would wait
 * for the kernel's SYN-ACK retries (seconds) before ncat ever sees it.
 */
const CONNECT_CONCURRENCY = { identified: 64, raw: 1 };

/** The state of one generator run. */
class Run implements DisplayRun {
  readonly spec: LoadSpec;
  readonly shape: FrameShape;
  readonly latency = new Histogram();
  readonly displays: Display[] = [];
  readonly keyboards: Deno.Conn[] = [];
  readonly sent: number[];
  delivered = 0;
  /** Displays that have received a probe from every keyboard. */
  registered = 0;
  /** An error of the generator itself, which invalidates the run. */
  failure: unknown;
  #wake: (() => void) | undefined;
  #woken: Promise<void> | undefined;

  constructor(spec: LoadSpec) {
    this.spec = spec;
    this.shape = new FrameShape(spec.textSize, localTimestamp());
    this.sent = new Array(spec.keyboards).fill(0);
  }

  /** Resolves the next time any display has read something. */
  progress(): Promise<void> {
    return this.#woken ??= new Promise((resolve) => this.#wake = resolve);
  }

  onData(): void {
    if (this.#wake) {
      const wake = this.#wake;
      this.#wake = undefined;
      this.#woken = undefined;
      wake();
    }
  }

  /** The lowest count of keyboard `kb`'s messages any display has received. */
  slowest(kb: number): number {
    let low = Infinity;
    for (const display of this.displays) {
      if (display.next[kb] < low) low = display.next[kb];
    }
    return low;
  }
}

function connect(spec: LoadSpec, caCerts: string[] | undefined): Promise<Deno.Conn> {
  return dial({ host: spec.host, port: spec.port, tls: spec.tls, caCerts, noDelay: true });
}

async function connectAll(run: Run, caCerts: string[] | undefined): Promise<void> {
  const { spec } = run;
  // 64 KiB reads: with 100 displays in flood, 1.4-2x the frames checked per second of 16 KiB
  // reads (fewer reads, each of a whole coalesced write); 256 KiB gained nothing more.
  const bufferSize = spec.displays > 2000 ? 4096 : 64 * 1024;
  let next = 0;
  const worker = async () => {
    while (next < spec.displays) {
      next++;
      const conn = await connect(spec, caCerts);
      if (!spec.raw) await writeAll(conn, encodeIdentify("display"));
      const display = new Display(conn, spec.keyboards);
      run.displays.push(display);
      display.run(run, bufferSize);
    }
  };
  const concurrency = spec.raw ? CONNECT_CONCURRENCY.raw : CONNECT_CONCURRENCY.identified;
  await Promise.all(Array.from({ length: Math.min(concurrency, spec.displays) }, worker));
  for (let kb = 0; kb < spec.keyboards; kb++) {
    const conn = await connect(spec, caCerts);
    if (!spec.raw) await writeAll(conn, encodeIdentify("keyboard"));
    run.keyboards.push(conn);
    // ncat sends each keyboard what the others send: drain it so ncat never blocks on us.
    drain(conn);
  }
}

async function drain(conn: Deno.Conn): Promise<void> {
  const sink = new Uint8Array(64 * 1024);
  try {
    while ((await conn.read(sink)) !== null);
  } catch {
    // Closed.
  }
}

/** Sends probes until every display has one from every keyboard: then all are registered. */
async function probe(run: Run, deadline: number): Promise<void> {
  const { shape, spec } = run;
  const frame = new Uint8Array(shape.length);
  let interval = 100;
  for (;;) {
    for (let kb = 0; kb < spec.keyboards; kb++) {
      shape.write(frame, 0, KIND_PROBE, kb, 0);
      await writeAll(run.keyboards[kb], frame);
    }
    // Probe again after 100 ms, then less often: a slow fan-out should not queue up probes.
    const waitUntil = Date.now() + interval;
    interval = Math.min(interval * 2, 1600);
    while (Date.now() < waitUntil) {
      if (run.registered === spec.displays) return;
      await Promise.race([run.progress(), sleep(20)]);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `only ${run.registered} of ${spec.displays} displays received a probe from every keyboard`,
      );
    }
  }
}

async function flood(run: Run, kb: number, until: number): Promise<void> {
  const { shape, spec } = run;
  const conn = run.keyboards[kb];
  const window = Math.max(1, Math.floor(spec.windowBytes / spec.keyboards / shape.length));
  const batchFrames = Math.max(1, Math.floor(64 * 1024 / shape.length));
  const batch = new Uint8Array(batchFrames * shape.length);
  while (performance.now() < until) {
    const room = run.slowest(kb) + window - run.sent[kb];
    if (room <= 0) {
      await Promise.race([run.progress(), sleep(50)]);
      continue;
    }
    const n = Math.min(room, batchFrames);
    for (let i = 0; i < n; i++) {
      shape.write(batch, i * shape.length, KIND_MESSAGE, kb, run.sent[kb] + i);
    }
    await writeAll(conn, batch.subarray(0, n * shape.length));
    run.sent[kb] += n;
  }
}

async function paced(run: Run, kb: number, start: number, until: number): Promise<void> {
  const { shape, spec } = run;
  const rate = spec.rate ?? 100;
  const conn = run.keyboards[kb];
  const offset = (kb / spec.keyboards) * 1000 / rate;
  const frames = new Uint8Array(shape.length * 64);
  for (;;) {
    const now = performance.now();
    if (now >= until) return;
    const due = Math.floor((now - start - offset) * rate / 1000) + 1 - run.sent[kb];
    const n = Math.min(due, 64);
    if (n > 0) {
      for (let i = 0; i < n; i++) {
        shape.write(frames, i * shape.length, KIND_MESSAGE, kb, run.sent[kb] + i);
      }
      await writeAll(conn, frames.subarray(0, n * shape.length));
      run.sent[kb] += n;
    }
    const nextAt = start + offset + (run.sent[kb] * 1000) / rate;
    await sleep(Math.max(0, nextAt - performance.now()));
  }
}

/** Waits until every display has every message sent, or nothing has arrived for `quietMs`. */
async function settle(run: Run, deadline: number, quietMs: number): Promise<void> {
  const total = run.sent.reduce((a, b) => a + b, 0);
  let last = run.delivered;
  let lastChange = performance.now();
  while (performance.now() < deadline) {
    if (run.delivered >= total * run.displays.length) return;
    await Promise.race([run.progress(), sleep(50)]);
    if (run.delivered !== last) {
      last = run.delivered;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > quietMs) {
      return;
    }
  }
}

function emptyResult(): LoadResult {
  return {
    ok: false,
    connected: 0,
    sent: 0,
    expected: 0,
    delivered: 0,
    deliveriesPerSec: 0,
    sentPerSec: 0,
    lost: 0,
    corrupt: 0,
    outOfOrder: 0,
    latency: null,
    serverCpu: 0,
    generatorCpu: 0,
    serverRssBaseKiB: 0,
    serverRssHeldKiB: 0,
    serverRssAfterKiB: 0,
    serverPeakRssKiB: 0,
    windowSeconds: 0,
  };
}

/** Drives one server through one scenario; never throws, never outlives its time bound. */
export async function generate(spec: LoadSpec): Promise<LoadResult> {
  const result = emptyResult();
  const run = new Run(spec);
  const pid = spec.serverPid;
  result.serverRssBaseKiB = (await sampleProcess(pid))?.rssKiB ?? 0;
  const setupDeadline = Date.now() + setupMs(spec);
  try {
    const caCerts = spec.caFile ? [await Deno.readTextFile(spec.caFile)] : undefined;
    await connectAll(run, caCerts);
    if (spec.mode === "idle") {
      // Idle displays held, before any message: the "then one message" comes after.
      await sleep(IDLE_SETTLE_MS);
      result.serverRssHeldKiB = (await sampleProcess(pid))?.rssKiB ?? 0;
    }
    await probe(run, setupDeadline);

    const server0 = await sampleProcess(pid);
    const self0 = process.cpuUsage();
    const delivered0 = run.delivered;
    const start = performance.now();
    const until = start + spec.seconds * 1000;
    let windowEnd: number;
    if (spec.mode === "idle") {
      const frame = new Uint8Array(run.shape.length);
      run.shape.write(frame, 0, KIND_MESSAGE, 0, 0);
      await writeAll(run.keyboards[0], frame);
      run.sent[0] = 1;
      await settle(run, until, spec.seconds * 1000);
      const last = Math.max(...run.displays.map((d) => d.lastAt));
      windowEnd = Math.max(start + 0.001, last / 1000);
    } else {
      const senders = run.keyboards.map((_, kb) =>
        spec.mode === "flood" ? flood(run, kb, until) : paced(run, kb, start, until)
      );
      await Promise.all(senders);
      windowEnd = performance.now();
    }
    const self1 = process.cpuUsage(self0);
    const server1 = await sampleProcess(pid);
    const window = (windowEnd - start) / 1000;
    const inWindow = run.delivered - delivered0;
    await settle(run, performance.now() + SETTLE_MS, 2_000);

    const sent = run.sent.reduce((a, b) => a + b, 0);
    result.serverRssAfterKiB = (await sampleProcess(pid))?.rssKiB ?? 0;
    result.ok = true;
    result.connected = run.displays.length;
    result.sent = sent;
    result.expected = sent * spec.displays;
    result.delivered = run.delivered;
    result.windowSeconds = window;
    result.deliveriesPerSec = inWindow / window;
    result.sentPerSec = spec.mode === "idle" ? 0 : sent / window;
    result.lost = result.expected - run.delivered;
    result.corrupt = run.displays.reduce((a, d) => a + d.corrupt, 0);
    result.outOfOrder = run.displays.reduce((a, d) => a + d.outOfOrder, 0);
    if (server0 && server1) {
      result.serverCpu = (100 * (server1.cpuSeconds - server0.cpuSeconds)) / window;
    }
    result.generatorCpu = (self1.user + self1.system) / 1e4 / window;
    if (run.failure !== undefined) throw run.failure;
  } catch (error) {
    result.ok = false;
    result.connected = run.displays.length;
    result.error = `load generator: ${error instanceof Error ? error.message : String(error)}`;
  }
  const h = run.latency;
  if (h.count > 0) {
    result.latency = {
      p50: h.quantile(0.5) / 1000,
      p99: h.quantile(0.99) / 1000,
      p999: h.quantile(0.999) / 1000,
      max: h.max / 1000,
      samples: h.count,
    };
  }
  result.serverPeakRssKiB = (await sampleProcess(pid))?.peakRssKiB ?? 0;
  return result;
}

if (import.meta.main) {
  const spec = JSON.parse(Deno.args[0]) as LoadSpec;
  const result = await generate(spec);
  console.log(JSON.stringify(result));
  // Open connections and their pending reads would keep the process alive: leave now.
  Deno.exit(0);
}
