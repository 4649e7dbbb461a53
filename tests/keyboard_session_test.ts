/**
 * The keyboard rules of lib/server/keyboard_session.ts on a fake clock: frames published, a broken
 * frame dropped after the frames before it, the frame deadline and its stopped clock, and the
 * token bucket of flood control.
 */

import assert from "node:assert/strict";
import { concatBytes } from "../lib/protocol/bytes.ts";
import { encodeFrame } from "../lib/protocol/frame.ts";
import { type KeyboardRules, KeyboardSession } from "../lib/server/keyboard_session.ts";
import { JASON_BE, TIME } from "./helpers/vectors.ts";

const RULES: KeyboardRules = {
  littleEndian: false,
  maxFrame: 64 * 1024,
  frameTimeout: 30,
  keyboardRate: 10,
  keyboardBurst: 5,
};

function test(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

const concat = (...parts: Uint8Array[]) => concatBytes(parts);

const frames = (count: number) => concat(...Array.from({ length: count }, () => JASON_BE));

test("receive() returns the complete frames and holds the rest", () => {
  const session = new KeyboardSession(RULES, 0);
  const got = session.receive(concat(JASON_BE, JASON_BE.subarray(0, 10)), 0);
  assert.deepEqual(got.frames, JASON_BE);
  assert.equal(got.drop, undefined);
  assert.equal(session.inFrame, true);
  assert.deepEqual(session.receive(JASON_BE.subarray(10), 1).frames, JASON_BE);
  assert.equal(session.inFrame, false);
});

test("a broken frame is a drop, and the frames before it in the chunk still go out", () => {
  const session = new KeyboardSession(RULES, 0);
  const broken = JASON_BE.slice();
  broken[20] = 13; // month 13
  const got = session.receive(concat(JASON_BE, broken), 0);
  assert.deepEqual(got.frames, JASON_BE);
  assert.match(got.drop ?? "", /^malformed frame at stream byte 52: month 13 is out of range/);
  assert.equal(session.frameDeadline, undefined);
});

test("the frame deadline runs from the start of a frame and restarts with each completed one", () => {
  const session = new KeyboardSession(RULES, 0);
  session.receive(JASON_BE.subarray(0, 10), 1000);
  assert.equal(session.frameDeadline, 31_000);
  session.receive(JASON_BE.subarray(10, 20), 20_000);
  assert.equal(session.frameDeadline, 31_000, "more bytes of the same frame do not extend it");
  session.receive(concat(JASON_BE.subarray(20), JASON_BE.subarray(0, 5)), 25_000);
  assert.equal(session.frameDeadline, 55_000, "a completed frame restarts it");
  session.receive(JASON_BE.subarray(5), 26_000);
  assert.equal(session.frameDeadline, undefined, "no frame started, no deadline");
  assert.equal(session.frameTimeoutReason, "frame not completed within 30 s");
});

test("the frame clock stops while the server is not reading, and starts afresh after", () => {
  const session = new KeyboardSession(RULES, 0);
  session.receive(JASON_BE.subarray(0, 10), 0);
  session.stopClock();
  assert.equal(session.frameDeadline, undefined);
  session.startClock(100_000);
  assert.equal(session.frameDeadline, 130_000);
  const idle = new KeyboardSession(RULES, 0);
  idle.startClock(5);
  assert.equal(idle.frameDeadline, undefined, "no frame started: nothing to time");
});

test("flood control: past the burst, the session says how long to stop reading", () => {
  const session = new KeyboardSession(RULES, 0);
  assert.equal(session.receive(frames(5), 0).pauseMs, 0, "the burst of 5 is free");
  assert.equal(session.receive(frames(3), 0).pauseMs, 300, "3 over at 10/s: 300 ms");
  assert.equal(session.receive(frames(1), 300).pauseMs, 100, "back at 0 after 300 ms, 1 over");
  assert.equal(session.receive(frames(1), 10_000).pauseMs, 0, "refilled, up to the burst");
});

test("flood control off (--keyboard-rate 0) never pauses", () => {
  const session = new KeyboardSession({ ...RULES, keyboardRate: 0 }, 0);
  const many = encodeFrame({ username: "k", time: TIME, text: "x" });
  assert.equal(
    session.receive(concat(...Array.from({ length: 10_000 }, () => many)), 0).pauseMs,
    0,
  );
});
