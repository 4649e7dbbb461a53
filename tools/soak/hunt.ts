/**
 * The soak's attacks that run one at a time, after the mix of everything else (with the
 * steady clients still on): each would drown what the mix checks, or needs the server to
 * itself to be measured. Each returns one line of figures and what it found wrong; the soak
 * then checks that a fresh display and keyboard still exchange a message within 1 s.
 *
 * - reset storm: hundreds of connections, each reset (RST) the moment it is made. A server
 *   that takes a peer gone before its accept completed for a process-wide fault stops
 *   accepting for everyone.
 * - partial frames: keyboards that each send all but the last byte of a 64 KiB frame and wait.
 *   Past the server's --max-client-memory the biggest holders must be dropped at once, and
 *   the memory must come back once they have gone.
 * - server behind: many displays that read as fast as they can, and keyboards that send as
 *   fast as they are let. No fast display may be dropped or miss a frame: the server must
 *   stop reading keyboards while it is behind rather than drop the displays. A display that
 *   never reads sits among them, and may be dropped.
 *
 * @module
 */

import { DEFAULT_RELAY_OPTIONS } from "../../lib/server/relay.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { concat } from "../fuzz/frames.ts";
import {
  closeQuietly,
  dial,
  type Ending,
  readUntilClosed,
  resetStorm,
  sleep,
  type Target,
  tryWrite,
} from "./net.ts";
import type { Lines as ServerLog } from "../harness/lines.ts";
import type { ProcStats } from "../harness/proc_stats.ts";

/** What a phase needs to know about the server. */
export interface HuntContext {
  plain: Target;
  tls: Target;
  log: ServerLog;
  /** The server's /proc figures (undefined where there is none; throws if a read fails). */
  stats: () => Promise<ProcStats | undefined>;
  /** The server's --max-client-memory, bytes; undefined if the server has no such option. */
  clientMemory: number | undefined;
  /** The server's --frame-timeout, seconds. */
  frameTimeout: number;
}

/** What one phase did: a line of figures, what went wrong, and the figures for the report. */
export interface PhaseResult {
  name: string;
  summary: string;
  problems: string[];
  figures: Record<string, unknown>;
}

/** Connections in a reset storm. */
export const STORM_SIZE = 300;

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const portPattern = (ports: Iterable<number>) => new Set([...ports].map(String));
/** The peer port and the rest of a server log line about one client. */
const PEER_LINE = /127\.0\.0\.1:(\d+) (dropped|disconnected) \((\w+)\): (.*)$/;

/** Lines at error or warn level about accepting: a failed accept is one connection's business. */
const ACCEPT_COMPLAINT = /^\S+ (error|warn) .*accept/;

/** A storm of connections reset at once on `target`'s port. */
export async function resetStormPhase(
  ctx: HuntContext,
  target: Target,
  label: string,
): Promise<PhaseResult> {
  const name = `reset storm (${label} port)`;
  const complaints = ctx.log.collect((line) => ACCEPT_COMPLAINT.test(line));
  const storm = await resetStorm(target.port, STORM_SIZE);
  // The server meets the last of them a moment later.
  await sleep(300);
  const errors = [...storm.errors].map(([code, n]) => `${n} ${code}`).join(", ");
  const problems = complaints.slice(0, 1).map((line) =>
    `the server complained about accepting (${complaints.length} lines): ${line}`
  );
  return {
    name,
    summary: `${storm.count} connections reset the moment they were made, in ${
      storm.ms.toFixed(0)
    } ms${errors ? ` (${errors})` : ""}; accept complaints in the log: ${complaints.length}`,
    problems,
    figures: {
      connections: storm.count,
      ms: Math.round(storm.ms),
      errors: Object.fromEntries(storm.errors),
      acceptComplaints: complaints.length,
    },
  };
}

/** Keyboards in the partial-frames phase, on the plain and the TLS port. */
const PARTIAL_PLAIN = 200;
const PARTIAL_TLS = 40;
/** The announced overall_length: the frame is 65535 bytes in all. */
const PARTIAL_OVERALL = 65535 - 4;
/** How far above its start the server's RSS may stay once the partial frames are gone. */
const PARTIAL_RETURN_SLACK = 16 * MiB;

/** A valid frame of PARTIAL_OVERALL, for keyboards to send all of but its last byte. */
function partialFrame(): Uint8Array {
  const username = "partial";
  const text = "p".repeat(PARTIAL_OVERALL - 32 - username.length);
  const time = { year: 2024, month: 3, day: 4, hour: 5, minute: 6, second: 7 };
  return encodeFrame({ username, time, text });
}

/**
 * Keyboards that each send one frame but its last byte, and wait; then leave. Checks that the
 * server dropped enough of them at once to stay within --max-client-memory, and that its
 * memory came back.
 */
export async function partialFramesPhase(ctx: HuntContext): Promise<PhaseResult> {
  const name = "partial frames holding memory";
  const problems: string[] = [];
  const frame = partialFrame();
  const opening = concat([encodeIdentify("keyboard"), frame.subarray(0, frame.length - 1)]);
  const count = PARTIAL_PLAIN + PARTIAL_TLS;
  const held = count * (frame.length - 1);
  const budget = ctx.clientMemory;
  // Hold them for less than the frame timeout, which would drop them all anyway: whoever the
  // server has not dropped by then counts as held, so the budget must act at once.
  const holdMs = Math.max(1000, Math.min(2000, ctx.frameTimeout * 1000 - 1500));
  const lines = ctx.log.collect((line) => PEER_LINE.test(line));
  const before = await ctx.stats();
  const started = performance.now();
  const ports: number[] = [];
  const open = async (target: Target): Promise<Ending> => {
    let conn: Deno.Conn;
    try {
      conn = await dial(target);
    } catch (error) {
      return { how: "error", ms: 0, bytes: 0, detail: `connect failed: ${error}` };
    }
    ports.push((conn.localAddr as Deno.NetAddr).port);
    await tryWrite(conn, opening);
    // Until the server ends it, or the hold is over and we do.
    return await readUntilClosed(conn, holdMs - (performance.now() - started));
  };
  const endings: Promise<Ending>[] = [];
  for (let i = 0; i < count; i += 40) {
    for (let j = i; j < Math.min(count, i + 40); j++) {
      endings.push(open(j < PARTIAL_PLAIN ? ctx.plain : ctx.tls));
    }
    await sleep(10);
  }
  let peakRss = before?.rssKiB ?? 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(200);
      const stats = await ctx.stats();
      if (stats) peakRss = Math.max(peakRss, stats.rssKiB);
    }
  })();
  const ended = await Promise.all(endings);
  sampling = false;
  await sampler;
  // Let the server see them go, and free what they held.
  await sleep(1500);
  const after = await ctx.stats();
  const mine = portPattern(ports);
  const ours = lines.map((line) => PEER_LINE.exec(line)!).filter((m) => mine.has(m[1]));
  const overBudget = ours.filter((m) => m[2] === "dropped" && /client memory budget/.test(m[4]));
  const otherDrops = ours.filter((m) => m[2] === "dropped" && !/client memory budget/.test(m[4]));
  const closedByServer = ended.filter((e) => e.how === "eof" || e.how === "reset");
  const failedConnects = ended.filter((e) => e.how === "error");
  if (failedConnects.length > 0) {
    problems.push(`${failedConnects.length} keyboards failed: ${failedConnects[0].detail}`);
  }
  const keep = budget ? Math.floor(budget / (frame.length - 1)) : count;
  if (budget === undefined) {
    problems.push(
      "the server has no --max-client-memory option: nothing bounds what " +
        `${count} partial frames hold`,
    );
  } else if (held > budget && count - overBudget.length > keep) {
    problems.push(
      `${overBudget.length} of ${count} keyboards dropped over the client memory budget: the ` +
        `${count - overBudget.length} left hold ${
          mib((count - overBudget.length) * (frame.length - 1))
        }, over the budget of ${mib(budget)} (at least ${count - keep} should have gone)`,
    );
  }
  if (otherDrops.length > 0) {
    problems.push(`${otherDrops.length} dropped for another reason: ${otherDrops[0][4]}`);
  }
  if (before && after && after.rssKiB * 1024 > before.rssKiB * 1024 + PARTIAL_RETURN_SLACK) {
    problems.push(
      `the server's RSS did not come back: ${mib(before.rssKiB * 1024)} before, ${
        mib(after.rssKiB * 1024)
      } after they left (allowed: ${mib(PARTIAL_RETURN_SLACK)} more)`,
    );
  }
  const rss = before && after
    ? `; server RSS ${mib(before.rssKiB * 1024)} before, ${mib(peakRss * 1024)} at the peak, ${
      mib(after.rssKiB * 1024)
    } after`
    : "";
  const dropMs = Math.max(0, ...closedByServer.map((e) => e.ms));
  return {
    name,
    summary: `${count} keyboards (${PARTIAL_TLS} TLS) each sent all but the last byte of a frame ` +
      `of overall_length ${PARTIAL_OVERALL} (${mib(held)} in all, budget ${
        budget ? mib(budget) : "none"
      }); ` +
      `${overBudget.length} dropped over the budget${
        closedByServer.length ? ` within ${(dropMs / 1000).toFixed(1)} s` : ""
      }, ${otherDrops.length} for another reason, ${
        ended.filter((e) => e.how === "open").length
      } held until they left${rss}`,
    problems,
    figures: {
      keyboards: count,
      heldBytes: held,
      budget,
      droppedOverBudget: overBudget.length,
      droppedOtherwise: otherDrops.length,
      rssMiB: before && after
        ? { before: before.rssKiB / 1024, peak: peakRss / 1024, after: after.rssKiB / 1024 }
        : undefined,
    },
  };
}

/** Fast displays and keyboards in the server-behind phase. */
const BEHIND_DISPLAYS = 50;
const BEHIND_KEYBOARDS = 2;
/** Text bytes per frame: 8 digits of sequence number, a dash, a filler. */
const BEHIND_TEXT = 300;
const BEHIND_USER = "behind-";

/** Frame `seq` of keyboard `k`: the filler's letter follows from seq. */
function behindFrame(k: number, seq: number): Uint8Array {
  const letter = String.fromCharCode(97 + seq % 26);
  const text = `${String(seq).padStart(8, "0")}-${letter.repeat(BEHIND_TEXT - 9)}`;
  const time = { year: 2024, month: 5, day: 6, hour: 7, minute: 8, second: 9 };
  return encodeFrame({ username: `${BEHIND_USER}${k}`, time, text });
}

const USER_BYTES = new TextEncoder().encode(BEHIND_USER);
const FRAME_SIZE = behindFrame(0, 0).length;

/** A display that reads as fast as it can and checks every behind-N frame, in order. */
class FastDisplay {
  readonly next: number[] = new Array(BEHIND_KEYBOARDS).fill(0);
  problems: string[] = [];
  ended = "";
  port = 0;
  #conn: Deno.Conn | undefined;
  #closing = false;
  done: Promise<void> = Promise.resolve();

  async connect(target: Target): Promise<void> {
    this.#conn = await dial(target);
    this.port = (this.#conn.localAddr as Deno.NetAddr).port;
    await tryWrite(this.#conn, encodeIdentify("display"));
    this.done = this.#run();
  }

  complete(count: number): boolean {
    return this.next.every((n) => n >= count);
  }

  close(): void {
    this.#closing = true;
    if (this.#conn) closeQuietly(this.#conn);
  }

  #check(frames: Uint8Array): void {
    const view = new DataView(frames.buffer, frames.byteOffset, frames.length);
    for (let at = 0; at < frames.length;) {
      const size = 4 + view.getInt32(at);
      const ulen = view.getInt32(at + 4);
      const frameAt = at;
      at += size;
      if (ulen !== USER_BYTES.length + 1) continue;
      let ours = true;
      for (let i = 0; i < USER_BYTES.length && ours; i++) {
        ours = frames[frameAt + 8 + i] === USER_BYTES[i];
      }
      if (!ours) continue;
      const k = frames[frameAt + 8 + USER_BYTES.length] - 48;
      const textAt = frameAt + 8 + ulen + 28;
      let seq = 0;
      for (let i = 0; i < 8; i++) seq = seq * 10 + frames[textAt + i] - 48;
      const letter = 97 + seq % 26;
      const intact = size === FRAME_SIZE && k >= 0 && k < BEHIND_KEYBOARDS &&
        frames[textAt + 8] === 45 && frames[textAt + 9] === letter &&
        frames[frameAt + size - 1] === letter;
      if (!intact) {
        this.#problem(`a corrupted ${BEHIND_USER} frame`);
        continue;
      }
      if (seq !== this.next[k]) {
        this.#problem(`${BEHIND_USER}${k}: expected frame ${this.next[k]}, got ${seq}`);
      }
      this.next[k] = seq + 1;
    }
  }

  #problem(text: string): void {
    if (this.problems.length < 3) this.problems.push(text);
  }

  async #run(): Promise<void> {
    const decoder = new FrameDecoder({ maxFrame: 2 ** 31 - 1 });
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.#conn!.read(buffer);
        if (n === null) {
          this.ended = "the server closed it";
          return;
        }
        this.#check(decoder.pushFrames(buffer.subarray(0, n)));
      }
    } catch (error) {
      if (!this.#closing) this.ended = `${error}`;
    }
  }
}

/**
 * Many displays reading as fast as they can (and one that never reads), and keyboards that
 * send their burst and then their rate for 2 s, as fast as the server lets them. Checks that
 * every fast display got every frame, in order, and that none was dropped.
 */
export async function serverBehindPhase(
  ctx: HuntContext,
  target: Target,
  label: string,
): Promise<PhaseResult> {
  const name = `server behind (${label})`;
  const problems: string[] = [];
  const { keyboardBurst, keyboardRate } = DEFAULT_RELAY_OPTIONS;
  const perKeyboard = keyboardBurst + 2 * keyboardRate;
  const lines = ctx.log.collect((line) => PEER_LINE.test(line));
  const identified = ctx.log.collect((line) => / identified as display/.test(line));
  const displays = Array.from({ length: BEHIND_DISPLAYS }, () => new FastDisplay());
  for (let i = 0; i < displays.length; i += 25) {
    await Promise.all(displays.slice(i, i + 25).map((d) => d.connect(target)));
  }
  const stalled = await dial(target);
  const stalledPort = (stalled.localAddr as Deno.NetAddr).port;
  await tryWrite(stalled, encodeIdentify("display"));
  for (let i = 0; i < 100 && identified.length < displays.length + 1; i++) await sleep(50);
  const keyboards = await Promise.all(Array.from({ length: BEHIND_KEYBOARDS }, async () => {
    const conn = await dial(target);
    await tryWrite(conn, encodeIdentify("keyboard"));
    return conn;
  }));
  const batches = keyboards.map((_, k) => {
    const out: Uint8Array[] = [];
    for (let seq = 0; seq < perKeyboard; seq += 250) {
      const frames = [];
      for (let s = seq; s < Math.min(perKeyboard, seq + 250); s++) frames.push(behindFrame(k, s));
      out.push(concat(frames));
    }
    return out;
  });
  const started = performance.now();
  const sent = await Promise.all(keyboards.map(async (conn, k) => {
    let count = 0;
    for (const batch of batches[k]) {
      if (!(await tryWrite(conn, batch))) break;
      count += batch.length / FRAME_SIZE;
    }
    return count;
  }));
  const total = sent.reduce((a, b) => a + b, 0);
  // Most of it waits in the sockets: the server takes it at the keyboards' rate (and slower
  // while it is behind), then hands it out.
  const deadline = performance.now() + 20_000;
  const waiting = () => displays.filter((d) => !d.ended && !d.complete(perKeyboard));
  while (waiting().length > 0 && performance.now() < deadline) await sleep(50);
  const deliverMs = performance.now() - started;
  for (const conn of keyboards) closeQuietly(conn);
  await sleep(200);
  const fastPorts = portPattern(displays.map((d) => d.port));
  const drops = lines.map((line) => PEER_LINE.exec(line)!).filter((m) => m[2] === "dropped");
  const fastDrops = drops.filter((m) => fastPorts.has(m[1]));
  const stalledDrop = drops.find((m) => m[1] === String(stalledPort));
  for (const display of displays) display.close();
  closeQuietly(stalled);
  await Promise.all(displays.map((d) => d.done));

  const complete = displays.filter((d) => d.complete(perKeyboard) && d.problems.length === 0);
  if (sent.some((n) => n < perKeyboard)) {
    problems.push(`a keyboard was cut off after ${Math.min(...sent)} of ${perKeyboard} frames`);
  }
  if (fastDrops.length > 0) {
    const tooSlow = fastDrops.filter((m) => /too slow/.test(m[4])).length;
    problems.push(
      `${fastDrops.length} fast displays dropped (${tooSlow} as too slow): ${fastDrops[0][4]}`,
    );
  }
  const incomplete = displays.filter((d) => !d.complete(perKeyboard));
  if (incomplete.length > 0) {
    const least = Math.min(...incomplete.map((d) => d.next.reduce((a, b) => a + b, 0)));
    problems.push(
      `${incomplete.length} fast displays did not get every frame (the worst ${least} of ${total})`,
    );
  }
  const disordered = displays.flatMap((d) => d.problems);
  if (disordered.length > 0) {
    problems.push(`out of order or corrupted: ${disordered.slice(0, 3).join("; ")}`);
  }
  const stalledOutcome = stalledDrop
    ? `dropped (${stalledDrop[4].replace(/:.*/, "")})`
    : "still connected";
  return {
    name,
    summary: `${BEHIND_DISPLAYS} fast displays and 1 that never reads; ${BEHIND_KEYBOARDS} ` +
      `keyboards sent ${total} frames of ${FRAME_SIZE} bytes as fast as let; ` +
      `${complete.length} of ${BEHIND_DISPLAYS} fast displays got every frame in order ` +
      `(the last ${(deliverMs / 1000).toFixed(1)} s after the first send: ${
        (total / (deliverMs / 1000)).toFixed(0)
      } msg/s to each), ${fastDrops.length} dropped; the one that never reads ${stalledOutcome}`,
    problems,
    figures: {
      fastDisplays: BEHIND_DISPLAYS,
      keyboards: BEHIND_KEYBOARDS,
      frames: total,
      frameBytes: FRAME_SIZE,
      deliverMs: Math.round(deliverMs),
      complete: complete.length,
      fastDropped: fastDrops.length,
      stalledDisplay: stalledOutcome,
    },
  };
}
