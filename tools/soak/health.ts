/**
 * The healthy exchange the soak and the server fuzzer check with: a fresh display and a fresh
 * keyboard, and one message from one to the other, all within a time limit that counts
 * connecting too (a server that has stopped accepting shows there). The soak runs one after
 * every kind of attack, and keeps the times by kind.
 *
 * @module
 */

import { encodeFrame } from "../../lib/protocol/frame.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { closeQuietly, dial, sleep, type Target, tryWrite } from "./net.ts";

/** How one exchange went. */
export interface Exchange {
  /** "" on success, else why not. */
  problem: string;
  /** Milliseconds from the first connect to the message's arrival (or to giving up). */
  ms: number;
  /** Pairs tried: a pair the server cut off (a connection limit) is tried again in time. */
  attempts: number;
}

/** One pair's try; "" once the display has the message, else why not. */
async function tryPair(
  target: Target,
  username: string,
  token: string,
  deadline: number,
): Promise<{ problem: string; retry: boolean }> {
  const conns: Deno.Conn[] = [];
  const began = performance.now();
  /** What was done by when, for a failure message. */
  const done: string[] = [];
  const mark = (what: string) =>
    done.push(`${what} at ${(performance.now() - began).toFixed(0)} ms`);
  let stage = "the display's connect";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  // Everything, connecting included, runs under the deadline: on expiry the connections are
  // closed, which ends any read or write; a dial still under way is closed when it ends.
  const expiry = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      expired = true;
      for (const conn of conns) closeQuietly(conn);
      resolve();
    }, Math.max(0, deadline - performance.now()));
  });
  const connect = async (what: string) => {
    stage = `the ${what}'s connect${target.tls ? " and TLS handshake" : ""}`;
    const pending = dial(target);
    const conn = await Promise.race([pending, expiry.then(() => undefined)]);
    if (!conn) {
      pending.then(closeQuietly, () => {});
      return undefined;
    }
    conns.push(conn);
    if (expired) closeQuietly(conn);
    mark(`${what} connected`);
    return conn;
  };
  const late = (what: string) => ({
    problem: `${what} did not finish in time${done.length ? ` (${done.join(", ")})` : ""}`,
    retry: false,
  });
  const cutOff = (what: string) =>
    expired ? late(stage) : { problem: `the server cut the ${what} off`, retry: true };
  try {
    const display = await connect("display");
    if (!display) return late(stage);
    stage = "the display's identify code";
    if (!(await tryWrite(display, encodeIdentify("display")))) return cutOff("display");
    const keyboard = await connect("keyboard");
    if (!keyboard) return late(stage);
    const frame = encodeFrame({
      username,
      time: { year: 2024, month: 6, day: 1, hour: 12, minute: 0, second: 0 },
      text: token,
    });
    stage = "the keyboard's identify code";
    if (!(await tryWrite(keyboard, encodeIdentify("keyboard")))) return cutOff("keyboard");
    let received: boolean | undefined;
    const reading = (async () => {
      const decoder = new FrameDecoder();
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await display.read(buffer);
        if (n === null) return false;
        if (decoder.push(buffer.subarray(0, n)).some((m) => m.username === username)) return true;
      }
    })().catch(() => false).then((seen) => received = seen);
    // The display may not be registered yet when the first message goes: send until seen.
    stage = "the message";
    mark("identify codes written");
    while (received === undefined && !expired) {
      if (!(await tryWrite(keyboard, frame))) {
        if (expired) break;
        return cutOff("keyboard");
      }
      await Promise.race([reading, sleep(100), expiry]);
    }
    if (received) return { problem: "", retry: false };
    if (received === false && !expired) return cutOff("display");
    return late("the message's way to the display");
  } catch (error) {
    return { problem: `${stage} failed: ${error}`, retry: !expired };
  } finally {
    clearTimeout(timer);
    for (const conn of conns) closeQuietly(conn);
  }
}

/**
 * Connects a display and a keyboard to `target` and has the keyboard send until the display
 * receives a message with `token`, all within `ms`, connecting included. A pair the server
 * cut off (it was at its connection limit, say) is tried again while time remains.
 */
export async function timedExchange(target: Target, token: string, ms = 10_000): Promise<Exchange> {
  const started = performance.now();
  const deadline = started + ms;
  const username = `health-${token}`;
  let attempts = 0;
  for (;;) {
    attempts++;
    const { problem, retry } = await tryPair(target, username, token, deadline);
    const took = performance.now() - started;
    if (!problem) return { problem, ms: took, attempts };
    if (!retry || performance.now() >= deadline - 20) {
      const tries = attempts > 1 ? ` (${attempts} pairs tried)` : "";
      return { problem: `within ${ms / 1000} s: ${problem}${tries}`, ms: took, attempts };
    }
    await sleep(20);
  }
}

/**
 * Like {@linkcode timedExchange}; returns "" on success, else why not.
 */
export async function healthyExchange(target: Target, token: string, ms = 10_000): Promise<string> {
  return (await timedExchange(target, token, ms)).problem;
}

/** The checks made after one kind of attack. */
export interface KindHealth {
  checks: number;
  /** Slowest exchange of a check (the plain or the TLS one), ms, over all checks. */
  maxMs: number;
  /** Every check's slowest exchange, ms. */
  times: number[];
  /** Checks not counted: a flood held the server at its connection limit meanwhile. */
  excused: number;
  failures: string[];
}

/** Options for {@linkcode HealthRecord}. */
export interface HealthRecordOptions {
  plain: Target;
  tls: Target;
  /** Each exchange's limit, connecting included (default 1000 ms). */
  ms?: number;
  /** Whether a failure from `from` to `to` is excused (a flood was on). */
  excused?: (from: number, to: number) => boolean;
  /** performance.now() at the start of the run, for the times in failure messages. */
  started?: number;
}

/**
 * Healthy exchanges after each kind of attack, on the plain and the TLS port at once, with
 * their times by kind; a failure names the attack it followed.
 */
export class HealthRecord {
  readonly kinds = new Map<string, KindHealth>();
  /** The first failure, in time. */
  first: string | undefined;
  readonly ms: number;
  #options: HealthRecordOptions;
  #last = new Map<string, number>();
  #serial = 0;
  #started: number;

  constructor(options: HealthRecordOptions) {
    this.#options = options;
    this.ms = options.ms ?? 1000;
    this.#started = options.started ?? performance.now();
  }

  #kind(kind: string): KindHealth {
    let entry = this.kinds.get(kind);
    if (!entry) {
      entry = { checks: 0, maxMs: 0, times: [], excused: 0, failures: [] };
      this.kinds.set(kind, entry);
    }
    return entry;
  }

  /**
   * Checks after `kind`, now; `strict` checks cannot be excused by a flood. Returns "" or
   * what failed.
   */
  async after(kind: string, strict = false): Promise<string> {
    const entry = this.#kind(kind);
    const from = performance.now();
    const token = `after-${++this.#serial}`;
    const [plain, tls] = await Promise.all([
      timedExchange(this.#options.plain, `${token}-plain`, this.ms),
      timedExchange(this.#options.tls, `${token}-tls`, this.ms),
    ]);
    const problems = [
      plain.problem && `plain: ${plain.problem}`,
      tls.problem && `TLS: ${tls.problem}`,
    ].filter((p) => p).join("; ");
    if (problems && !strict && this.#options.excused?.(from, performance.now())) {
      entry.excused++;
      return "";
    }
    entry.checks++;
    const ms = Math.max(plain.ms, tls.ms);
    entry.times.push(ms);
    entry.maxMs = Math.max(entry.maxMs, ms);
    if (!problems) return "";
    const at = ((from - this.#started) / 1000).toFixed(1);
    const failure = `no healthy exchange after "${kind}" (at ${at} s): ${problems}`;
    if (entry.failures.length < 3) entry.failures.push(failure);
    this.first ??= failure;
    return failure;
  }

  /** Checks after `kind` unless one was made less than `everyMs` ago or a flood is on. */
  async sometimes(kind: string, everyMs: number): Promise<void> {
    const now = performance.now();
    if (now - (this.#last.get(kind) ?? -Infinity) < everyMs) return;
    if (this.#options.excused?.(now, now)) return;
    this.#last.set(kind, now);
    await this.after(kind);
  }

  /** "healthy after: 3 checks, 12-40 ms" or the failures; "" if there were no checks. */
  summary(kind: string): string {
    const entry = this.kinds.get(kind);
    if (!entry || entry.checks + entry.excused === 0) return "";
    const excused = entry.excused ? `, ${entry.excused} during a flood not counted` : "";
    if (entry.checks === 0) return `healthy after: no check counted${excused}`;
    const min = Math.min(...entry.times);
    const range = entry.checks === 1
      ? `${entry.maxMs.toFixed(0)} ms`
      : `${min.toFixed(0)}-${entry.maxMs.toFixed(0)} ms`;
    const failed = entry.failures.length
      ? ` — ${entry.failures.length} FAILED (limit ${this.ms} ms)`
      : "";
    return `healthy after: ${entry.checks} check${
      entry.checks > 1 ? "s" : ""
    }, ${range}${excused}${failed}`;
  }

  /** Every failure, by kind. */
  failures(): string[] {
    return [...this.kinds.values()].flatMap((entry) => entry.failures);
  }
}
