/**
 * History without the network: the ring's replay, the history bus's boundary (no gap, no
 * duplicate, kept before delivered) on displays whose writes the test completes, the fan-out's
 * "from the next run published" contract it relies on, and the SQLite store's migrations,
 * pruning and sentences on files in a temporary directory.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { concatBytes } from "../lib/protocol/bytes.ts";
import { encodeFrame } from "../lib/protocol/frame.ts";
import { splitFrames } from "../lib/protocol/frame_decoder.ts";
import { decodeFrameBody } from "../lib/protocol/frame.ts";
import { DisplayQueue, Fanout, type Writable } from "../lib/server/fanout.ts";
import { HistoryBus } from "../lib/server/history/history_bus.ts";
import { RingStore } from "../lib/server/history/ring.ts";
import { SCHEMA_VERSION } from "../lib/server/history/schema.ts";
import { SqliteStore } from "../lib/server/history/sqlite_store.ts";
import type { HistoryRun, HistoryStore } from "../lib/server/history/store.ts";
import { openReadOnly, queryHistory } from "../lib/server/history/query.ts";
import { Logger } from "../lib/cli/log.ts";
import { TIME } from "./helpers/vectors.ts";
import { parseServerArgs, type ServerConfig } from "../main_server.ts";

const LIMITS = { maxBacklog: 1_000_000, softBacklog: 400_000, softSeconds: 60 };

const frame = (text: string, littleEndian = false) =>
  encodeFrame({ username: "k", time: TIME, text }, { littleEndian });

/** The texts of a run of frames. */
function texts(bytes: Uint8Array, littleEndian = false): string[] {
  return splitFrames(bytes, { littleEndian }).map((body) =>
    decodeFrameBody(body, { littleEndian }).text
  );
}

/** A connection that takes every write at once and keeps it. */
class Collector implements Writable {
  readonly chunks: Uint8Array[] = [];
  write(bytes: Uint8Array): Promise<number> {
    this.chunks.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }
  get bytes(): Uint8Array {
    return concatBytes(this.chunks);
  }
}

function queue(littleEndian = false) {
  const writer = new Collector();
  return { writer, queue: new DisplayQueue(writer, littleEndian, LIMITS, () => {}) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A logger whose lines the test reads. */
function collectingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger("info", (line) => lines.push(line)), lines };
}

Deno.test({
  name: "the ring replays its last N frames, oldest first, in the display's byte order",
  permissions: "none",
  fn() {
    const ring = new RingStore(3);
    ring.append([{ frames: concatBytes([frame("1"), frame("2")]), littleEndian: false }], 0);
    ring.append(
      [{ frames: concatBytes([frame("3", true), frame("4", true)]), littleEndian: true }],
      0,
    );
    assert.equal(ring.size, 3);
    assert.deepEqual(ring.replay(false, 0), concatBytes([frame("2"), frame("3"), frame("4")]));
    assert.deepEqual(
      ring.replay(true, 0),
      concatBytes([frame("2", true), frame("3", true), frame("4", true)]),
    );
  },
});

Deno.test({
  name: "the ring does not replay frames older than its maximum age",
  permissions: "none",
  fn() {
    const ring = new RingStore(10, { maxAgeMs: 1000 });
    ring.append([{ frames: frame("old"), littleEndian: false }], 0);
    ring.append([{ frames: frame("new"), littleEndian: false }], 1500);
    assert.deepEqual(texts(ring.replay(false, 1600)), ["new"]);
  },
});

Deno.test({
  name: "a full ring that ages out one frame forgets that frame only",
  permissions: "none",
  fn() {
    const ring = new RingStore(10, { maxAgeMs: 1000 });
    // 15 frames into 10 places: the first five are gone, and m5 is the only old one left.
    for (let i = 0; i < 15; i++) {
      ring.append([{ frames: frame(`m${i}`), littleEndian: false }], i < 6 ? 0 : 5000);
    }
    const expected = Array.from({ length: 9 }, (_, i) => `m${i + 6}`);
    assert.deepEqual(texts(ring.replay(false, 5500)), expected);
    assert.equal(ring.size, 9);
  },
});

Deno.test({
  name: "the fan-out delivers to a display subscribed before a run's delivery only later runs",
  permissions: "none",
  async fn() {
    const fanout = new Fanout();
    const early = queue();
    fanout.subscribe(early.queue);
    fanout.publish(frame("before"), false);
    const late = queue();
    fanout.subscribe(late.queue);
    await settle();
    fanout.publish(frame("after"), false);
    await settle();
    assert.deepEqual(texts(early.writer.bytes), ["before", "after"]);
    assert.deepEqual(texts(late.writer.bytes), ["after"]);
    fanout.close();
  },
});

Deno.test({
  name: "the history bus gives displays joining at every point one contiguous sequence",
  permissions: "none",
  async fn() {
    const fanout = new Fanout();
    const bus = new HistoryBus(fanout, new RingStore(100_000), collectingLog().log);
    const displays: ReturnType<typeof queue>[] = [];
    let sent = 0;
    for (let turn = 0; turn < 50; turn++) {
      // Joins before, between and after the publishes of one turn, and in the microtasks.
      const join = (le: boolean) => {
        const d = queue(le);
        displays.push(d);
        bus.subscribe(d.queue);
      };
      join(turn % 2 === 0);
      bus.publish(frame(String(sent++)), false);
      join(turn % 3 === 0);
      bus.publish(frame(String(sent++), true), true);
      queueMicrotask(() => join(false));
      queueMicrotask(() => queueMicrotask(() => join(true)));
      await settle();
    }
    await settle();
    const all = Array.from({ length: sent }, (_, i) => String(i));
    for (const d of displays) assert.deepEqual(texts(d.writer.bytes, d.queue.littleEndian), all);
    bus.close();
  },
});

/** A store that records when runs were kept, and fails when told to. */
class WatchedStore implements HistoryStore {
  readonly ring = new RingStore(100);
  kept = 0;
  failing = false;
  append(runs: readonly HistoryRun[], now: number): void {
    if (this.failing) throw new Error("The disk is full.");
    this.kept += runs.length;
    this.ring.append(runs, now);
  }
  replay(littleEndian: boolean, now: number): Uint8Array {
    return this.ring.replay(littleEndian, now);
  }
  close(): void {}
}

Deno.test({
  name: "the history bus keeps a run before any display is sent it, and relays when keeping fails",
  permissions: "none",
  async fn() {
    const store = new WatchedStore();
    const { log, lines } = collectingLog();
    const bus = new HistoryBus(new Fanout(), store, log);
    const writer = new Collector();
    const original = writer.write.bind(writer);
    const keptAtWrite: number[] = [];
    writer.write = (bytes) => {
      keptAtWrite.push(store.kept);
      return original(bytes);
    };
    bus.subscribe(new DisplayQueue(writer, false, LIMITS, () => {}));
    bus.publish(frame("a"), false);
    await settle();
    assert.deepEqual(keptAtWrite, [1], "kept before written");
    store.failing = true;
    bus.publish(frame("b"), false);
    bus.publish(frame("c"), false);
    await settle();
    store.failing = false;
    bus.publish(frame("d"), false);
    await settle();
    assert.deepEqual(texts(writer.bytes), ["a", "b", "c", "d"], "relaying went on");
    const errors = lines.filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, lines.join("\n"));
    assert.match(errors[0], /history: The disk is full\. Relaying goes on/);
    assert.ok(lines.some((l) => /keeping messages again \(2 relayed meanwhile not kept\)/.test(l)));
    bus.close();
  },
});

Deno.test({
  name: "a display joining while an asynchronous store commits waits for the same boundary",
  permissions: "none",
  async fn() {
    const ring = new RingStore(100);
    let release: () => void = () => {};
    const store: HistoryStore = {
      append(runs, now) {
        return new Promise<void>((resolve) => {
          release = () => {
            ring.append(runs, now);
            resolve();
          };
        });
      },
      replay: (le, now) => ring.replay(le, now),
      close() {},
    };
    const bus = new HistoryBus(new Fanout(), store, collectingLog().log);
    const first = queue();
    bus.subscribe(first.queue);
    bus.publish(frame("1"), false);
    await settle();
    const joiner = queue();
    bus.subscribe(joiner.queue);
    assert.equal(first.writer.chunks.length, 0, "nothing delivered before the commit");
    release();
    await settle();
    bus.publish(frame("2"), false);
    await settle();
    release();
    await settle();
    assert.deepEqual(texts(first.writer.bytes), ["1", "2"]);
    assert.deepEqual(texts(joiner.writer.bytes), ["1", "2"]);
    bus.close();
  },
});

/** A temporary directory for database files, removed afterwards. */
async function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wirechat_history_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const run = (...texts: string[]): HistoryRun[] => [
  { frames: concatBytes(texts.map((t) => frame(t))), littleEndian: false },
];

Deno.test("the SQLite store keeps messages across a reopen and replays the newest", async () => {
  await withDir((dir) => {
    const path = join(dir, "h.db");
    const { log } = collectingLog();
    const first = SqliteStore.open(path, { replayCount: 2, log });
    first.append(run("a", "b"), 1000);
    first.append(run("c"), 2000);
    first.close();
    const again = SqliteStore.open(path, { replayCount: 2, log });
    assert.deepEqual(texts(again.replay(false, 3000)), ["b", "c"]);
    again.close();
    const db = openReadOnly(path);
    assert.deepEqual(
      queryHistory(db, { last: 10 }).rows.map((r) => [r.message.text, r.receivedMs]),
      [["a", 1000], ["b", 1000], ["c", 2000]],
    );
    db.close();
  });
});

Deno.test("the SQLite store prunes by rows and by age in small background steps", async () => {
  await withDir((dir) => {
    const { log } = collectingLog();
    const byRows = SqliteStore.open(join(dir, "rows.db"), { replayCount: 1, maxRows: 10, log });
    for (let i = 0; i < 30; i++) {
      byRows.append(run(...Array.from({ length: 100 }, (_, j) => String(i * 100 + j))), i);
    }
    while (byRows.step());
    byRows.close();
    const rows = openReadOnly(join(dir, "rows.db"));
    assert.deepEqual(
      queryHistory(rows, { last: 10_000 }).rows.map((r) => [r.id, r.message.text]),
      Array.from({ length: 10 }, (_, i) => [2991 + i, String(2990 + i)]),
      "exactly the newest 10, the run they were in cut",
    );
    rows.close();

    const byAge = SqliteStore.open(join(dir, "age.db"), { replayCount: 5, maxAgeMs: 1000, log });
    byAge.append(run("old"), 0);
    byAge.append(run("new"), 5000);
    byAge.step(5500);
    assert.deepEqual(texts(byAge.replay(false, 5500)), ["new"]);
    byAge.close();
    const aged = openReadOnly(join(dir, "age.db"));
    assert.deepEqual(queryHistory(aged, { last: 10 }).rows.map((r) => r.message.text), ["new"]);
    aged.close();
  });
});

Deno.test("age pruning goes through many runs in steps; once all are gone, numbers go on after a restart", async () => {
  await withDir((dir) => {
    const { log } = collectingLog();
    const path = join(dir, "aged.db");
    const store = SqliteStore.open(path, { replayCount: 5, maxAgeMs: 1000, log });
    // More runs than one step deletes (500), all old by 5000.
    for (let i = 0; i < 1200; i++) store.append(run(`m${i}`), 0);
    let steps = 0;
    while (store.step(5000)) steps++;
    assert.ok(steps >= 2, `pruned in ${steps + 1} steps, not one`);
    store.close();
    const empty = openReadOnly(path);
    assert.deepEqual(queryHistory(empty, { last: 10 }).rows, []);
    empty.close();
    const again = SqliteStore.open(path, { replayCount: 5, maxAgeMs: 1000, log });
    again.append(run("after the restart"), 6000);
    while (again.step(6000));
    again.close();
    const db = openReadOnly(path);
    const rows = queryHistory(db, { last: 10, search: "restart" }).rows;
    assert.deepEqual(rows.map((r) => r.message.text), ["after the restart"]);
    assert.equal(rows[0].id, 1201, "numbered after the 1200 before, not from 1");
    db.close();
  });
});

Deno.test("search ranks with FTS5 once indexed, and finds the not yet indexed by LIKE", async () => {
  await withDir((dir) => {
    const path = join(dir, "h.db");
    const store = SqliteStore.open(path, { replayCount: 0, log: collectingLog().log });
    assert.equal(store.indexed, true, "Deno's SQLite has FTS5");
    store.append(run("the quick brown fox", "slow dog", "quick quick quick"), 0);
    store.step();
    store.append(run("a quick newcomer"), 0);
    const db = openReadOnly(path);
    const found = queryHistory(db, { last: 10, search: "quick" }).rows.map((r) => r.message.text);
    assert.deepEqual(found, ["a quick newcomer", "quick quick quick", "the quick brown fox"]);
    assert.deepEqual(queryHistory(db, { last: 10, search: 'dog" OR "fox' }).rows, []);
    db.close();
    store.close();
  });
});

Deno.test("a version 1 database is migrated on open; a newer one is refused in one sentence", async () => {
  await withDir((dir) => {
    const path = join(dir, "v1.db");
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE runs (first INTEGER PRIMARY KEY, count INTEGER NOT NULL,
      received_ms INTEGER NOT NULL, little_endian INTEGER NOT NULL, frames BLOB NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL); PRAGMA user_version = 1;`);
    old.prepare("INSERT INTO runs VALUES (1, 1, 0, 0, ?)").run(frame("kept"));
    old.close();
    const store = SqliteStore.open(path, { replayCount: 5, log: collectingLog().log });
    assert.deepEqual(texts(store.replay(false, 0)), ["kept"]);
    store.step();
    store.close();
    const db = new DatabaseSync(path);
    assert.equal(db.prepare("PRAGMA user_version").get()?.user_version, SCHEMA_VERSION);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(
      () => SqliteStore.open(path, { replayCount: 5, log: collectingLog().log }),
      /^HistoryDbError: The history database .* has schema version 99, newer than this server's 2: use a newer wirechat, or another --history-db\.$/,
    );
  });
});

Deno.test({
  name: "the server's history options: off by default, a DB implies 100, mistakes are sentences",
  permissions: "none",
  fn() {
    const parse = (...args: string[]) => parseServerArgs(args) as ServerConfig;
    assert.equal(parse().history, undefined);
    assert.equal(parse("--reference").history, undefined);
    assert.deepEqual(parse("--history-db", "history/a.db", "--history-max-age", "7d").history, {
      count: 100,
      db: "history/a.db",
      sync: "normal",
      maxAgeMs: 7 * 86_400_000,
      maxRows: 0,
    });
    assert.equal(parse("--history", "5").history?.count, 5);
    assert.throws(
      () => parse("--history-sync", "full"),
      /^UsageError: --history-sync only goes with --history-db\.$/,
    );
    assert.throws(
      () => parse("--history-db", "h.db", "--history-sync", "sometimes"),
      /--history-sync must be normal or full, not "sometimes"\./,
    );
    assert.throws(
      () => parse("--history", "5", "--history-max-age", "soon"),
      /--history-max-age must be a duration such as 7d, 12h, 30m or 45s, not "soon"\./,
    );
  },
});
