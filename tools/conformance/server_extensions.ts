/**
 * Checks beyond the lab brief, run with `--extensions`: peers that identify little-endian
 * (PROTOCOL.md §2) interoperate with big-endian ones, the server converting every int32.
 *
 * @module
 */

import { type Check, type CheckContext, CheckFailure } from "./check.ts";
import { equalBytes } from "./hints.ts";
import type { Peer } from "./peer.ts";
import { expectRelayed, relayMismatch } from "./server_core.ts";
import {
  barrier,
  frameOf,
  nextFrame,
  openDisplay,
  openKeyboard,
  sameExceptTime,
  send,
  type ServerTarget,
} from "./server_helpers.ts";

const GROUP = "extensions";
const NOT_CONVERTED = "a display that identified little-endian (01 00 00 00) must get every " +
  "int32 of every frame little-endian, whichever order the keyboard used: swap overall_length, " +
  "ulen, the six date fields and tlen (never the username or text bytes)";

/** The little-endian interoperability checks. */
export function extensionChecks(target: ServerTarget): Check[] {
  return [
    {
      group: GROUP,
      name: "le-display",
      description: "a big-endian keyboard's frame reaches a little-endian display converted",
      run: async (ctx) => {
        const { bigDisplay, littleDisplay } = await displays(ctx, target);
        const keyboard = await openKeyboard(ctx, target, { label: "the big-endian keyboard" });
        await registered(ctx, target, keyboard, [bigDisplay, littleDisplay]);
        const sent = frameOf("Jason", "Hello World");
        await send(keyboard, sent);
        await expectRelayed(ctx, bigDisplay, sent, "the frame unchanged");
        await expectConverted(ctx, littleDisplay, frameOf("Jason", "Hello World", le), sent);
      },
    },
    {
      group: GROUP,
      name: "le-keyboard",
      description: "a little-endian keyboard's frame reaches a big-endian display converted",
      run: async (ctx) => {
        const { bigDisplay, littleDisplay } = await displays(ctx, target);
        const sync = await openKeyboard(ctx, target, { label: "the big-endian keyboard" });
        await registered(ctx, target, sync, [bigDisplay, littleDisplay]);
        const keyboard = await openKeyboard(ctx, target, {
          label: "the little-endian keyboard",
          littleEndian: true,
        });
        const sent = frameOf("Zoë", "from a little-endian keyboard", le);
        await send(keyboard, sent);
        const big = frameOf("Zoë", "from a little-endian keyboard");
        await expectConverted(ctx, bigDisplay, big, sent);
        await expectRelayed(ctx, littleDisplay, sent, "the frame unchanged (little-endian)");
      },
    },
  ];
}

const le = { littleEndian: true };

async function displays(ctx: CheckContext, target: ServerTarget) {
  const bigDisplay = await openDisplay(ctx, target, { label: "the big-endian display" });
  const littleDisplay = await openDisplay(ctx, target, {
    label: "the little-endian display",
    littleEndian: true,
  });
  return { bigDisplay, littleDisplay };
}

async function registered(ctx: CheckContext, target: ServerTarget, keyboard: Peer, all: Peer[]) {
  try {
    await barrier(ctx, target, keyboard, all);
  } catch (error) {
    if (error instanceof CheckFailure && /closed the little-endian/.test(error.message)) {
      throw new CheckFailure(error.message, {
        expected: "the server accepts the identify code 01 00 00 00 (DISPLAY, little-endian)",
        hint: "this is an extension beyond the brief (PROTOCOL.md §2): a client that " +
          "identifies little-endian speaks little-endian for the whole connection",
      });
    }
    throw error;
  }
}

/** Receives a frame that must be `want`, the conversion of `sent` to the display's order. */
async function expectConverted(
  ctx: CheckContext,
  display: Peer,
  want: Uint8Array,
  sent: Uint8Array,
): Promise<void> {
  const what = `the frame converted to ${display.littleEndian ? "little" : "big"}-endian`;
  let got: Uint8Array;
  try {
    got = await nextFrame(ctx, display, what, { sent: want });
  } catch (error) {
    if (error instanceof CheckFailure && !error.hint) {
      throw new CheckFailure(error.message, {
        expected: error.expected,
        dump: error.dump,
        hint: NOT_CONVERTED,
      });
    }
    throw error;
  }
  if (sameExceptTime(want, got, display.littleEndian)) return;
  if (equalBytes(got, sent)) {
    throw new CheckFailure(`${display.label} got the frame unconverted`, {
      expected: what,
      hint: NOT_CONVERTED,
    });
  }
  throw relayMismatch(display, want, got, what, NOT_CONVERTED);
}
