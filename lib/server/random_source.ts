/**
 * The random-message source of the course's first reference server: a dummy message from a
 * made-up user, every few seconds, to every display.
 *
 * @module
 */

import { encodeFrame } from "../protocol/frame.ts";
import { localTimestamp } from "../protocol/time.ts";

const NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];
const TEXTS = [
  "Hello, is anyone there?",
  "The quick brown fox jumps over the lazy dog.",
  "Did you finish the networking lab?",
  "Big-endian or little-endian, that is the question.",
  "Testing, testing, one two three.",
  "TCP is a byte stream, not a message stream!",
  "Ünïcödé wörks tœ: 你好, 👋",
];

/** Calls `send` with one big-endian random-message frame every `seconds`; returns a stop. */
export function startRandomMessages(
  seconds: number,
  send: (frame: Uint8Array) => void,
): () => void {
  let count = 0;
  const timer = setInterval(() => {
    count++;
    const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)];
    send(encodeFrame({
      username: pick(NAMES),
      time: localTimestamp(),
      text: `${pick(TEXTS)} (#${count})`,
    }));
  }, seconds * 1000);
  return () => clearInterval(timer);
}
