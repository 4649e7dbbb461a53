/**
 * Churn: clients that come and go, by clean close, reset and half-close.
 *
 * @module
 */

import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { concat } from "../fuzz/frames.ts";
import { closeQuietly, readUntilClosed, sendThenReset, sleep, tryWrite } from "./net.ts";

import { churnFrame, connect, judgeClose, PROMPT_MS, type Scenario } from "./chaos_context.ts";

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
