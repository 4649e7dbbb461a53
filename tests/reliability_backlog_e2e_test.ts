/** Slow displays and fast keyboards against the real server: the backlog limits drop only the display that cannot keep up, and flood control slows a keyboard without losing anything (RELIABILITY.md). */

import { RawClient } from "./helpers/raw_client.ts";
import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";

import { closeQuietly, sleep } from "../tools/soak/net.ts";

import { frame, frames, LINUX, PATHS, plainOf, startServer } from "./helpers/relay_client.ts";

for (const path of PATHS) {
  Deno.test(`a display that stops reading is dropped at --max-backlog; the others get everything (${path.label})`, async () => {
    await using server = await startServer([
      "--soft-seconds",
      "60",
      "--keyboard-rate",
      "0",
      ...path.args,
    ]);
    const target = plainOf(server);
    await using stalled = await RawClient.open(server, target, "display", { read: false });
    await using reader = await RawClient.open(server, target, "display");
    await using keyboard = await RawClient.open(server, target, "keyboard");
    const drop = server.log.next(
      new RegExp(`:${stalled.port} dropped \\(display\\): too slow`),
      20_000,
    );
    // 2000 frames of 8 KB: far more than the kernel's buffers hold for a display that never
    // reads. In batches, so that the reading display (in this same process) keeps up.
    const all = frames(2000, "bulk", 8000);
    const batch = all.length / 20;
    for (let at = 0; at < all.length; at += batch) {
      await keyboard.send(all.subarray(at, at + batch));
      await sleep(10);
    }
    const line = await drop;
    assert.match(line, /unsent backlog \d+ bytes over the limit 1048576/);
    await reader.waitForMessages(2000, 20_000);
    assert.deepEqual(
      reader.messages.map((m) => m.text.split(":")[0]),
      [...Array(2000).keys()].map(String),
    );
  });

  Deno.test(`a display that reads a byte a second is dropped after --soft-seconds above --soft-backlog (${path.label})`, async () => {
    await using server = await startServer([
      ...path.args,
      "--soft-backlog",
      "65536",
      "--soft-seconds",
      "1",
      "--max-backlog",
      "1000000000",
      "--keyboard-rate",
      "0",
    ]);
    const target = plainOf(server);
    await using slow = await RawClient.open(server, target, "display", { read: false });
    const trickle = (async () => {
      const one = new Uint8Array(1);
      for (let i = 0; i < 30; i++) {
        await sleep(1000);
        if ((await slow.conn.read(one).catch(() => null)) === null) return;
      }
    })();
    await using keyboard = await RawClient.open(server, target, "keyboard");
    const drop = server.log.next(
      new RegExp(`:${slow.port} dropped \\(display\\): too slow`),
      25_000,
    );
    await keyboard.send(frames(2000, "bulk", 8000));
    assert.match(await drop, /unsent backlog above 65536 bytes for 1 s/);
    closeQuietly(slow.conn);
    await trickle;
  });
}

Deno.test("a keyboard over --keyboard-rate is slowed down, not dropped, and loses nothing", async () => {
  await using server = await startServer(["--keyboard-rate", "1000", "--keyboard-burst", "100"]);
  const target = plainOf(server);
  await using display = await RawClient.open(server, target, "display");
  await using keyboard = await RawClient.open(server, target, "keyboard");
  const started = performance.now();
  // About 130 KB: four reads of the server's 32 KiB buffer. The server reads on while the
  // keyboard is under its rate; one read may take it past the burst, then it pauses.
  await keyboard.send(frames(3000, "fast"));
  await display.waitForMessages(3000, 15_000);
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds >= 1.5, `3000 messages took ${seconds.toFixed(2)} s, not paced at 1000/s`);
  assert.deepEqual(
    display.messages.map((m) => m.text.split(":")[0]),
    [...Array(3000).keys()].map(String),
  );
  assert.equal(server.tally.dropReasons.size, 0, [...server.tally.dropReasons.keys()].join("; "));
});

for (const path of PATHS) {
  Deno.test({
    name:
      `a TLS keyboard sending as fast as it can is paused too: the server's memory stays flat (${path.label})`,
    ignore: !LINUX,
    async fn() {
      await using certs = await CertificateDir.create();
      await using server = await startServer([
        "--cert",
        certs.certFile,
        "--key",
        certs.keyFile,
        ...path.args,
      ]);
      const target = { port: server.endpoints[0].port, tls: true, caCert: certs.caCert };
      await using keyboard = await RawClient.open(server, target, "keyboard");
      const before = await server.stats();
      // 1 KB frames for 3 s, as fast as the socket takes them: 1000/s get through, the rest wait.
      const batch = frames(100, "flood", 1000);
      const until = performance.now() + 3000;
      let sent = 0;
      const sending = (async () => {
        while (performance.now() < until) {
          await keyboard.send(batch);
          sent += 100;
        }
      })();
      await Promise.race([sending, sleep(4000)]);
      const after = await server.stats();
      if (before && after) {
        const grown = (after.rssKiB - before.rssKiB) / 1024;
        assert.ok(grown < 64, `server RSS grew by ${grown.toFixed(0)} MiB (${sent} frames sent)`);
      }
      closeQuietly(keyboard.conn);
      await sending.catch(() => {});
    },
  });
}

Deno.test("--keyboard-rate 0 turns flood control off", async () => {
  await using server = await startServer(["--keyboard-rate", "0"]);
  const target = plainOf(server);
  await using display = await RawClient.open(server, target, "display");
  await using keyboard = await RawClient.open(server, target, "keyboard");
  const started = performance.now();
  await keyboard.send(frames(20_000, "fast"));
  await display.waitForMessages(20_000, 15_000);
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 5, `20000 messages took ${seconds.toFixed(2)} s with flood control off`);
});

Deno.test("a keyboard the server is pausing is not dropped for the frame it could not finish", async () => {
  await using server = await startServer([
    "--keyboard-rate",
    "10",
    "--keyboard-burst",
    "10",
    "--frame-timeout",
    "1",
  ]);
  const target = plainOf(server);
  await using display = await RawClient.open(server, target, "display");
  await using keyboard = await RawClient.open(server, target, "keyboard");
  // 30 frames and half of one more: the server pauses for about 2 s after reading them, and
  // the second half, sent at once, waits in the socket meanwhile.
  const last = frame("paced", "the last one");
  await keyboard.send(new Uint8Array([...frames(30, "paced"), ...last.subarray(0, 20)]));
  await sleep(200);
  await keyboard.send(last.subarray(20));
  await display.waitForMessages(31, 10_000);
  assert.equal(display.messages[30].text, "the last one");
  assert.equal(server.tally.dropReasons.size, 0, [...server.tally.dropReasons.keys()].join("; "));
});
