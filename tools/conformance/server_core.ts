/**
 * The server checks that follow from the lab brief alone: identify handling, relaying byte
 * for byte, TCP's freedom to split and join writes, fan-out, one global order, UTF-8, empty
 * and long texts, displays coming and going, and a display that never reads.
 *
 * @module
 */

import { type Check, type CheckContext, CheckFailure } from "./check.ts";
import { delay } from "./deadline.ts";
import { dumpBytes, dumpFrame, hexBytes } from "./hexdump.ts";
import { characterCountHint, equalBytes, fieldDifferences, relayHint } from "./hints.ts";
import type { Peer } from "./peer.ts";
import {
  barrier,
  decode,
  frameOf,
  longText,
  nextFrame,
  openDisplay,
  openKeyboard,
  sameExceptTime,
  send,
  type ServerTarget,
} from "./server_helpers.ts";

import { checkChurn, checkOrder, checkSlowDisplay } from "./server_order.ts";
const GROUP = "server";

/** Receives `sent` on `display` and fails unless it arrived intact (time excepted). */
export async function expectRelayed(
  ctx: CheckContext,
  display: Peer,
  sent: Uint8Array,
  what: string,
  hint?: string,
): Promise<Uint8Array> {
  const got = await nextFrame(ctx, display, what, { sent, maxFrame: sent.length });
  if (!sameExceptTime(sent, got, display.littleEndian)) {
    throw relayMismatch(display, sent, got, what, hint);
  }
  return got;
}

/** The failure for a frame that arrived changed. */
export function relayMismatch(
  display: Peer,
  sent: Uint8Array,
  got: Uint8Array,
  what: string,
  hint?: string,
): CheckFailure {
  const le = display.littleEndian;
  const message = decode(got, le);
  let diagnosis = relayHint(sent, got, le);
  if (diagnosis === undefined && typeof message !== "string") {
    const view = new DataView(got.buffer, got.byteOffset);
    const ulen = view.getInt32(4, le);
    const tlen = view.getInt32(8 + ulen + 24, le);
    diagnosis = characterCountHint("ulen", ulen, message.username) ??
      characterCountHint("tlen", tlen, message.text);
  }
  return new CheckFailure(`${display.label} got ${got.length} bytes ${hexBytes(got, 16)}`, {
    expected: `${what}: ${sent.length} bytes ${hexBytes(sent, 16)}`,
    dump: dumpFrame(got, { littleEndian: le, marks: fieldDifferences(sent, got, le) }),
    hint: diagnosis ?? hint ?? "the server must relay each frame exactly as it came",
  });
}

/** A display and a keyboard, registered: what most checks start from. */
export async function pair(
  ctx: CheckContext,
  target: ServerTarget,
): Promise<{ display: Peer; keyboard: Peer }> {
  const display = await openDisplay(ctx, target, { label: "the display" });
  const keyboard = await openKeyboard(ctx, target, { label: "the keyboard" });
  await barrier(ctx, target, keyboard, [display]);
  return { display, keyboard };
}

/** Re-throws a failure with a different hint when it has none of its own that fits better. */
function withHint(error: unknown, hint: string): unknown {
  if (!(error instanceof CheckFailure)) return error;
  return new CheckFailure(error.message, {
    expected: error.expected,
    dump: error.dump,
    hint: error.hint && !error.hint.startsWith("does the server read") ? error.hint : hint,
  });
}

/** Writes `bytes` in pieces ending at `cuts`, pausing between them. */
async function writeInPieces(peer: Peer, bytes: Uint8Array, cuts: number[], pauseMs = 20) {
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length]) {
    await send(peer, bytes.subarray(from, cut));
    from = cut;
    await delay(pauseMs);
  }
}

/** The core checks, in the order they run. */
export function coreChecks(target: ServerTarget): Check[] {
  const check = (
    name: string,
    description: string,
    run: (ctx: CheckContext) => Promise<void>,
  ): Check => ({ group: GROUP, name, description, run });
  const maxText = (ulen: number) => Math.min(60000, target.maxFrame - 32 - ulen);

  return [
    check("connect", "a TCP (or TLS) connection is accepted", async (ctx) => {
      (await openDisplay(ctx, target, { label: "a client", identify: false })).close();
    }),

    check(
      "identify",
      "a display and a keyboard identify, and the keyboard's message reaches the display",
      async (ctx) => {
        await pair(ctx, target);
      },
    ),

    check(
      "relay-byte-for-byte",
      'the 52-byte "Jason" / "Hello World" frame reaches a display byte for byte',
      async (ctx) => {
        const { display, keyboard } = await pair(ctx, target);
        const sent = frameOf("Jason", "Hello World");
        await send(keyboard, sent);
        const what = 'the 52-byte "Jason" frame unchanged';
        const got = await nextFrame(ctx, display, what, { sent });
        if (!equalBytes(got, sent)) throw relayMismatch(display, sent, got, what);
      },
    ),

    check(
      "identify-split",
      "identify codes that arrive one byte at a time are understood",
      async (ctx) => {
        const hint = "TCP may deliver the 4 bytes of an identify code in several reads: " +
          "loop until all 4 have arrived (recvall), never assume one recv() returns them all";
        try {
          const display = await openDisplay(ctx, target, { label: "the display", identify: false });
          const keyboard = await openKeyboard(ctx, target, {
            label: "the keyboard",
            identify: false,
          });
          await writeInPieces(display, Uint8Array.of(0, 0, 0, 1), [1, 2, 3], 30);
          await writeInPieces(keyboard, Uint8Array.of(0, 0, 0, 2), [1, 2, 3], 30);
          await barrier(ctx, target, keyboard, [display]);
        } catch (error) {
          throw withHint(error, hint);
        }
      },
    ),

    check("frame-split", "a frame written in small pieces is relayed whole", async (ctx) => {
      const { display, keyboard } = await pair(ctx, target);
      const sent = frameOf("Jason", "arrived in pieces");
      await writeInPieces(keyboard, sent, [1, 2, 4, 6, 9, 20, 30]);
      await expectRelayed(
        ctx,
        display,
        sent,
        "the frame, whole",
        "TCP may split a frame across many reads: read the 4-byte overall_length, then loop " +
          "until overall_length more bytes have arrived (recvall) before relaying",
      );
    }),

    check(
      "frames-coalesced",
      "three frames written in one go are relayed as three frames",
      async (ctx) => {
        const { display, keyboard } = await pair(ctx, target);
        const frames = ["first", "second", "third"].map((t) => frameOf("Jason", t));
        await send(keyboard, new Uint8Array(frames.flatMap((f) => [...f])));
        const hint = "one read may return several frames back to back: split them by " +
          "overall_length and keep the leftover bytes for the next frame";
        for (const [i, sent] of frames.entries()) {
          await expectRelayed(ctx, display, sent, `frame ${i + 1} of 3`, hint);
        }
      },
    ),

    check("fan-out", "one message reaches each of five displays", async (ctx) => {
      const displays: Peer[] = [];
      for (let i = 1; i <= 5; i++) {
        displays.push(await openDisplay(ctx, target, { label: `display ${i}` }));
      }
      const keyboard = await openKeyboard(ctx, target, { label: "the keyboard" });
      await barrier(ctx, target, keyboard, displays);
      const sent = frameOf("Jason", "to everyone");
      await send(keyboard, sent);
      await Promise.all(
        displays.map((d) =>
          expectRelayed(
            ctx,
            d,
            sent,
            "the message, like every other display",
            "relay each frame to every connected display, not just one of them",
          )
        ),
      );
    }),

    check(
      "keyboards-get-nothing",
      "frames go to displays only: keyboards are sent nothing",
      async (ctx) => {
        const display = await openDisplay(ctx, target, { label: "the display" });
        const keyboards = [
          await openKeyboard(ctx, target, { label: "the sending keyboard" }),
          await openKeyboard(ctx, target, { label: "the other keyboard" }),
        ];
        for (const keyboard of keyboards) keyboard.startReading();
        await barrier(ctx, target, keyboards[0], [display]);
        await send(keyboards[0], frameOf("Jason", "for displays only"));
        await nextFrame(ctx, display, "the message");
        await delay(100);
        const echoed = keyboards.find((k) => k.received > 0);
        if (echoed) {
          throw new CheckFailure(`${echoed.label} received ${echoed.received} bytes`, {
            expected: "nothing: keyboards receive nothing",
            dump: dumpBytes(echoed.unread(), 64),
            hint: "relay frames to displays only: a keyboard may never read, and then what is " +
              "sent to it fills its socket buffer and blocks the server",
          });
        }
      },
    ),

    check(
      "order",
      "three keyboards interleaving: every display sees the same order, each keyboard's in order",
      async (ctx) => await checkOrder(ctx, target),
    ),

    check("utf8", "multi-byte UTF-8 in username and text is relayed unchanged", async (ctx) => {
      const { display, keyboard } = await pair(ctx, target);
      const sent = frameOf("Zoë🚀", "héllo wörld — 日本語 🎉");
      await send(keyboard, sent);
      await expectRelayed(ctx, display, sent, "the frame unchanged");
    }),

    check("empty-text", "a message with an empty text (tlen 0) is relayed", async (ctx) => {
      const { display, keyboard } = await pair(ctx, target);
      const sent = frameOf("quiet", "");
      await send(keyboard, sent);
      await expectRelayed(
        ctx,
        display,
        sent,
        "the 40-byte frame with tlen 0",
        "a frame with tlen 0 must be relayed too: reading 0 bytes returns b'' at once, " +
          "which does not mean the peer closed the connection",
      );
    }),

    check(
      "long-text",
      `a text of ${maxText(4)} bytes, near the ${target.maxFrame}-byte limit, is relayed`,
      async (ctx) => {
        const { display, keyboard } = await pair(ctx, target);
        const sent = frameOf("long", longText(maxText(4), target.nonce));
        await send(keyboard, sent);
        await expectRelayed(
          ctx,
          display,
          sent,
          `the ${sent.length}-byte frame whole`,
          `frames up to overall_length ${target.maxFrame} are valid: read until the whole ` +
            "frame has arrived, however many reads that takes",
        );
      },
    ),

    check(
      "display-churn",
      "displays joining and leaving while messages flow lose nothing for the others",
      async (ctx) => await checkChurn(ctx, target),
    ),

    check(
      "slow-display",
      "a display that never reads does not hold up the others",
      async (ctx) => await checkSlowDisplay(ctx, target),
    ),
  ];
}
