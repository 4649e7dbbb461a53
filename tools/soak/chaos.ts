/**
 * How the soak runs its chaos beside the steady clients: workers that pick scenarios (churn.ts,
 * hostile.ts) at random, slow displays, and connection floods above the limit. Each run of a
 * scenario is judged by what the server did to it, and tallied (chaos_context.ts); every few
 * seconds a kind is followed by a healthy exchange (health.ts).
 *
 * @module
 */

import { encodeIdentify } from "../../lib/protocol/identify.ts";
import type { Prng } from "../fuzz/prng.ts";
import { closeQuietly, dial, readUntilClosed, sleep, tryWrite } from "./net.ts";

import { type ChaosContext, connect, HEALTH_EVERY_MS, type Scenario } from "./chaos_context.ts";

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
