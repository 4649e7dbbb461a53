/**
 * The healthy exchange the soak and the server fuzzer end with: a fresh display and a fresh
 * keyboard, and one message from one to the other.
 *
 * @module
 */

import { encodeFrame } from "../../lib/frame.ts";
import { FrameDecoder } from "../../lib/frame_decoder.ts";
import { encodeIdentify } from "../../lib/identify.ts";
import { closeQuietly, dial, sleep, type Target, tryWrite } from "./net.ts";

/**
 * Connects a display and a keyboard to `target` and has the keyboard send until the display
 * receives a message with `token` (or `ms` pass). Returns "" on success, else why not.
 */
export async function healthyExchange(target: Target, token: string, ms = 10_000): Promise<string> {
  let display: Deno.Conn | undefined;
  let keyboard: Deno.Conn | undefined;
  const deadline = performance.now() + ms;
  try {
    display = await dial(target);
    if (!(await tryWrite(display, encodeIdentify("display")))) return "the display was cut off";
    keyboard = await dial(target);
    const username = `health-${token}`;
    const frame = encodeFrame({
      username,
      time: { year: 2024, month: 6, day: 1, hour: 12, minute: 0, second: 0 },
      text: token,
    });
    if (!(await tryWrite(keyboard, encodeIdentify("keyboard")))) return "the keyboard was cut off";
    const received = (async () => {
      const decoder = new FrameDecoder();
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await display!.read(buffer);
        if (n === null) return false;
        if (decoder.push(buffer.subarray(0, n)).some((m) => m.username === username)) return true;
      }
    })().catch(() => false);
    let done = false;
    received.then(() => done = true);
    // The display may not be registered yet when the first message goes: send until seen.
    while (!done && performance.now() < deadline) {
      if (!(await tryWrite(keyboard, frame))) return "the keyboard was cut off";
      await Promise.race([received, sleep(200)]);
    }
    if (!done) {
      closeQuietly(display);
      return `no message reached the display within ${ms / 1000} s`;
    }
    return (await received) ? "" : "the display was cut off";
  } catch (error) {
    return `${error}`;
  } finally {
    if (display) closeQuietly(display);
    if (keyboard) closeQuietly(keyboard);
  }
}
