/**
 * Whether connections that come and go leave anything behind in the server's heap. Runs the
 * server's relays in this process, puts them through rounds of each way a connection can
 * come and go, and weighs the JavaScript heap after a full garbage collection once each round
 * is over. The soak's RSS bound is too coarse for this: a few KB per connection shows only
 * after hours, and RSS moves for reasons of its own.
 *
 *     deno run --v8-flags=--expose-gc --allow-net=127.0.0.1 --allow-read --allow-write \
 *       tools/soak/heap_check.ts [--rounds 5] [--per-round 300]
 *
 * Prints the heap after each round for each kind; exits 1 if any kind grew by more than
 * 256 bytes per connection between its second and its last round.
 * tests/reliability_heap_e2e_test.ts runs it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generateCertificates } from "../certificates.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { Logger } from "../../lib/cli/log.ts";
import { ServerHost } from "../../lib/server/host.ts";
import { closeQuietly, dial, sleep, type Target, tryWrite } from "./net.ts";

/** Bytes per connection that a kind may grow by before it counts as a leak. */
const LEAK_BYTES = 256;
/** The server refuses connections above this many, so that every round has refusals. */
const MAX_CONNECTIONS = 100;

const frame = encodeFrame({
  username: "heap",
  time: { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 },
  text: "weighing",
});

type Kind = (plain: Target, tls: Target) => Promise<void>;

/** Each way a connection comes and goes; many of each at once also exceed the limit. */
const KINDS: Record<string, Kind> = {
  "plain keyboard, one message": async (plain) => {
    const conn = await dial(plain);
    await tryWrite(conn, new Uint8Array([...encodeIdentify("keyboard"), ...frame]));
    closeQuietly(conn);
  },
  "plain display, 50 ms": async (plain) => {
    const conn = await dial(plain);
    await tryWrite(conn, encodeIdentify("display"));
    await sleep(50);
    closeQuietly(conn);
  },
  "plain, never identifies (300 ms)": async (plain) => {
    const conn = await dial(plain);
    await sleep(300);
    closeQuietly(conn);
  },
  "TLS keyboard, one message": async (_, tls) => {
    const conn = await dial(tls).catch(() => undefined);
    if (!conn) return; // refused over the limit
    await tryWrite(conn, new Uint8Array([...encodeIdentify("keyboard"), ...frame]));
    closeQuietly(conn);
  },
  "TLS port, no handshake (300 ms)": async (_, tls) => {
    const conn = await dial({ ...tls, tls: false });
    await sleep(300);
    closeQuietly(conn);
  },
  "TLS port, garbage": async (_, tls) => {
    const conn = await dial({ ...tls, tls: false });
    await tryWrite(conn, new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    await sleep(50);
    closeQuietly(conn);
  },
};

/** Runs the check; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { rounds: { type: "string" }, "per-round": { type: "string" } },
  });
  const rounds = Number(values.rounds ?? 5);
  const perRound = Number(values["per-round"] ?? 300);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.error("Run with --v8-flags=--expose-gc: the heap is weighed after a full GC.");
    return 2;
  }
  const dir = await Deno.makeTempDir({ prefix: "wirechat-heap-" });
  const certs = await generateCertificates();
  await Deno.writeTextFile(`${dir}/server.crt`, certs.serverCert);
  await Deno.writeTextFile(`${dir}/server.key`, certs.serverKey);
  const host = await ServerHost.start(
    [{
      endpoints: [
        { label: "plain", host: "127.0.0.1", port: 0 },
        {
          label: "TLS",
          host: "127.0.0.1",
          port: 0,
          certFile: `${dir}/server.crt`,
          keyFile: `${dir}/server.key`,
        },
      ],
    }],
    { maxConnections: MAX_CONNECTIONS, identifyTimeout: 10, handshakeTimeout: 10 },
    new Logger("error"),
  );
  const plain: Target = { port: host.endpoints[0].port, tls: false };
  const tls: Target = { port: host.endpoints[1].port, tls: true, caCert: certs.caCert };
  let leaks = 0;
  try {
    for (const [name, kind] of Object.entries(KINDS)) {
      const heap: number[] = [];
      for (let round = 0; round < rounds; round++) {
        await Promise.all(Array.from({ length: perRound }, () => kind(plain, tls).catch(() => {})));
        // Let the server see every close, then weigh what is left.
        for (let i = 0; i < 50 && host.relays[0].connections > 0; i++) await sleep(20);
        await sleep(100);
        gc();
        gc();
        heap.push(Deno.memoryUsage().heapUsed);
      }
      const grown = heap.at(-1)! - heap[Math.min(1, heap.length - 1)];
      const perConnection = grown / (perRound * Math.max(1, rounds - 2));
      const leak = perConnection > LEAK_BYTES;
      if (leak) leaks++;
      console.log(
        `${leak ? "LEAK" : "ok  "} ${name}: heap after each round ${
          heap.map((h) => (h / 1048576).toFixed(2)).join(" ")
        } MiB (${perConnection.toFixed(0)} bytes per connection)`,
      );
    }
  } finally {
    await host.close();
    await Deno.remove(dir, { recursive: true });
  }
  return leaks ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
