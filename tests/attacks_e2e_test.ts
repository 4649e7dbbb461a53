/**
 * Reproductions of issue 9's holes 1, 3 and 4, each against the real server run as a process
 * on 127.0.0.1, on both connection paths where the hole is in the socket code (native sockets,
 * and `--no-native-sockets`):
 *
 * - hole 1: a storm of connections reset before the server accepts them stalled accepting
 *   for everyone (`accept failed: Transport endpoint is not connected`, then a back-off);
 * - hole 3: partly received frames held about twice their size in memory (131 KiB per 64 KiB
 *   frame, measured), never given back, with no bound on their total (`--max-client-memory`
 *   bounds it);
 * - hole 4: with flood control off, a keyboard sending flat out got every display dropped as
 *   "too slow", though each read as fast as it could: the server was the one behind. Seen on
 *   TLS over native sockets; on the other paths the kernel's buffers take up the difference
 *   (even at ten times this flood), and those tests keep them so.
 *
 * Each hole is also tried in `--reference` mode, which runs four listeners on two relays in
 * one process: hole 1 on its plain and TLS ports, hole 3's budget across all four (it is the
 * process's, not a relay's), and hole 4 on its full TLS port.
 */

import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";
import { encodeFrame } from "../lib/protocol/frame.ts";
import { encodeIdentify } from "../lib/protocol/identify.ts";
import { writeAll } from "../lib/net/wire_io.ts";
import { healthyExchange } from "../tools/soak/health.ts";
import { closeQuietly, dial, type Target } from "../tools/soak/net.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import {
  CheckingDisplay,
  HeldConnections,
  resetStorm,
  serverHasRead,
  unreadByPort,
  unreadByServer,
} from "./helpers/attack_clients.ts";
import { bounded, within } from "../tools/harness/wait.ts";

const LINUX = Deno.build.os === "linux";
const TIME = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
const KiB = 1024;
const MiB = 1024 * 1024;

/** The two ways the server can hold a connection; the socket-level holes are tried on both. */
const PATHS = [
  { label: "native sockets", args: [] as string[] },
  { label: "--no-native-sockets", args: ["--no-native-sockets"] },
];

/** Starts a single server on a free port: plain, or TLS with `certs`. */
function startServer(args: string[], certs?: CertificateDir): Promise<ServerProcess> {
  const tls = certs ? ["--cert", certs.certFile, "--key", certs.keyFile] : [];
  return ServerProcess.start([...tls, ...args]);
}

/** The single server's endpoint as a target for clients. */
function targetOf(server: ServerProcess, certs?: CertificateDir): Target {
  return { port: server.endpoints[0].port, tls: certs !== undefined, caCert: certs?.set.caCert };
}

/** Resolves after `ms` (for polling loops, which always wait it out). */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A fresh display and keyboard exchange a frame within 1 s: "" on success, else why not. A
 * server so stuck that even connecting hangs (a TLS handshake nobody accepts) is killed after
 * 3 s, which ends the hung dial, so that nothing is left running.
 */
async function exchange(server: ServerProcess, target: Target, token: string): Promise<string> {
  const started = performance.now();
  const outcome = healthyExchange(target, token, 1000);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 3000));
  const first = await Promise.race([outcome, late]);
  clearTimeout(timer);
  if (first === "late") {
    server.kill("SIGKILL");
    return `no exchange within 3 s, connecting included (${await outcome})`;
  }
  const ms = performance.now() - started;
  // healthyExchange's 1 s does not count connecting: a stalled accept shows there too.
  if (first === "" && ms > 2000) return `the exchange took ${ms.toFixed(0)} ms`;
  return first;
}

/** Polls until `lines` holds `count` lines; rejects after `ms`, saying what was seen. */
function untilCount(lines: string[], count: number, ms: number, what: string): Promise<void> {
  return until(() => lines.length, count, ms, what);
}

/** Polls until `seen()` reaches `count`; rejects after `ms`, saying how far it got. */
async function until(seen: () => number, count: number, ms: number, what: string) {
  const deadline = performance.now() + ms;
  while (seen() < count) {
    if (performance.now() > deadline) {
      throw new Error(`${seen()} of ${count} ${what} within ${ms} ms`);
    }
    await delay(50);
  }
}

/** Lines from now on saying that a keyboard left or was dropped. */
function keyboardsGone(server: ServerProcess): string[] {
  return server.log.collect((line) => / (disconnected|dropped) \(keyboard\)/.test(line));
}

/** How many of `lines` name one of `ports` as the peer (`127.0.0.1:PORT ...`). */
function naming(lines: string[], ports: Set<number>): number {
  return lines.filter((line) => ports.has(Number(/^\S+ \S+ +[^ ]*:(\d+) /.exec(line)?.[1])))
    .length;
}

/** The server's resident set, KiB; a failed /proc read fails the test (these run on Linux). */
async function rssKiB(server: ServerProcess): Promise<number> {
  const stats = await server.stats();
  assert.ok(stats, `could not read /proc/${server.pid} (the server exited: ${server.exited})`);
  return stats.rssKiB;
}

/** Lines at error or warn level about accepting: a failed accept is one connection's business. */
function acceptComplaints(server: ServerProcess): string[] {
  return server.log.collect((line) => /^\S+ (error|warn) .*accept/.test(line));
}

// ---------------------------------------------------------------------------------------------
// Hole 1: a reset storm.

const STORM = 300;
/** One storm reproduced the stall in most runs, two in all of 20: five leave no doubt. */
const STORM_ROUNDS = 5;

/**
 * Resets {@linkcode STORM} connections on each target, {@linkcode STORM_ROUNDS} times; after
 * each storm a fresh display and keyboard must exchange a frame within 1 s. No accept failure
 * may be logged above debug level.
 */
async function survivesResetStorms(server: ServerProcess, targets: Target[]): Promise<void> {
  const complaints = acceptComplaints(server);
  for (let round = 1; round <= STORM_ROUNDS; round++) {
    for (const target of targets) {
      const reset = await resetStorm(target.port, STORM);
      assert.ok(reset >= STORM / 2, `only ${reset} of ${STORM} connections were made and reset`);
      const kind = target.tls ? "TLS" : "plain";
      const outcome = await exchange(server, target, `after-storm-${round}-${target.port}`);
      assert.equal(
        outcome,
        "",
        `after reset storm ${round} (${reset} resets) on the ${kind} port: ${outcome}\n` +
          `accept lines logged: ${complaints.length}\n${complaints.slice(0, 5).join("\n")}`,
      );
    }
  }
  assert.deepEqual(complaints, [], "accept failures logged above debug level");
  assert.equal(server.exited, false);
}

for (const path of PATHS) {
  Deno.test(
    `hole 1: after storms of ${STORM} connections reset before accept, a plain server still relays within 1 s (${path.label})`,
    bounded(40_000, async () => {
      await using server = await startServer(path.args);
      await survivesResetStorms(server, [targetOf(server)]);
    }),
  );

  Deno.test(
    `hole 1: after storms of ${STORM} connections reset before accept, a TLS server still relays within 1 s (${path.label})`,
    bounded(40_000, async () => {
      await using certs = await CertificateDir.create();
      await using server = await startServer(path.args, certs);
      await survivesResetStorms(server, [targetOf(server, certs)]);
    }),
  );

  Deno.test(
    `hole 1: after storms of ${STORM} connections reset before accept, --reference's plain and TLS ports still relay within 1 s (${path.label})`,
    bounded(50_000, async () => {
      await using certs = await CertificateDir.create();
      await using server = await ServerProcess.startReference(["--certs", certs.dir, ...path.args]);
      await survivesResetStorms(server, [
        { port: server.portOf("full server"), tls: false },
        { port: server.portOf("full TLS server"), tls: true, caCert: certs.caCert },
      ]);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Hole 3: partly received frames hold memory.

/** A frame of 64 KiB, 65536 bytes in all (overall_length 65532), within the default --max-frame. */
const BIG_FRAME = encodeFrame({ username: "x", time: TIME, text: "y".repeat(65536 - 4 - 33) });
/** What each attacking keyboard sends: its identify code and all of that frame but one byte. */
const PARTIAL_KEYBOARD = new Uint8Array([
  ...encodeIdentify("keyboard"),
  ...BIG_FRAME.subarray(0, BIG_FRAME.length - 1),
]);
/** Bytes each attacking keyboard makes the server hold. */
const HELD = BIG_FRAME.length - 1;
const PARTIAL_TIMEOUT = ["--frame-timeout", "60"];

/** Polls the server's RSS until it is within `slackKiB` of `baseKiB`; returns the last figure. */
async function rssSettles(server: ServerProcess, baseKiB: number, slackKiB: number, ms: number) {
  const deadline = performance.now() + ms;
  for (;;) {
    const now = await rssKiB(server);
    if (now - baseKiB <= slackKiB || performance.now() > deadline) return now;
    await delay(200);
  }
}

Deno.test({
  name:
    "hole 3: 1000 keyboards each holding a frame one byte short of 64 KiB cost the server about that frame's size each, and the memory comes back when they leave",
  ignore: !LINUX,
  fn: bounded(60_000, async () => {
    const count = 1000;
    await using server = await startServer(PARTIAL_TIMEOUT);
    const target = targetOf(server);
    assert.equal(await exchange(server, target, "warm-up"), "");
    const before = await rssKiB(server);
    const left = keyboardsGone(server);
    let idle: number;
    let during: number;
    let ports: Set<number>;
    {
      await using held = await HeldConnections.open(target, count, encodeIdentify("keyboard"));
      ports = held.ports;
      await serverHasRead(target.port, count, 20_000);
      idle = await rssKiB(server);
      await held.sendAll(PARTIAL_KEYBOARD.subarray(4));
      await serverHasRead(target.port, count, 20_000);
      during = await rssKiB(server);
    }
    await until(() => naming(left, ports), count, 10_000, "keyboards logged as gone");
    const after = await rssSettles(server, before, 64 * KiB, 10_000);
    const perConnection = (idle - before) / count;
    const perFrame = (during - idle) / count;
    const figures = `RSS ${(before / KiB).toFixed(0)} MiB before, ${
      (idle / KiB).toFixed(0)
    } MiB with ${count} idle keyboards (${perConnection.toFixed(1)} KiB each), ${
      (during / KiB).toFixed(0)
    } MiB once each holds ${HELD} bytes (${perFrame.toFixed(1)} KiB more each), ${
      (after / KiB).toFixed(0)
    } MiB after they left`;
    console.log(figures);
    // Its own 64 KiB, once, with the allocator's pages and the reads' garbage: not a copy.
    assert.ok(perFrame <= 80, `a partial frame costs over 80 KiB: ${figures}`);
    assert.ok(after - before <= 64 * KiB, `the memory did not come back: ${figures}`);
    assert.equal(server.tally.dropReasons.size, 0, [...server.tally.dropReasons.keys()].join("; "));
  }),
});

Deno.test({
  name:
    "hole 3: with --max-client-memory 16 MiB, 800 keyboards holding 64 KiB frames are cut down to the budget and a display and keyboard keep talking",
  ignore: !LINUX,
  fn: bounded(60_000, async () => {
    const count = 800;
    const budget = 16 * MiB;
    // At most this many can hold their bytes at once; the rest must go.
    const fit = Math.floor(budget / HELD);
    // What the budget allows, with the allocator's slack, plus what a connection costs without
    // a frame (20 KiB measured; see the test above). Unbounded, it would be 800 x 84 KiB.
    const allowedKiB = (budget * 1.5) / KiB + count * 25;
    await using server = await startServer([
      ...PARTIAL_TIMEOUT,
      "--max-client-memory",
      String(budget),
    ]);
    const target = targetOf(server);
    assert.equal(await exchange(server, target, "warm-up"), "");
    const before = await rssKiB(server);
    const overBudget = server.log.collect((line) =>
      /dropped \(keyboard\): over the client memory budget/.test(line)
    );
    const left = keyboardsGone(server);
    let during: number;
    let ports: Set<number>;
    {
      const opening = HeldConnections.open(target, count, PARTIAL_KEYBOARD);
      opening.catch(() => {}); // awaited below
      const whileConnecting = await exchange(server, target, "while-connecting");
      await using held = await opening;
      ports = held.ports;
      assert.equal(whileConnecting, "", "while the keyboards connected");
      // Everything sent has been read: each keyboard is either holding its bytes or gone.
      const deadline = performance.now() + 20_000;
      for (;;) {
        const { connections, unread } = await unreadByServer(target.port);
        if (unread === 0 && connections + overBudget.length >= count) break;
        if (performance.now() > deadline) {
          throw new Error(
            `after 20 s: ${unread} bytes unread on ${connections} connections, ${overBudget.length} dropped over the budget; drops: ${
              [...server.tally.dropReasons].join("; ")
            }`,
          );
        }
        await delay(100);
      }
      assert.equal(await exchange(server, target, "under-attack"), "", "while they held");
      // The dropped keyboards' buffers may wait a moment for the garbage collector.
      during = await rssSettles(server, before, allowedKiB, 5_000);
      assert.ok(
        overBudget.length >= count - fit - 4,
        `${overBudget.length} of ${count} keyboards dropped over the budget (at most ${fit} fit)`,
      );
      // Only the excess goes: a budget that is never given back would drop everyone.
      assert.ok(
        overBudget.length <= count - fit / 2,
        `${overBudget.length} of ${count} keyboards dropped, though ${fit} fit in the budget`,
      );
    }
    await until(() => naming(left, ports), count, 10_000, "keyboards logged as gone");
    const after = await rssSettles(server, before, 64 * KiB, 10_000);
    const grown = during - before;
    const figures = `RSS ${(before / KiB).toFixed(0)} MiB before, ${
      (during / KiB).toFixed(0)
    } MiB under attack, ${(after / KiB).toFixed(0)} MiB after; ${overBudget.length} dropped`;
    assert.ok(grown <= allowedKiB, `grew by ${grown} KiB, over ${allowedKiB} KiB: ${figures}`);
    assert.ok(after - before <= 64 * KiB, `the memory did not come back: ${figures}`);
  }),
});

/**
 * The largest frame the default --max-frame allows (overall_length 65536, 65540 bytes in all):
 * 4 bytes more than {@linkcode BIG_FRAME}, so that its holders rank above BIG_FRAME's.
 */
const LARGEST_FRAME = encodeFrame({ username: "x", time: TIME, text: "y".repeat(65536 - 33) });
/** A keyboard's identify code and all of {@linkcode LARGEST_FRAME} but one byte. */
const LARGEST_PARTIAL_KEYBOARD = new Uint8Array([
  ...encodeIdentify("keyboard"),
  ...LARGEST_FRAME.subarray(0, LARGEST_FRAME.length - 1),
]);

Deno.test({
  name:
    "hole 3: --reference's four listeners share one --max-client-memory: 600 plain keyboards on its two plain servers and 16 TLS ones, each holding a 64 KiB frame, are cut down to one 8 MiB budget together, the TLS ones (4 bytes bigger) first",
  ignore: !LINUX,
  fn: bounded(60_000, async () => {
    const plainCount = 600;
    const tlsCount = 16;
    const count = plainCount + tlsCount;
    const budget = 8 * MiB;
    // At most this many fit in the budget together; two budgets, one per relay, would keep
    // twice as many.
    const fit = Math.floor(budget / BIG_FRAME.length);
    // The budget, 12 MiB for the JavaScript heap and the allocator's slack (not a share of
    // the budget: 27-30 MiB grown was measured here; unbounded, 616 x 96 KiB would be 58),
    // what a connection costs without a frame (20 KiB, see above), and what node:tls holds for
    // each TLS keyboard outside the budget (RELIABILITY.md, "Limits that are not ours").
    const allowedKiB = (budget + 12 * MiB) / KiB + plainCount * 25 + tlsCount * 250;
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.startReference([
      "--certs",
      certs.dir,
      ...PARTIAL_TIMEOUT,
      "--max-client-memory",
      String(budget),
    ]);
    const full: Target = { port: server.portOf("full server"), tls: false };
    const fullTls: Target = {
      port: server.portOf("full TLS server"),
      tls: true,
      caCert: certs.caCert,
    };
    const random: Target = { port: server.portOf("random-message server"), tls: false };
    const randomTls: Target = { ...fullTls, port: server.portOf("random-message TLS server") };
    const allPorts = [full, random, fullTls, randomTls].map((target) => target.port);
    assert.equal(await exchange(server, full, "warm-up"), "");
    assert.equal(await exchange(server, fullTls, "warm-up-tls"), "");
    const before = await rssKiB(server);
    const overBudget = server.log.collect((line) =>
      /dropped \(keyboard\): over the client memory budget/.test(line)
    );
    const left = keyboardsGone(server);
    let during: number;
    let ports: Set<number>;
    let survivors = "";
    {
      // The TLS keyboards first, with the bigger frames: every check over the budget that
      // follows must drop them before any plain one. (Both frames are over glibc's mmap
      // threshold as `deno task server` sets it, so that a dropped one's memory goes back.)
      await using tlsHeld = await HeldConnections.open(
        [fullTls, randomTls],
        tlsCount,
        LARGEST_PARTIAL_KEYBOARD,
      );
      await serverHasRead(fullTls.port, tlsCount / 2, 10_000);
      await serverHasRead(randomTls.port, tlsCount / 2, 10_000);
      assert.equal(overBudget.length, 0, `${tlsCount} TLS keyboards alone are within the budget`);
      // Then the plain ones, each relay's in turn.
      const opening = HeldConnections.open([full, random], plainCount, PARTIAL_KEYBOARD);
      opening.catch(() => {}); // awaited below
      const whileConnecting = await exchange(server, full, "while-connecting");
      await using plainHeld = await opening;
      ports = new Set([...tlsHeld.ports, ...plainHeld.ports]);
      assert.equal(whileConnecting, "", "while the keyboards connected");
      // Everything sent has been read: each keyboard is either holding its bytes or gone.
      const deadline = performance.now() + 20_000;
      for (;;) {
        const seen = [...(await unreadByPort(allPorts)).values()];
        const connections = seen.reduce((sum, port) => sum + port.connections, 0);
        const unread = seen.reduce((sum, port) => sum + port.unread, 0);
        if (unread === 0 && connections + overBudget.length >= count) break;
        if (performance.now() > deadline) {
          throw new Error(
            `after 20 s: ${unread} bytes unread on ${connections} connections, ${overBudget.length} dropped over the budget; drops: ${
              [...server.tally.dropReasons].join("; ")
            }`,
          );
        }
        await delay(100);
      }
      assert.equal(await exchange(server, full, "under-attack"), "", "while they held (plain)");
      assert.equal(await exchange(server, fullTls, "under-attack-tls"), "", "(TLS)");
      during = await rssSettles(server, before, allowedKiB, 5_000);
      const held = await unreadByPort(allPorts);
      survivors = `keyboards left holding: ${
        held.get(full.port)!.connections
      } on the full server, ${held.get(random.port)!.connections} on the random-message server, ${
        held.get(fullTls.port)!.connections + held.get(randomTls.port)!.connections
      } on the TLS ones`;
      await within(10_000, `all ${tlsCount} TLS keyboards dropped (${survivors})`, tlsHeld.ended);
      assert.ok(
        overBudget.length >= count - fit - 4,
        `${overBudget.length} of ${count} keyboards dropped over the budget (at most ${fit} fit in one budget); ${survivors}`,
      );
      assert.ok(
        overBudget.length <= count - fit / 2,
        `${overBudget.length} of ${count} keyboards dropped, though ${fit} fit in the budget; ${survivors}`,
      );
    }
    await until(() => naming(left, ports), count, 10_000, "keyboards logged as gone");
    const after = await rssSettles(server, before, 64 * KiB, 10_000);
    const grown = during - before;
    const figures = `RSS ${(before / KiB).toFixed(0)} MiB before, ${
      (during / KiB).toFixed(0)
    } MiB under attack, ${
      (after / KiB).toFixed(0)
    } MiB after; ${overBudget.length} dropped; ${survivors}`;
    assert.ok(grown <= allowedKiB, `grew by ${grown} KiB, over ${allowedKiB} KiB: ${figures}`);
    assert.ok(after - before <= 64 * KiB, `the memory did not come back: ${figures}`);
  }),
});

// ---------------------------------------------------------------------------------------------
// Hole 4: the server behind its displays.

const FLOOD_FRAMES = 60_000;
let floodCache: Uint8Array | undefined;

/**
 * {@linkcode FLOOD_FRAMES} frames with 32-byte texts (`#000017 ` and dots), encoded once into
 * one buffer: what the keyboard sends and, byte for byte, what every display must receive.
 */
function flood(): Uint8Array {
  if (floodCache) return floodCache;
  floodCache = new Uint8Array(FRAME_SIZE * FLOOD_FRAMES);
  for (let i = 0; i < FLOOD_FRAMES; i++) floodCache.set(floodFrame(i), i * FRAME_SIZE);
  return floodCache;
}

/** The flood's frame number `i`. */
function floodFrame(i: number): Uint8Array {
  const text = `#${String(i).padStart(6, "0")} `.padEnd(32, ".");
  return encodeFrame({ username: "flood", time: TIME, text });
}
const FRAME_SIZE = floodFrame(0).length;

/** Displays connected together, disposed together. */
class Displays implements AsyncDisposable {
  readonly all: CheckingDisplay[] = [];

  /** Connects `count` checking displays and waits until the server has identified them all. */
  static async connect(server: ServerProcess, target: Target, count: number): Promise<Displays> {
    const displays = new Displays();
    const identified = server.log.collect((line) => / identified as display/.test(line));
    try {
      for (let at = 0; at < count; at += 25) {
        displays.all.push(
          ...await Promise.all(
            Array.from(
              { length: Math.min(25, count - at) },
              () => CheckingDisplay.connect(target, flood()),
            ),
          ),
        );
      }
      await untilCount(identified, count, 10_000, "displays identified");
    } catch (error) {
      await displays[Symbol.asyncDispose]();
      throw error;
    }
    return displays;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.all.map((display) => display[Symbol.asyncDispose]()));
  }
}

/** The flooding keyboard: identified, and sending the whole flood as fast as it can. */
interface Flooder {
  conn: Deno.Conn;
  port: number;
  /** Settles once the whole flood is in the kernel, or the connection is closed. */
  sent: Promise<void>;
}

/** Connects a keyboard, waits for the server to identify it, and starts sending the flood. */
async function startFlood(server: ServerProcess, target: Target): Promise<Flooder> {
  const conn = await dial(target);
  const port = (conn.localAddr as Deno.NetAddr).port;
  try {
    const seen = server.log.collect((line) => line.includes(`:${port} identified as keyboard`));
    await writeAll(conn, encodeIdentify("keyboard"));
    await untilCount(seen, 1, 10_000, "keyboards identified");
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
  const sent = writeAll(conn, flood());
  sent.catch(() => {});
  return { conn, port, sent };
}

/**
 * Waits until every display has the whole flood or stopped short; fails, saying who got how
 * much and why (with the server's drop lines, `drops`), unless all of them got every byte.
 */
async function everyDisplayGetsEverything(
  displays: CheckingDisplay[],
  drops: string[],
  ms: number,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([Promise.all(displays.map((display) => display.done)), expired]);
  clearTimeout(timer);
  const short = displays.filter((display) => !display.complete);
  if (short.length === 0) return;
  // The server's log line about a drop may come a moment after the display saw it.
  const cut = short.filter((display) => display.problem !== "").length;
  await untilCount(drops, cut, 2000, "drop lines").catch(() => {});
  const problems = new Map<string, number>();
  for (const display of short) {
    const why = display.problem || `still waiting after ${ms} ms`;
    problems.set(why, (problems.get(why) ?? 0) + 1);
  }
  const reasons = new Map<string, number>();
  for (const line of drops) {
    const why = line.replace(/^.* dropped \(display\): /, "").replace(/\d+/g, "N");
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  }
  const most = Math.max(...short.map((display) => display.received));
  assert.fail(
    `${short.length} of ${displays.length} displays did not get all ${FLOOD_FRAMES} messages ` +
      `(the most any of them got: ${Math.floor(most / FRAME_SIZE)}): ${
        [...problems].map(([why, n]) => `${n}x ${why}`).join("; ")
      }\nthe server dropped: ${
        [...reasons].map(([why, n]) => `${n}x ${why}`).join("; ") || "none"
      }\nfor example: ${drops[0] ?? "(no drop line)"}`,
  );
}

/**
 * `fast` displays that read flat out, and a stalled one if `stalled` (it identifies, then
 * never reads), on a server without flood control; one keyboard sends the flood. Every fast
 * display must get all of it, byte for byte, and no display but the stalled one may be
 * dropped; the stalled one must be, as too slow.
 */
async function floodTest(server: ServerProcess, target: Target, fast: number, stalled: boolean) {
  const drops = server.log.collect((line) => / dropped \(display\): /.test(line));
  let stall: Deno.Conn | undefined;
  try {
    if (stalled) {
      stall = await dial(target);
      const port = (stall.localAddr as Deno.NetAddr).port;
      const seen = server.log.collect((line) => line.includes(`:${port} identified as display`));
      await writeAll(stall, encodeIdentify("display"));
      await untilCount(seen, 1, 10_000, "stalled displays identified");
    }
    await using displays = await Displays.connect(server, target, fast);
    const keyboard = await startFlood(server, target);
    const gone = server.log.collect((line) =>
      new RegExp(`:${keyboard.port} (disconnected|dropped) \\(keyboard\\)`).test(line)
    );
    try {
      await everyDisplayGetsEverything(displays.all, drops, 30_000);
      await keyboard.sent;
      if (stall) await untilCount(drops, 1, 20_000, "drops of the stalled display");
    } finally {
      closeQuietly(keyboard.conn);
    }
    // Once the keyboard's leaving is logged, every line before it has been read.
    await untilCount(gone, 1, 5000, "keyboards logged as gone");
    const expected = stall ? [`:${(stall.localAddr as Deno.NetAddr).port} dropped`] : [];
    assert.equal(drops.length, expected.length, `displays dropped:\n${drops.join("\n")}`);
    for (const [i, line] of drops.entries()) {
      assert.ok(line.includes(expected[i]), `not the stalled display: ${line}`);
      assert.match(line, /dropped \(display\): too slow/);
    }
  } finally {
    if (stall) closeQuietly(stall);
  }
}

for (const path of PATHS) {
  for (const tls of [false, true]) {
    const kind = tls ? "TLS" : "plain";
    Deno.test(
      `hole 4: 100 ${kind} displays reading flat out each get all ${FLOOD_FRAMES} messages of a keyboard sending flat out, in order, none dropped (${path.label})`,
      bounded(50_000, async () => {
        await using certs = tls ? await CertificateDir.create() : undefined;
        await using server = await startServer(["--keyboard-rate", "0", ...path.args], certs);
        await floodTest(server, targetOf(server, certs), 100, false);
      }),
    );

    // --soft-seconds 5 (default 10) drops the stalled display sooner if nothing else does: a
    // display that reads flat out is never 256 KiB behind for that long.
    Deno.test(
      `hole 4: a stalled ${kind} display among 50 fast ones is the only one dropped, and the fast ones get all ${FLOOD_FRAMES} messages (${path.label})`,
      bounded(50_000, async () => {
        await using certs = tls ? await CertificateDir.create() : undefined;
        const args = ["--keyboard-rate", "0", "--soft-seconds", "5", ...path.args];
        await using server = await startServer(args, certs);
        await floodTest(server, targetOf(server, certs), 50, true);
      }),
    );
  }
}

// Where hole 4 was seen, TLS on native sockets, on --reference's full TLS port.
Deno.test(
  `hole 4: 100 TLS displays on --reference's full TLS port reading flat out each get all ${FLOOD_FRAMES} messages of a keyboard sending flat out, in order, none dropped (native sockets)`,
  bounded(50_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.startReference([
      "--certs",
      certs.dir,
      "--keyboard-rate",
      "0",
    ]);
    const target = { port: server.portOf("full TLS server"), tls: true, caCert: certs.caCert };
    await floodTest(server, target, 100, false);
  }),
);

// ---------------------------------------------------------------------------------------------
// Found while hunting: a display that sends after identifying.

Deno.test({
  name:
    "a TLS display sending flat out after identifying is read slowly: the server's CPU stays low and a pair still exchanges within 1 s",
  ignore: !LINUX,
  fn: bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await startServer([], certs);
    const target = targetOf(server, certs);
    const chatty = await dial(target);
    try {
      await writeAll(chatty, encodeIdentify("display"));
      const junk = new Uint8Array(64 * KiB).fill(7);
      let stop = false;
      const pump = (async () => {
        while (!stop) await chatty.write(junk);
      })().catch(() => {});
      await delay(500);
      const before = (await server.stats())!;
      await delay(2000);
      const after = (await server.stats())!;
      const cpu = (after.cpuSeconds - before.cpuSeconds) / 2;
      assert.equal(await exchange(server, target, "beside-a-chatty-display"), "");
      stop = true;
      closeQuietly(chatty);
      await pump;
      // Read flat out, decrypting it took a whole core.
      assert.ok(cpu < 0.3, `the server used ${(cpu * 100).toFixed(0)}% of a core`);
    } finally {
      closeQuietly(chatty);
    }
  }),
});
