/**
 * The WebSocket load generator of the web rows (web_rows.ts), run as its own process: one
 * sender and N receivers on `url`. `--gateway` speaks wirechat's sub-protocol (a hello first;
 * records with an 8-byte sequence number in front of each frame); otherwise every message is
 * one bare frame, as the ws peer relays it. Prints one JSON line: deliveries, seconds, p50/p99.
 *
 * flood: the sender keeps at most WINDOW messages unreceived by the last receiver to join,
 * so that neither server is measured by how much it can buffer. paced: 100 messages a second,
 * each stamped with its send time; every receiver's latency of every message is recorded.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { SEQ_SIZE } from "../../lib/protocol/web_records.ts";

const WINDOW = 64;
const PACED_RATE = 100;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    receivers: { type: "string" },
    seconds: { type: "string" },
    mode: { type: "string" },
    gateway: { type: "boolean" },
  },
});
const url = values.url!;
const receivers = Number(values.receivers);
const seconds = Number(values.seconds);
const paced = values.mode === "paced";
const gateway = values.gateway ?? false;

/** Opens a socket (saying hello to the gateway) and resolves once it may send. */
function open(onFrame: (frame: DataView, at: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    socket.onopen = () => {
      if (!gateway) return resolve(socket);
      socket.send(JSON.stringify({ type: "hello" }));
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") return resolve(socket);
      const view = new DataView(event.data as ArrayBuffer);
      const skip = gateway ? SEQ_SIZE : 0;
      for (let at = 0; at < view.byteLength;) {
        onFrame(view, at + skip);
        at += skip + 4 + view.getInt32(at + skip);
      }
    };
  });
}

let delivered = 0;
let lastReceived = 0;
const latencies: number[] = [];
let measuring = false;
const TIME = { year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0 };

/** The text's first 8 bytes hold the send time (float64 ms); the frame is 32 bytes of text. */
function stamped(): Uint8Array {
  const text = "x".repeat(32);
  const frame = encodeFrame({ username: "bench", time: TIME, text });
  new DataView(frame.buffer).setFloat64(frame.length - 32, performance.now());
  return frame;
}

const sockets: WebSocket[] = [];
for (let i = 0; i < receivers; i++) {
  const last = i === receivers - 1;
  sockets.push(
    await open((view, at) => {
      if (!measuring) return;
      delivered++;
      if (last) lastReceived++;
      if (paced) {
        const end = at + 4 + view.getInt32(at);
        latencies.push(performance.now() - view.getFloat64(end - 32));
      }
    }),
  );
}
const sender = await open(() => {});
measuring = true;
const start = performance.now();
const end = start + seconds * 1000;
let sent = 0;
if (paced) {
  while (performance.now() < end) {
    sender.send(stamped());
    sent++;
    const next = start + sent * 1000 / PACED_RATE;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  }
} else {
  while (performance.now() < end) {
    while (sent - lastReceived < WINDOW) {
      sender.send(stamped());
      sent++;
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
const elapsed = (performance.now() - start) / 1000;
measuring = false;
latencies.sort((a, b) => a - b);
const pick = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
console.log(JSON.stringify({
  delivered,
  seconds: elapsed,
  deliveriesPerSecond: delivered / elapsed,
  p50: latencies.length ? pick(0.5) : null,
  p99: latencies.length ? pick(0.99) : null,
}));
for (const socket of [...sockets, sender]) socket.close();
Deno.exit(0);
