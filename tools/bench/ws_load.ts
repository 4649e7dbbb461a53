/**
 * The WebSocket load generator of the web rows (web_rows.ts), run as its own process: one
 * sender and N receivers on `url`. `--gateway` speaks wirechat's sub-protocol (a hello first;
 * records with an 8-byte sequence number in front of each frame); otherwise every message is
 * one bare frame, as the ws peer relays it. Prints one JSON line: deliveries, seconds, p50/p99.
 *
 * `--tcp-keyboard PORT`: the sender is a TCP keyboard on wirechat's relay port instead, writing
 * batches of frames as the TCP rows' keyboards do; with `--tcp-displays` the receivers are TCP
 * displays on that port too. The two together set the WebSocket fan-out beside the TCP one,
 * under the same load from the same generator.
 *
 * Before measuring, the sender sends probes until every receiver has one (a TCP display is
 * subscribed a moment after it connects). flood: the sender keeps at most WINDOW messages (a
 * WebSocket sender) or TCP_WINDOW_BYTES (a TCP keyboard, the TCP rows' window) unreceived by
 * the last receiver, so that no server is measured by how much it can buffer. paced: 100
 * messages a second, each stamped with its send time; every receiver's latency of every
 * message is recorded.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeFrame, LENGTH_FIELD_SIZE } from "../../lib/protocol/frame.ts";
import { concatBytes } from "../../lib/protocol/bytes.ts";
import { SEQ_SIZE } from "../../lib/protocol/web_records.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { writeAll } from "../../lib/net/wire_io.ts";
import { RawWebSocket } from "./ws_receiver.ts";

const WINDOW = 64;
/** The TCP flood rows' window (run_one.ts), for a TCP keyboard sender. */
const TCP_WINDOW_BYTES = 128 * 1024;
/** Frames a TCP keyboard writes at most at once. */
const TCP_BATCH = 1000;
const PACED_RATE = 100;
const PROBE_MS = 20;
const READY_TIMEOUT_MS = 20_000;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    receivers: { type: "string" },
    seconds: { type: "string" },
    mode: { type: "string" },
    gateway: { type: "boolean" },
    "tcp-keyboard": { type: "string" },
    "tcp-displays": { type: "boolean" },
  },
});
const url = values.url!;
const receivers = Number(values.receivers);
const seconds = Number(values.seconds);
const paced = values.mode === "paced";
const gateway = values.gateway ?? false;
const tcpPort = values["tcp-keyboard"] ? Number(values["tcp-keyboard"]) : 0;

/** Called with each frame a receiver gets: the view and the frame's offset in it. */
type OnFrame = (view: DataView, at: number) => void;

/** Opens a WebSocket sender (saying hello to the gateway); resolves once it may send. */
function openSender(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    socket.onopen = () => {
      if (!gateway) return resolve(socket);
      socket.send(JSON.stringify({ type: "hello" }));
    };
    // The ws peer sends the sender everything too: it is read, and left alone.
    socket.onmessage = (event) => {
      if (typeof event.data === "string") resolve(socket);
    };
  });
}

/**
 * Opens a receiving WebSocket (RawWebSocket: about as cheap to read as a TCP display), saying
 * hello to the gateway and awaiting its welcome.
 */
async function openReceiver(onFrame: OnFrame): Promise<RawWebSocket> {
  const { port, pathname } = new URL(url);
  const skip = gateway ? SEQ_SIZE : 0;
  const socket = await RawWebSocket.open(Number(port), pathname, (view, from, to) => {
    for (let at = from; at < to;) {
      onFrame(view, at + skip);
      at += skip + LENGTH_FIELD_SIZE + view.getInt32(at + skip);
    }
  });
  if (gateway) {
    const welcome = socket.nextText();
    await socket.sendText(JSON.stringify({ type: "hello" }));
    await welcome;
  }
  return socket;
}

/** Opens a TCP display on the relay port; its frames are read and split in the background. */
async function openTcpDisplay(onFrame: OnFrame): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });
  await writeAll(conn, encodeIdentify("display"));
  (async () => {
    const buffer = new Uint8Array(256 * 1024);
    const view = new DataView(buffer.buffer);
    let have = 0;
    for (;;) {
      const n = await conn.read(buffer.subarray(have)).catch(() => null);
      if (n === null) return;
      have += n;
      let at = 0;
      while (have - at >= LENGTH_FIELD_SIZE) {
        const size = LENGTH_FIELD_SIZE + view.getInt32(at);
        if (have - at < size) break;
        onFrame(view, at);
        at += size;
      }
      buffer.copyWithin(0, at, have);
      have -= at;
    }
  })();
  return conn;
}

let delivered = 0;
let lastReceived = 0;
let ready = 0;
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

const closers: (() => void)[] = [];
for (let i = 0; i < receivers; i++) {
  const last = i === receivers - 1;
  let seen = false;
  const onFrame: OnFrame = (view, at) => {
    if (!seen) {
      seen = true;
      ready++;
    }
    if (!measuring) return;
    delivered++;
    if (last) lastReceived++;
    if (paced) {
      const end = at + LENGTH_FIELD_SIZE + view.getInt32(at);
      latencies.push(performance.now() - view.getFloat64(end - 32));
    }
  };
  if (values["tcp-displays"]) {
    const conn = await openTcpDisplay(onFrame);
    closers.push(() => conn.close());
  } else {
    const socket = await openReceiver(onFrame);
    closers.push(() => socket.close());
  }
}

/** Sends frames on the WebSocket sender, each its own message, or on the TCP keyboard. */
let sendFrames: (frames: Uint8Array[]) => Promise<void>;
let window = WINDOW;
if (tcpPort) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });
  await writeAll(conn, encodeIdentify("keyboard"));
  window = Math.floor(TCP_WINDOW_BYTES / stamped().length);
  sendFrames = (frames) => writeAll(conn, concatBytes(frames));
  closers.push(() => conn.close());
} else {
  const sender = await openSender();
  sendFrames = (frames) => {
    for (const frame of frames) sender.send(frame);
    return Promise.resolve();
  };
  closers.push(() => sender.close());
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const readyBy = performance.now() + READY_TIMEOUT_MS;
while (ready < receivers) {
  if (performance.now() > readyBy) {
    console.error(`only ${ready} of ${receivers} receivers got a probe`);
    Deno.exit(1);
  }
  await sendFrames([stamped()]);
  await sleep(PROBE_MS);
}
// Let the last probes arrive before counting.
await sleep(4 * PROBE_MS);

measuring = true;
const start = performance.now();
const end = start + seconds * 1000;
let sent = 0;
if (paced) {
  while (performance.now() < end) {
    await sendFrames([stamped()]);
    sent++;
    await sleep(Math.max(0, start + sent * 1000 / PACED_RATE - performance.now()));
  }
} else {
  while (performance.now() < end) {
    const room = Math.min(window - (sent - lastReceived), TCP_BATCH);
    if (room > 0) {
      await sendFrames(Array.from({ length: room }, stamped));
      sent += room;
    }
    await sleep(0);
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
for (const close of closers) close();
Deno.exit(0);
