/**
 * The server checks that follow from the lab brief alone: identify handling, relaying byte
 * for byte, TCP's freedom to split and join writes, fan-out, one global order, UTF-8, empty
 * and long texts, displays coming and going, and a display that never reads.
 *
 * @module
 */

import { type Check, type CheckContext, CheckFailure } from "./check.ts";
import { delay, seconds } from "./deadline.ts";
import { dumpBytes, dumpFrame, hexBytes } from "./hexdump.ts";
import {
  BLOCKING_FANOUT_HINT,
  characterCountHint,
  equalBytes,
  fieldDifferences,
  relayHint,
} from "./hints.ts";
import type { Peer } from "./peer.ts";
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

/** Texts of `n` bytes of ASCII that end in a recognisable marker. */
export function longText(n: number, marker: string): string {
  const tail = ` ${marker} END`;
  const body = "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(n / 45) + 1);
  return body.slice(0, Math.max(0, n - tail.length)) + tail;
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

/** Reads `count` frames from a display and decodes them as `user text` keys. */
async function readMessages(
  ctx: CheckContext,
  display: Peer,
  count: number,
  maxFrame: number,
  deadline = ctx.deadline,
): Promise<string[]> {
  const keys: string[] = [];
  while (keys.length < count) {
    let frame: Uint8Array;
    try {
      frame = await nextFrame(ctx, display, `message ${keys.length + 1} of ${count}`, {
        maxFrame,
        deadline,
      });
    } catch (error) {
      if (error instanceof CheckFailure) {
        throw new CheckFailure(
          `${display.label} got ${keys.length} of ${count} messages; then: ${error.message}`,
          { expected: `all ${count} messages`, dump: error.dump, hint: error.hint },
        );
      }
      throw error;
    }
    const message = decode(frame, display.littleEndian);
    if (typeof message === "string") {
      throw new CheckFailure(`${display.label} received a frame that is not valid: ${message}`, {
        dump: dumpInvalid(frame, display.littleEndian),
      });
    }
    keys.push(`${message.username} ${message.text}`);
  }
  return keys;
}

async function checkOrder(ctx: CheckContext, target: ServerTarget): Promise<void> {
  const perKeyboard = 40;
  const displays: Peer[] = [];
  for (let i = 1; i <= 3; i++) {
    displays.push(await openDisplay(ctx, target, { label: `display ${i}` }));
  }
  const keyboards: Peer[] = [];
  for (let i = 1; i <= 3; i++) {
    keyboards.push(await openKeyboard(ctx, target, { label: `keyboard ${i}` }));
  }
  await barrier(ctx, target, keyboards[0], displays);
  const sending = keyboards.map(async (keyboard, k) => {
    let n = 0;
    while (n < perKeyboard) {
      const burst = Math.min(perKeyboard - n, 1 + ((n * 7 + k * 3) % 5));
      const frames = [];
      for (let i = 0; i < burst; i++, n++) frames.push(...frameOf(`k${k + 1}`, `#${n}`));
      await send(keyboard, new Uint8Array(frames));
      await delay((n + k) % 3);
    }
  });
  const total = perKeyboard * keyboards.length;
  const [seen] = await Promise.all([
    Promise.all(displays.map((d) => readMessages(ctx, d, total, 1024))),
    Promise.all(sending),
  ]);
  for (const [i, keys] of seen.entries()) {
    const last = new Map<string, number>();
    for (const key of keys) {
      const [user, num] = key.split(" #");
      const n = Number(num);
      const previous = last.get(user) ?? -1;
      if (n !== previous + 1) {
        throw new CheckFailure(
          `${displays[i].label} got ${user} #${n} right after ${user} #${previous}`,
          {
            expected: `each keyboard's messages in the order it sent them (#${previous + 1} next)`,
            hint: "relay a keyboard's frames one at a time, in the order they arrive, and " +
              "never drop or duplicate one",
          },
        );
      }
      last.set(user, n);
    }
  }
  const reference = seen[0];
  for (const [i, keys] of seen.entries()) {
    const at = keys.findIndex((key, j) => key !== reference[j]);
    if (at >= 0) {
      throw new CheckFailure(
        `at position ${at + 1}, ${displays[i].label} got "${keys[at]}" but ${
          displays[0].label
        } got "${reference[at]}"`,
        {
          expected: "every display receives the messages in one and the same order",
          hint: "hand each frame to every display's queue in one step (under one lock, or " +
            "from one task) before taking the next frame",
        },
      );
    }
  }
}

async function checkChurn(ctx: CheckContext, target: ServerTarget): Promise<void> {
  const total = 150;
  const steady = await openDisplay(ctx, target, { label: "the steady display" });
  const leavers = [
    await openDisplay(ctx, target, { label: "leaving display 1" }),
    await openDisplay(ctx, target, { label: "leaving display 2" }),
  ];
  const keyboard = await openKeyboard(ctx, target, { label: "the keyboard" });
  await barrier(ctx, target, keyboard, [steady, ...leavers]);
  const joiners: Peer[] = [];
  const joinerReads: Promise<number[]>[] = [];
  const leaverReads = leavers.map((d) => collectIndexes(ctx, d, total));
  const steadyRead = collectIndexes(ctx, steady, total);
  const events: Record<number, () => Promise<void>> = {
    30: async () => {
      joiners.push(await openDisplay(ctx, target, { label: "joining display 1" }));
      joinerReads.push(collectIndexes(ctx, joiners[0], total));
    },
    50: () => Promise.resolve(leavers[0].close()),
    70: async () => {
      joiners.push(await openDisplay(ctx, target, { label: "joining display 2" }));
      joinerReads.push(collectIndexes(ctx, joiners[1], total));
    },
    100: () => Promise.resolve(leavers[1].close()),
  };
  for (let i = 0; i < total; i++) {
    await events[i]?.();
    await send(keyboard, frameOf("churn", `#${i}`));
    await delay(2);
  }
  const got = await steadyRead;
  if (got.length !== total || got.some((n, i) => n !== i)) {
    const missing = firstGap(got);
    throw new CheckFailure(
      `the steady display got ${got.length} of ${total} messages` +
        (missing === undefined ? "" : `; the first one missing is #${missing}`),
      {
        expected: `all ${total} messages, in order, while other displays came and went`,
        hint: "a display leaving must not cost the others anything: when a send to a closed " +
          "display fails, drop that display and carry on with the rest",
      },
    );
  }
  for (const [i, read] of joinerReads.entries()) {
    const seen = await read;
    const contiguous = seen.length > 0 && seen.every((n, j) => n === seen[0] + j) &&
      seen[seen.length - 1] === total - 1;
    if (!contiguous) {
      throw new CheckFailure(
        `${joiners[i].label} got ${seen.length} messages: ${summarise(seen)}`,
        {
          expected: `every message from the moment it joined to #${total - 1}, without gaps`,
          hint: "add a display to the set that frames are relayed to as soon as it has " +
            "identified, and relay it every frame from then on",
        },
      );
    }
  }
  for (const [i, read] of leaverReads.entries()) {
    const seen = await read;
    if (seen.some((n, j) => n !== j)) {
      throw new CheckFailure(`${leavers[i].label} got ${summarise(seen)} before it left`, {
        expected: "messages from #0 on, without gaps, until it left",
      });
    }
  }
}

/** Reads churn messages until #last arrives or the connection ends; returns their numbers. */
async function collectIndexes(ctx: CheckContext, display: Peer, total: number): Promise<number[]> {
  const seen: number[] = [];
  for (;;) {
    let frame: Uint8Array;
    try {
      frame = await display.readFrame(ctx.deadline, { maxFrame: 1 << 20 });
    } catch {
      return seen;
    }
    const message = decode(frame, display.littleEndian);
    if (typeof message === "string" || message.username !== "churn") continue;
    const n = Number(message.text.slice(1));
    seen.push(n);
    if (n === total - 1) return seen;
  }
}

function firstGap(seen: number[]): number | undefined {
  for (let i = 0; i < seen.length; i++) if (seen[i] !== i) return i;
  return undefined;
}

function summarise(seen: number[]): string {
  if (seen.length === 0) return "none";
  const shown = seen.length > 12
    ? [...seen.slice(0, 6), "…", ...seen.slice(-5)].join(", ")
    : seen.join(", ");
  return `#${shown}`.replaceAll(", ", ", #").replace("#…", "…");
}

async function checkSlowDisplay(ctx: CheckContext, target: ServerTarget): Promise<void> {
  const textBytes = Math.min(60000, target.maxFrame - 32 - 5);
  const count = Math.ceil(12 * 1024 * 1024 / (textBytes + 41));
  const slow = await openDisplay(ctx, target, { label: "the display that never reads" });
  const readers = [
    await openDisplay(ctx, target, { label: "display A" }),
    await openDisplay(ctx, target, { label: "display B" }),
  ];
  const keyboard = await openKeyboard(ctx, target, { label: "the keyboard" });
  await barrier(ctx, target, keyboard, [slow, ...readers]);
  slow.pause();
  const frame = frameOf("flood", longText(textBytes, target.nonce));
  // The keyboard stays at most WINDOW frames ahead of the reading displays, so their own
  // backlog stays small (a server may rightly drop a display that falls megabytes behind)
  // while the display that never reads falls further behind with every frame.
  const window = 4;
  const counts = readers.map(() => 0);
  const done = readers.map(() => false);
  const behind = () => Math.min(...counts.map((n, r) => done[r] ? count : n));
  let progress = () => {};
  let written = 0;
  const writing = (async () => {
    while (written < count) {
      while (behind() < written - window) {
        await new Promise<void>((resolve) => progress = resolve);
      }
      await keyboard.write(frame);
      written++;
    }
  })();
  writing.catch(() => {});
  const reading = readers.map(async (reader, r) => {
    while (counts[r] < count) {
      try {
        await reader.readFrame(ctx.deadline, { maxFrame: target.maxFrame + 64 });
      } catch {
        break;
      }
      counts[r]++;
      progress();
    }
    // A reader that is done (or gone) must not hold the keyboard back.
    done[r] = true;
    progress();
  });
  await Promise.all(reading);
  const mb = (frames: number) => `${(frames * frame.length / 1048576).toFixed(1)} MB`;
  const short = readers.findIndex((_, r) => counts[r] < count);
  if (short >= 0) {
    const reader = readers[short];
    const why = reader.state === "open"
      ? `within ${seconds(ctx.timeoutMs)}`
      : "before the server closed its connection";
    throw new CheckFailure(
      `${reader.label} received ${counts[short]} of ${count} messages (${mb(counts[short])} of ${
        mb(count)
      }) ${why}; the keyboard got ${mb(written)} written`,
      {
        expected: `displays that read get all ${mb(count)} promptly while another display ` +
          "reads nothing",
        hint: reader.state === "open"
          ? BLOCKING_FANOUT_HINT
          : `the server disconnected a display that kept up (never more than ${window} ` +
            "messages behind): drop only displays that fall far behind",
      },
    );
  }
}
