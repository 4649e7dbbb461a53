/**
 * Hostile clients: garbage, every malformed-frame kind, slow-loris identify and frame,
 * garbage and stalled TLS handshakes, bytes written beneath an established TLS session.
 *
 * @module
 */

import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { concat, malformedFrames, randomFrames } from "../fuzz/frames.ts";
import type { Prng } from "../fuzz/prng.ts";
import {
  BENEATH_TLS,
  closeQuietly,
  dial,
  readUntilClosed,
  sleep,
  TlsBeneath,
  tryWrite,
} from "./net.ts";

import {
  type ChaosContext,
  churnFrame,
  connect,
  HEALTH_EVERY_MS,
  judgeClose,
  limitMs,
  MALFORMED_KINDS,
  PROMPT_MS,
  type Scenario,
} from "./chaos_context.ts";

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
