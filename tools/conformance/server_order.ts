/**
 * The server checks that need many messages: one global order across keyboards and displays,
 * displays coming and going mid-stream, and a display that never reads (the others must not
 * wait for it).
 *
 * @module
 */

import { type CheckContext, CheckFailure } from "./check.ts";
import { delay, seconds } from "./deadline.ts";
import { BLOCKING_FANOUT_HINT } from "./hints.ts";
import type { Peer } from "./peer.ts";
import {
  barrier,
  decode,
  dumpInvalid,
  frameOf,
  longText,
  nextFrame,
  openDisplay,
  openKeyboard,
  send,
  type ServerTarget,
} from "./server_helpers.ts";

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

export async function checkOrder(ctx: CheckContext, target: ServerTarget): Promise<void> {
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

export async function checkChurn(ctx: CheckContext, target: ServerTarget): Promise<void> {
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

export async function checkSlowDisplay(ctx: CheckContext, target: ServerTarget): Promise<void> {
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
