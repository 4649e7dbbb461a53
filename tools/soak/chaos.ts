/**
 * Everything the soak throws at the server besides its steady clients: churn (clients that
 * come and go, by clean close, reset and half-close), slow displays, hostile clients (garbage,
 * every malformed-frame kind, slow-loris identify and frame, garbage and stalled TLS
 * handshakes, bytes written beneath an established TLS session) and connection floods above
 * the limit. Each run of a scenario is judged by what the server did to it, and tallied; every
 * few seconds a kind is followed by a healthy exchange (health.ts).
 *
 * @module
 */

import { encodeFrame } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { concat, malformedFrames, randomFrames } from "../fuzz/frames.ts";
import type { Prng } from "../fuzz/prng.ts";
import type { HealthRecord } from "./health.ts";
import {
  BENEATH_TLS,
  closeQuietly,
  dial,
  type Ending,
  readUntilClosed,
  sendThenReset,
  sleep,
  type Target,
  TlsBeneath,
  tryWrite,
} from "./net.ts";
import type { Lines as ServerLog } from "../harness/lines.ts";

/** The server's time limits, in seconds, as the soak started it. */
export interface Timeouts {
  identify: number;
  frame: number;
  handshake: number;
  softSeconds: number;
}

/** What the chaos needs to know about the server and the run. */
export interface ChaosContext {
  plain: Target;
  tls: Target;
  timeouts: Timeouts;
  maxConnections: number;
  log: ServerLog;
  /** performance.now() after which no new scenario starts. */
  deadline: number;
  tally: Tally;
  floods: FloodWindows;
  /** Healthy exchanges after each kind of attack, if the run checks them. */
  health?: HealthRecord;
}

/** A kind of attack in the mix is followed by a healthy exchange at most this often. */
export const HEALTH_EVERY_MS = 4_000;

/** The health check's name for every kind of malformed frame together. */
export const MALFORMED_KINDS = "hostile: malformed frames (every kind)";

/** One scenario's runs: how many, which outcomes, and what failed. */
export interface ScenarioCount {
  runs: number;
  failed: number;
  outcomes: Map<string, number>;
  failures: string[];
}

/** Scenario counts by name, in the order first seen. */
export class Tally {
  readonly scenarios = new Map<string, ScenarioCount>();

  record(name: string, outcome: string, ok: boolean, detail?: string): void {
    let count = this.scenarios.get(name);
    if (!count) {
      count = { runs: 0, failed: 0, outcomes: new Map(), failures: [] };
      this.scenarios.set(name, count);
    }
    count.runs++;
    count.outcomes.set(outcome, (count.outcomes.get(outcome) ?? 0) + 1);
    if (!ok) {
      count.failed++;
      if (count.failures.length < 5) {
        count.failures.push(`${outcome}${detail ? `: ${detail}` : ""}`);
      }
    }
  }

  get failed(): number {
    let failed = 0;
    for (const count of this.scenarios.values()) failed += count.failed;
    return failed;
  }
}

/** When floods held the server at its connection limit: a refusal then is expected. */
export class FloodWindows {
  #windows: [number, number][] = [];
  #open = 0;

  begin(): void {
    this.#open = performance.now();
  }

  end(): void {
    // The server frees the flood's slots as it sees each close, which takes a moment under load.
    this.#windows.push([this.#open - 200, performance.now() + 3000]);
    this.#open = 0;
  }

  /** Whether a connection that lived from `from` to `to` overlapped a flood. */
  overlaps(from: number, to: number): boolean {
    if (this.#open && to >= this.#open - 200) return true;
    return this.#windows.some(([start, end]) => from <= end && to >= start);
  }
}

const PROMPT_MS = 3_000;

/** Judges a connection the server should have ended within [minMs, maxMs]. */
function judgeClose(
  ctx: ChaosContext,
  name: string,
  started: number,
  ending: Ending,
  minMs: number,
  maxMs: number,
): void {
  const closed = ending.how === "eof" || ending.how === "reset";
  const took = `${(ending.ms / 1000).toFixed(1)} s`;
  if (closed && ending.ms < minMs && ctx.floods.overlaps(started, performance.now())) {
    return ctx.tally.record(name, "refused during a flood", true);
  }
  if (closed && ending.ms >= minMs && ending.ms <= maxMs) {
    return ctx.tally.record(name, minMs > 0 ? "closed at the time limit" : "closed at once", true);
  }
  const outcome = closed
    ? `closed after ${took}, expected ${minMs / 1000}-${maxMs / 1000} s`
    : ending.how === "open"
    ? `still open after ${took}`
    : `read failed: ${ending.detail}`;
  ctx.tally.record(name, outcome, false);
}

/** Connects, or records a refusal during a flood (or a failure) and returns undefined. */
async function connect(ctx: ChaosContext, name: string, target: Target) {
  const started = performance.now();
  try {
    return await dial(target);
  } catch (error) {
    const flood = ctx.floods.overlaps(started, performance.now());
    ctx.tally.record(name, flood ? "refused during a flood" : `connect failed: ${error}`, flood);
    return undefined;
  }
}

function limitMs(seconds: number): [number, number] {
  return [seconds * 1000 - 300, seconds * 1000 + 3_000];
}

const churnFrame = (rng: Prng, littleEndian: boolean) =>
  encodeFrame({
    username: `churn-${rng.int(1000)}`,
    time: { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 },
    text: "passing through",
  }, { littleEndian });

type Scenario = (ctx: ChaosContext, rng: Prng) => Promise<void>;

/** Clients that come and go; the server should serve them and forget them. */
export const CHURN: Record<string, Scenario> = {
  async "churn: display, clean close"(ctx, rng) {
    const name = "churn: display, clean close";
    const target = rng.chance(0.25) ? ctx.tls : ctx.plain;
    const conn = await connect(ctx, name, target);
    if (!conn) return;
    const littleEndian = rng.chance(0.5);
    const started = performance.now();
    await tryWrite(conn, encodeIdentify("display", littleEndian));
    const decoder = new FrameDecoder({ littleEndian, maxFrame: 2 ** 31 - 1 });
    let malformed = "";
    const ending = await readUntilClosed(conn, rng.range(50, 800), (bytes) => {
      try {
        decoder.pushFrames(bytes);
      } catch (error) {
        malformed ||= String(error);
      }
    });
    if (malformed) {
      return ctx.tally.record(name, "the server sent a malformed frame", false, malformed);
    }
    if (ending.how !== "open" && !ctx.floods.overlaps(started, performance.now())) {
      return ctx.tally.record(name, `the server ended it (${ending.how})`, false);
    }
    ctx.tally.record(
      name,
      ending.how === "open" ? "served, then closed" : "refused during a flood",
      true,
    );
  },

  async "churn: display, reset (RST)"(ctx, rng) {
    await sendThenReset(
      ctx.plain.port,
      encodeIdentify("display", rng.chance(0.5)),
      rng.range(50, 500),
    );
    ctx.tally.record("churn: display, reset (RST)", "reset with unread data", true);
  },

  async "churn: display, half-close"(ctx, rng) {
    const name = "churn: display, half-close";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const started = performance.now();
    await tryWrite(conn, encodeIdentify("display", rng.chance(0.5)));
    await sleep(rng.range(0, 300));
    await (conn as Deno.TcpConn).closeWrite().catch(() => {});
    judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
  },

  async "churn: keyboard, clean close"(ctx, rng) {
    const name = "churn: keyboard, clean close";
    const target = rng.chance(0.25) ? ctx.tls : ctx.plain;
    const conn = await connect(ctx, name, target);
    if (!conn) return;
    const littleEndian = rng.chance(0.5);
    const frames = Array.from({ length: rng.range(1, 20) }, () => churnFrame(rng, littleEndian));
    const ok = await tryWrite(conn, concat([encodeIdentify("keyboard", littleEndian), ...frames]));
    await sleep(rng.range(0, 300));
    closeQuietly(conn);
    ctx.tally.record(name, ok ? "sent, then closed" : "refused during a flood", true);
  },

  async "churn: keyboard, half-close"(ctx, rng) {
    const name = "churn: keyboard, half-close";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const started = performance.now();
    const littleEndian = rng.chance(0.5);
    await tryWrite(
      conn,
      concat([encodeIdentify("keyboard", littleEndian), churnFrame(rng, littleEndian)]),
    );
    await (conn as Deno.TcpConn).closeWrite().catch(() => {});
    judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
  },

  async "churn: keyboard, reset mid-frame"(ctx, rng) {
    const frame = churnFrame(rng, false);
    const bytes = concat([encodeIdentify("keyboard"), frame, frame.subarray(0, rng.range(1, 30))]);
    await sendThenReset(ctx.plain.port, bytes, rng.range(0, 200));
    ctx.tally.record("churn: keyboard, reset mid-frame", "reset", true);
  },

  async "churn: keyboard, close mid-frame"(ctx, rng) {
    const name = "churn: keyboard, close mid-frame";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const frame = churnFrame(rng, false);
    await tryWrite(conn, concat([encodeIdentify("keyboard"), frame.subarray(0, rng.range(1, 40))]));
    closeQuietly(conn);
    ctx.tally.record(name, "closed", true);
  },

  async "churn: close before identifying"(ctx, rng) {
    const name = "churn: close before identifying";
    const conn = await connect(ctx, name, rng.chance(0.3) ? ctx.tls : ctx.plain);
    if (!conn) return;
    if (rng.chance(0.5)) {
      await tryWrite(conn, encodeIdentify("display").subarray(0, rng.range(1, 3)));
    }
    closeQuietly(conn);
    ctx.tally.record(name, "closed", true);
  },
};

/** Clients that break the rules at once; the server should end each of them at once. */
export const QUICK_HOSTILE: Record<string, Scenario> = {
  async "hostile: random garbage"(ctx, rng) {
    const name = "hostile: random garbage";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const started = performance.now();
    let garbage = rng.bytes(rng.range(4, 2048));
    // The one-in-a-billion valid identify code would make this a keyboard; keep it garbage.
    if (garbage[0] < 3 || garbage[3] < 3) {
      garbage = concat([Uint8Array.of(0xde, 0xad, 0xbe, 0xef), garbage]);
    }
    await tryWrite(conn, garbage);
    judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
  },

  async "hostile: bad identify code"(ctx, rng) {
    const name = "hostile: bad identify code";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const started = performance.now();
    const code = rng.pick([
      Uint8Array.of(0, 0, 0, 0),
      Uint8Array.of(0, 0, 0, 3),
      Uint8Array.of(0xff, 0xff, 0xff, 0xff),
      Uint8Array.of(0, 0, 1, 0),
      Uint8Array.of(0x16, 0x03, 0x01, 0x00), // a TLS ClientHello on the plain port
      new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
    ]);
    await tryWrite(conn, code);
    judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
  },

  async "hostile: TLS port, garbage"(ctx, rng) {
    const name = "hostile: TLS port, garbage";
    const conn = await connect(ctx, name, { ...ctx.tls, tls: false });
    if (!conn) return;
    const started = performance.now();
    await tryWrite(conn, concat([Uint8Array.of(0x47, 0x45, 0x54), rng.bytes(rng.range(1, 1024))]));
    judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
  },

  async "hostile: TLS port, plain identify"(ctx) {
    const name = "hostile: TLS port, plain identify";
    const conn = await connect(ctx, name, { ...ctx.tls, tls: false });
    if (!conn) return;
    const started = performance.now();
    await tryWrite(conn, encodeIdentify("display"));
    // Four bytes are not a whole TLS record header: rustls waits for the fifth until the
    // handshake deadline, or rejects at once; either ends the connection.
    const [, max] = limitMs(ctx.timeouts.handshake);
    judgeClose(ctx, name, started, await readUntilClosed(conn, max + 2000), 0, max);
  },

  async "hostile: TLS keyboard, bytes beneath TLS"(ctx, rng) {
    await bytesBeneathTls(ctx, rng, "keyboard");
  },

  async "hostile: TLS display, bytes beneath TLS"(ctx, rng) {
    await bytesBeneathTls(ctx, rng, "display");
  },

  async "hostile: TLS client on the plain port"(ctx) {
    const name = "hostile: TLS client on the plain port";
    const started = performance.now();
    try {
      const conn = await dial({ ...ctx.plain, tls: true, caCert: ctx.tls.caCert });
      closeQuietly(conn);
      ctx.tally.record(name, "handshake succeeded on the plain port", false);
    } catch {
      const took = performance.now() - started;
      ctx.tally.record(name, "refused", took < PROMPT_MS, `after ${took.toFixed(0)} ms`);
    }
  },
};

/**
 * A TLS client that identifies (a keyboard sends a frame or two as well), then writes bytes
 * on the TCP connection beneath TLS: a record with a bad MAC, plain text, a record too long
 * or of no TLS type. The server must drop it at once, logging a TLS error.
 */
async function bytesBeneathTls(ctx: ChaosContext, rng: Prng, role: "keyboard" | "display") {
  const name = `hostile: TLS ${role}, bytes beneath TLS`;
  const started = performance.now();
  let session: TlsBeneath;
  try {
    session = await TlsBeneath.connect(ctx.tls, PROMPT_MS);
  } catch (error) {
    const flood = ctx.floods.overlaps(started, performance.now());
    return ctx.tally.record(
      name,
      flood ? "refused during a flood" : `connect failed: ${error}`,
      flood,
    );
  }
  const peer = `127\\.0\\.0\\.1:${session.localPort}`;
  const identified = ctx.log.next(new RegExp(`${peer} identified as ${role}`), PROMPT_MS)
    .then(() => true, () => false);
  const logged = ctx.log.next(
    // Its role in the pattern: a client of the plain port may have the same source port.
    new RegExp(`${peer} (dropped|disconnected) \\((${role}|unidentified)\\): `),
    2 * PROMPT_MS + 2000,
  ).catch(() => "");
  const littleEndian = rng.chance(0.5);
  const frames = role === "keyboard"
    ? randomFrames(rng, rng.int(3), littleEndian, 1024)
    : new Uint8Array(0);
  await session.writeTls(concat([encodeIdentify(role, littleEndian), frames]));
  if (!(await identified)) {
    session.destroy();
    const flood = ctx.floods.overlaps(started, performance.now());
    const outcome = flood ? "refused during a flood" : "not identified within 3 s";
    return ctx.tally.record(name, outcome, flood, await logged);
  }
  const [variant, make] = rng.pick(Object.entries(BENEATH_TLS));
  const sent = performance.now();
  await session.writeRaw(make((n) => rng.bytes(n)));
  const how = await session.waitEnded(PROMPT_MS + 2000);
  const took = performance.now() - sent;
  session.destroy();
  const line = await logged;
  const reason = /\): (.*)$/.exec(line)?.[1] ?? "no log line";
  if (how === "open") {
    return ctx.tally.record(name, `still open ${(took / 1000).toFixed(1)} s later`, false, variant);
  }
  if (took > PROMPT_MS) {
    return ctx.tally.record(name, `closed after ${(took / 1000).toFixed(1)} s`, false, variant);
  }
  if (!/ dropped \((keyboard|display)\): TLS error: /.test(line)) {
    return ctx.tally.record(
      name,
      "closed, but not logged as a TLS error",
      false,
      `${variant}: ${reason}`,
    );
  }
  ctx.tally.record(name, "dropped at once for a TLS error", true);
}

/** Clients that stall; the server should end each of them at its time limit. */
export const SLOW_HOSTILE: Record<string, Scenario> = {
  async "hostile: slow-loris identify"(ctx, rng) {
    const name = "hostile: slow-loris identify";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const started = performance.now();
    await tryWrite(conn, encodeIdentify("keyboard").subarray(0, rng.range(0, 3)));
    const [min, max] = limitMs(ctx.timeouts.identify);
    judgeClose(ctx, name, started, await readUntilClosed(conn, max + 2000), min, max);
  },

  async "hostile: slow-loris frame"(ctx, rng) {
    const name = "hostile: slow-loris frame";
    const conn = await connect(ctx, name, ctx.plain);
    if (!conn) return;
    const frame = churnFrame(rng, false);
    await tryWrite(conn, concat([encodeIdentify("keyboard"), frame.subarray(0, 1)]));
    const started = performance.now();
    const [min, max] = limitMs(ctx.timeouts.frame);
    // One more byte every quarter of the limit: never enough to finish the frame in time.
    const drip = (async () => {
      for (let at = 1; at < frame.length; at++) {
        await sleep(ctx.timeouts.frame * 250);
        if (!(await tryWrite(conn, frame.subarray(at, at + 1)))) return;
      }
    })();
    judgeClose(ctx, name, started, await readUntilClosed(conn, max + 2000), min, max);
    await drip;
  },

  async "hostile: TLS port, stalled handshake"(ctx, rng) {
    const name = "hostile: TLS port, stalled handshake";
    const conn = await connect(ctx, name, { ...ctx.tls, tls: false });
    if (!conn) return;
    const started = performance.now();
    // Nothing at all, or the start of a ClientHello record that never finishes.
    if (rng.chance(0.5)) await tryWrite(conn, Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0xc8, 0x01));
    const [min, max] = limitMs(ctx.timeouts.handshake);
    judgeClose(ctx, name, started, await readUntilClosed(conn, max + 2000), min, max);
  },

  async "hostile: TLS, stalled identify"(ctx) {
    const name = "hostile: TLS, stalled identify";
    const conn = await connect(ctx, name, ctx.tls);
    if (!conn) return;
    const started = performance.now();
    const [min, max] = limitMs(ctx.timeouts.identify);
    judgeClose(ctx, name, started, await readUntilClosed(conn, max + 2000), min, max);
  },
};

/**
 * Sends every malformed-frame kind (after 0 to 2 valid frames), in both byte orders, on the
 * plain port and now and then the TLS port, over and over until the deadline; each sender
 * must be dropped at once.
 */
export async function malformedSweep(ctx: ChaosContext, rng: Prng): Promise<void> {
  while (performance.now() < ctx.deadline) {
    for (const littleEndian of [false, true]) {
      for (const bad of malformedFrames(rng, littleEndian)) {
        if (performance.now() >= ctx.deadline) return;
        const name = `hostile: malformed frame (${bad.name})`;
        const conn = await connect(ctx, name, rng.chance(0.2) ? ctx.tls : ctx.plain);
        if (!conn) continue;
        const started = performance.now();
        const good = randomFrames(rng, rng.int(3), littleEndian, 1024);
        await tryWrite(conn, concat([encodeIdentify("keyboard", littleEndian), good, bad.bytes]));
        judgeClose(ctx, name, started, await readUntilClosed(conn, PROMPT_MS + 2000), 0, PROMPT_MS);
        await ctx.health?.sometimes(MALFORMED_KINDS, HEALTH_EVERY_MS);
      }
    }
  }
}

/**
 * Runs `scenarios`, picked at random, one after another until the deadline, with a random
 * pause of up to `pauseMs` between them; now and then a scenario is followed by a healthy
 * exchange, recorded under its name.
 */
export async function worker(
  ctx: ChaosContext,
  rng: Prng,
  scenarios: Record<string, Scenario>,
  pauseMs = 0,
): Promise<void> {
  const list = Object.entries(scenarios);
  while (performance.now() < ctx.deadline) {
    const [name, scenario] = rng.pick(list);
    try {
      await scenario(ctx, rng);
    } catch (error) {
      ctx.tally.record("chaos client error", String(error), false);
    }
    await ctx.health?.sometimes(name, HEALTH_EVERY_MS);
    if (pauseMs) await sleep(rng.int(pauseMs));
  }
}

/**
 * A display that never reads (or reads one byte a second) until the server drops it, then
 * another, until the deadline. Returns how many the server dropped and after how long.
 */
export async function slowDisplays(
  ctx: ChaosContext,
  mode: "never reads" | "reads a byte a second",
  tls = false,
): Promise<number[]> {
  const name = `slow display${tls ? " (TLS)" : ""}: ${mode}`;
  const drops: number[] = [];
  while (performance.now() < ctx.deadline) {
    const conn = await connect(ctx, name, tls ? ctx.tls : ctx.plain);
    if (!conn) {
      await sleep(500);
      continue;
    }
    const port = (conn.localAddr as Deno.NetAddr).port;
    const started = performance.now();
    await tryWrite(conn, encodeIdentify("display"));
    let done = false;
    const trickle = mode === "never reads" ? Promise.resolve() : (async () => {
      const one = new Uint8Array(1);
      while (!done) {
        await sleep(1000);
        if (done || (await conn.read(one).catch(() => null)) === null) return;
      }
    })();
    const left = ctx.deadline - performance.now();
    try {
      // The reasons a slow display may be dropped for, in the pattern: another client may use
      // the same source port towards the other listener at the same time (the log names only
      // the peer), and its drop line must not be taken for this one's.
      const line = await ctx.log.next(
        new RegExp(
          `127\\.0\\.0\\.1:${port} dropped \\(display\\): (too slow|over the client memory budget)`,
        ),
        Math.max(1, left),
      );
      drops.push(performance.now() - started);
      const why = /too slow: (unsent backlog (above|\d+))/.exec(line)?.[1] ?? line;
      // The biggest holder of memory goes first when the server is over its client memory
      // budget: a display that never reads may be that.
      const budget = /over the client memory budget/.test(line);
      ctx.tally.record(
        name,
        budget
          ? "dropped: over the client memory budget"
          : `dropped: ${why.startsWith("unsent backlog above") ? "soft limit" : "hard limit"}`,
        /too slow/.test(line) || budget,
        line,
      );
      await ctx.health?.sometimes(name, HEALTH_EVERY_MS);
    } catch {
      ctx.tally.record(name, "still connected at the end of the run", true);
    }
    done = true;
    closeQuietly(conn);
    await trickle;
  }
  return drops;
}

/**
 * Opens more connections than the server's limit, as fast as it can, and checks that the
 * server refuses the excess at once; then lets them all go, and checks that a fresh pair is
 * served within the health check's limit.
 */
export async function flood(ctx: ChaosContext, extra: number, tls = false): Promise<string> {
  const name = `flood: connections above the limit${tls ? " (TLS port)" : ""}`;
  // On the TLS port, raw TCP: the refused connections are cut before any handshake.
  const target = tls ? { ...ctx.tls, tls: false } : ctx.plain;
  const count = ctx.maxConnections + extra;
  ctx.floods.begin();
  const conns: Deno.Conn[] = [];
  let summary = "";
  try {
    for (let i = 0; i < count; i += 50) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(50, count - i) }, () => dial(target)),
      );
      for (const result of batch) if (result.status === "fulfilled") conns.push(result.value);
    }
    await sleep(500);
    const endings = await Promise.all(conns.map((conn) => readUntilClosed(conn, 500)));
    const refused = endings.filter((e) => e.how === "eof" || e.how === "reset").length;
    const held = endings.filter((e) => e.how === "open").length;
    summary = `${tls ? "TLS port: " : ""}${count} opened, ${refused} refused at once, ${held} held`;
    ctx.tally.record(
      name,
      "excess refused",
      refused >= extra && held <= ctx.maxConnections,
      summary,
    );
  } finally {
    for (const conn of conns) closeQuietly(conn);
    ctx.floods.end();
  }
  // Once its connections are let go, the server must serve a newcomer at once.
  await ctx.health?.after(name, true);
  return summary;
}
