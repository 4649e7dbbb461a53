/**
 * The fan-out of lib/server/fanout.ts and the client memory budget of lib/server/client_memory.ts, on
 * writers the test completes by hand: who is dropped and when, when keyboards are paused,
 * and what is counted as held.
 */

import assert from "node:assert/strict";
import { ClientMemory, type MemoryHolder } from "../lib/server/client_memory.ts";
import { type BacklogLimits, DisplayQueue, Fanout, type Writable } from "../lib/server/fanout.ts";
import { encodeFrame } from "../lib/protocol/frame.ts";
import { TIME } from "./helpers/vectors.ts";

const LIMITS: BacklogLimits = { maxBacklog: 100_000, softBacklog: 40_000, softSeconds: 60 };

/** A connection whose writes complete only when the test says so. */
class ManualWriter implements Writable {
  readonly written: Uint8Array[] = [];
  #pending: { bytes: Uint8Array; resolve: (n: number) => void }[] = [];

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve) => this.#pending.push({ bytes, resolve }));
  }

  /** Completes every pending write; returns how many bytes they carried. */
  drain(): number {
    let n = 0;
    for (const { bytes, resolve } of this.#pending.splice(0)) {
      this.written.push(bytes);
      n += bytes.length;
      resolve(bytes.length);
    }
    return n;
  }
}

/** A display on a manual writer, with the reason it was dropped, if it was. */
function display(fanout: Fanout, limits = LIMITS) {
  const writer = new ManualWriter();
  const state = { writer, dropped: "" };
  const queue = new DisplayQueue(writer, false, limits, (reason) => state.dropped = reason);
  fanout.subscribe(queue);
  return {
    ...state,
    queue,
    get dropped() {
      return state.dropped;
    },
  };
}

/** Resolves after the fan-out's microtask and the writers' callbacks have run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const frame = (size: number) =>
  encodeFrame({ username: "k", time: TIME, text: "x".repeat(size - 37) });

Deno.test({
  name: "most displays behind pause the keyboards until most have caught up",
  permissions: "none",
  async fn() {
    const fanout = new Fanout(undefined, 10_000);
    const displays = [display(fanout), display(fanout), display(fanout)];
    assert.equal(fanout.ready(), undefined, "nobody behind: read on");
    fanout.publish(frame(60_000), false);
    await settle();
    const ready = fanout.ready();
    assert.ok(ready, "every display is behind: the keyboards wait");
    let resumed = false;
    ready.then(() => resumed = true);
    displays[0].writer.drain();
    await settle();
    assert.equal(resumed, false, "two of three still behind");
    displays[1].writer.drain();
    await settle();
    assert.equal(resumed, true, "most caught up: read on");
    assert.equal(fanout.ready(), undefined);
    for (const d of displays) assert.equal(d.dropped, "");
    fanout.close();
  },
});

Deno.test({
  name: "a display over the hard limit is kept while its writes complete, dropped once they stop",
  permissions: "none",
  async fn() {
    const fanout = new Fanout(undefined, 10_000);
    const fast = [display(fanout), display(fanout)];
    const slow = display(fanout);
    fanout.publish(frame(150_000), false);
    await settle();
    for (const d of fast) d.writer.drain();
    await settle();
    assert.equal(slow.dropped, "", "its write began a moment ago: the server's lag, not its");
    assert.ok(fanout.ready(), "the keyboards wait for it");
    const started = performance.now();
    while (slow.dropped === "" && performance.now() - started < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(slow.dropped, /too slow: unsent backlog 150000 bytes over the limit 100000/);
    assert.ok(performance.now() - started < 1500, "dropped soon after its write stalled");
    assert.equal(fanout.ready(), undefined, "and the keyboards read on");
    for (const d of fast) assert.equal(d.dropped, "");
    fanout.close();
  },
});

Deno.test({
  name: "a pause lasts at most its bound; then displays still behind meet the hard limit",
  permissions: "none",
  async fn() {
    const fanout = new Fanout(undefined, 50);
    const stalled = [display(fanout), display(fanout)];
    const live = display(fanout);
    fanout.publish(frame(150_000 - 4), false);
    await settle();
    live.writer.drain();
    const ready = fanout.ready();
    assert.ok(ready);
    const started = performance.now();
    await ready;
    assert.ok(performance.now() - started < 1000, "the pause ended at its bound");
    assert.equal(fanout.ready(), undefined, "past the bound, keyboards read on");
    fanout.publish(frame(1000), false);
    await settle();
    for (const d of stalled) assert.match(d.dropped, /too slow/);
    assert.equal(live.dropped, "");
    fanout.close();
  },
});

Deno.test({
  name: "a display's own joined copy is counted in the client memory, the runs it shares are not",
  permissions: "none",
  async fn() {
    const memory = new ClientMemory(0);
    const fanout = new Fanout(memory);
    const displays = [display(fanout), display(fanout)];
    const bytes = frame(1000);
    fanout.publish(bytes, false);
    await settle();
    assert.equal(memory.used, 0, "one run, shared: dropping a display would free none of it");
    fanout.publish(bytes, false);
    await settle();
    fanout.publish(bytes, false);
    await settle();
    displays[0].writer.drain();
    await settle();
    assert.equal(displays[0].queue.ownBytes, 2000, "two queued runs joined into its own copy");
    assert.equal(memory.used, 2000);
    displays[1].writer.drain();
    await settle();
    assert.equal(memory.used, 4000);
    displays[0].writer.drain();
    await settle();
    assert.equal(memory.used, 2000, "a written copy is given back");
    displays[1].queue.discard();
    assert.equal(memory.used, 0, "a dropped display's copy is uncounted at once");
    displays[1].writer.drain();
    await settle();
    assert.equal(memory.used, 0);
    fanout.close();
  },
});

/** A manual writer that also takes several runs at once, as a native socket's writev does. */
class ManualVectorWriter extends ManualWriter {
  readonly vectors: (readonly Uint8Array[])[] = [];

  readonly writev = (chunks: readonly Uint8Array[]): Promise<number> => {
    this.vectors.push(chunks);
    return this.write(concat(chunks));
  };
}

const concat = (chunks: readonly Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) out.set(chunk, (at += chunk.length) - chunk.length);
  return out;
};

Deno.test({
  name:
    "a display on a connection with writev writes its queued runs as they are, with no copy of its own",
  permissions: "none",
  async fn() {
    const memory = new ClientMemory(0);
    const fanout = new Fanout(memory);
    const writer = new ManualVectorWriter();
    const queue = new DisplayQueue(writer, false, LIMITS, () => {});
    fanout.subscribe(queue);
    const runs = [frame(1000), frame(500), frame(700)];
    for (const run of runs) {
      fanout.publish(run, false);
      await settle();
    }
    writer.drain();
    await settle();
    assert.equal(writer.vectors.length, 1, "the two runs queued behind the first: one writev");
    assert.equal(writer.vectors[0][0], runs[1], "the shared run itself, not a copy");
    assert.equal(writer.vectors[0][1], runs[2]);
    assert.equal(queue.ownBytes, 0);
    assert.equal(memory.used, 0, "nothing of its own to count");
    assert.equal(queue.backlog, 1200, "queued bytes count until the writev completes");
    writer.drain();
    await settle();
    assert.equal(queue.backlog, 0);
    assert.deepEqual(writer.written.map((w) => w.length), [1000, 1200]);
    fanout.close();
  },
});

Deno.test({
  name: "over the client memory budget, the biggest holders are dropped first",
  permissions: "none",
  async fn() {
    const memory = new ClientMemory(1000);
    const evicted: string[] = [];
    const holder = (name: string, held: number): MemoryHolder => ({
      held,
      evict: (reason) => {
        evicted.push(`${name}: ${reason}`);
        memory.change(-held);
      },
    });
    const holders = [holder("a", 100), holder("b", 500), holder("c", 300), holder("d", 200)];
    for (const h of holders) {
      memory.add(h);
      memory.change(h.held);
    }
    assert.equal(memory.used, 1100);
    await settle();
    assert.equal(evicted.length, 1, evicted.join("\n"));
    assert.match(evicted[0], /^b: over the client memory budget: it held 500 bytes/);
    assert.equal(memory.used, 600);
  },
});
