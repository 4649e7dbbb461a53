/**
 * Checks run with `--hostile`: a misbehaving client (absurd lengths, inconsistent lengths,
 * negative lengths, a half-sent identify code, garbage, abrupt resets) must not hurt anyone
 * else. Each check keeps the bad connections open while a well-behaved display and keyboard
 * exchange a message, and while a new pair connects and does the same.
 *
 * @module
 */

import { type Check, type CheckContext, CheckFailure } from "./check.ts";
import { delay } from "./deadline.ts";
import { SLOW_LORIS_HINT } from "./hints.ts";
import type { Peer } from "./peer.ts";
import { relayMismatch } from "./server_core.ts";
import {
  barrier,
  decode,
  dumpInvalid,
  frameOf,
  nextFrame,
  openDisplay,
  openKeyboard,
  sameExceptTime,
  send,
  type ServerTarget,
} from "./server_helpers.ts";

const GROUP = "hostile";
const FILLER = "filler";

/** What a hostile check does between setting up the healthy pair and testing it. */
type Act = (ctx: CheckContext, healthy: { keyboard: Peer; display: Peer }) => Promise<void>;

/** The hostile-client checks. */
export function hostileChecks(target: ServerTarget): Check[] {
  const hostile = (name: string, description: string, hint: string, act: Act): Check => ({
    group: GROUP,
    name,
    description,
    run: (ctx) => survives(ctx, target, act, hint),
  });
  const keyboard = (ctx: CheckContext, label: string) =>
    openKeyboard(ctx, target, { label: `the hostile keyboard (${label})` });
  const int32 = (value: number) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, value, false);
    return bytes;
  };
  const join = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

  return [
    hostile(
      "oversized-length",
      "a keyboard announcing a 2 GB frame (and one just over the limit) hurts nobody else",
      "check overall_length against a maximum (e.g. 65536) as soon as its 4 bytes arrive " +
        "and drop that client, rather than allocating or waiting for 2 GB",
      async (ctx) => {
        const huge = await keyboard(ctx, "overall_length 2147483647");
        await send(huge, join(int32(0x7fffffff), new Uint8Array(60).fill(0x41)));
        const over = await keyboard(ctx, `overall_length ${target.maxFrame + 1}`);
        await send(over, join(int32(target.maxFrame + 1), new Uint8Array(100).fill(0x42)));
      },
    ),
    hostile(
      "inconsistent-lengths",
      "frames whose lengths do not add up are not relayed and hurt nobody else",
      "check that 32 + ulen + tlen == overall_length (and ulen fits) before relaying a frame; " +
        "relaying it hands every display a frame it cannot parse",
      async (ctx) => {
        const tooLong = frameOf("Jason", "Hello World");
        new DataView(tooLong.buffer).setInt32(4, 200, false);
        await send(await keyboard(ctx, "ulen 200 in a 48-byte frame"), tooLong);
        await delay(50);
        const selfCounted = frameOf("Jason", "Hello World");
        new DataView(selfCounted.buffer).setInt32(0, 52, false);
        await send(
          await keyboard(ctx, "overall_length 52 for 48 bytes"),
          join(selfCounted, frameOf("Jason", "after the bad one")),
        );
      },
    ),
    hostile(
      "negative-length",
      "negative overall_length and ulen hurt nobody else",
      "a negative length must be rejected (drop that client), never used to read or allocate",
      async (ctx) => {
        await send(
          await keyboard(ctx, "overall_length -1"),
          join(int32(-1), new Uint8Array(40)),
        );
        const negative = frameOf("Jason", "Hello World");
        new DataView(negative.buffer).setInt32(4, -5, false);
        await send(await keyboard(ctx, "ulen -5"), negative);
      },
    ),
    hostile(
      "slow-loris-identify",
      "clients that send part of an identify code, or nothing, hold up nobody",
      SLOW_LORIS_HINT,
      async (ctx) => {
        const half = await openDisplay(ctx, target, {
          label: "a client that sent 1 byte",
          identify: false,
        });
        await send(half, Uint8Array.of(0));
        await openDisplay(ctx, target, { label: "a silent client", identify: false });
      },
    ),
    hostile(
      "garbage-identify",
      "clients that send garbage instead of an identify code hurt nobody else",
      "an identify code other than 1 or 2 is a protocol violation: close that connection " +
        "and carry on",
      async (ctx) => {
        const http = await openDisplay(ctx, target, { label: "an HTTP client", identify: false });
        await send(http, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: wirechat\r\n\r\n"));
        const seven = await openDisplay(ctx, target, {
          label: "a client identifying as 7",
          identify: false,
        });
        await send(seven, join(int32(7), frameOf("Jason", "Hello World")));
      },
    ),
    hostile(
      "abrupt-reset",
      "a display that resets its connection and a keyboard that quits mid-frame hurt nobody",
      "writing to a display that reset its connection fails (ECONNRESET / EPIPE, and SIGPIPE " +
        "kills a C program unless ignored or MSG_NOSIGNAL is used): catch it, drop that " +
        "display, keep relaying; a keyboard that leaves mid-frame leaves only a partial frame " +
        "to throw away",
      async (ctx, healthy) => {
        const resetting = await openDisplay(ctx, target, { label: "a display that resets" });
        await barrier(ctx, target, healthy.keyboard, [healthy.display, resetting]);
        resetting.pause();
        const filler = frameOf(FILLER, "x".repeat(4000));
        for (let i = 0; i < 40; i++) await send(healthy.keyboard, filler);
        await delay(50);
        // Closing with unread bytes in the receive buffer makes the kernel send a reset.
        resetting.close();
        const quitter = await keyboard(ctx, "quits mid-frame");
        await send(quitter, frameOf("Jason", "cut short").subarray(0, 20));
        quitter.close();
      },
    ),
  ];
}

/**
 * Sets up a well-behaved display and keyboard, lets `act` misbehave, then checks that the
 * pair still exchanges a message intact and that a new pair can connect and do the same.
 */
async function survives(
  ctx: CheckContext,
  target: ServerTarget,
  act: Act,
  hint: string,
): Promise<void> {
  const display = await openDisplay(ctx, target, { label: "the well-behaved display" });
  const keyboard = await openKeyboard(ctx, target, { label: "the well-behaved keyboard" });
  await barrier(ctx, target, keyboard, [display]);
  const sent = frameOf("Jason", `still here ${target.nonce}`);
  try {
    await act(ctx, { keyboard, display });
    await delay(100);
    await send(keyboard, sent);
    for (;;) {
      const got = await nextFrame(ctx, display, "the well-behaved keyboard's next message", {
        sent,
      });
      if (sameExceptTime(sent, got, false)) break;
      const message = decode(got, false);
      if (typeof message === "string") {
        throw new CheckFailure(`the well-behaved display received a malformed frame: ${message}`, {
          expected: "only valid frames",
          dump: dumpInvalid(got, false),
          hint,
        });
      }
      if (message.username !== FILLER) throw relayMismatch(display, sent, got, "the message");
    }
    const newDisplay = await openDisplay(ctx, target, { label: "a new display" });
    const newKeyboard = await openKeyboard(ctx, target, { label: "a new keyboard" });
    await barrier(ctx, target, newKeyboard, [newDisplay]);
  } catch (error) {
    if (error instanceof CheckFailure) {
      throw new CheckFailure(error.message, {
        expected: error.expected ?? "the other clients carry on as if nothing happened",
        dump: error.dump,
        hint,
      });
    }
    throw error;
  }
}
