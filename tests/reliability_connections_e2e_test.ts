/** What a connection may hold and for how long, against the real server: the connection limits, the identify, frame and TLS handshake time limits, keepalive, and running out of descriptors (RELIABILITY.md). */

import { RawClient } from "./helpers/raw_client.ts";
import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";

import { encodeIdentify } from "../lib/protocol/identify.ts";
import { healthyExchange } from "../tools/soak/health.ts";
import { closeQuietly, dial, sleep, type Target } from "../tools/soak/net.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { procStats } from "../tools/harness/proc_stats.ts";
import { closedBy, frame, LINUX, PATHS, plainOf, startServer } from "./helpers/relay_client.ts";
import { writeAll } from "../lib/net/wire_io.ts";

Deno.test("--max-connections bounds the whole process: the excess is refused at once, plain and TLS", async () => {
  await using certs = await CertificateDir.create();
  await using server = await ServerProcess.startReference([
    "--certs",
    certs.dir,
    "--max-connections",
    "3",
  ]);
  const plain: Target = { port: server.portOf("full server"), tls: false };
  const tlsPort = server.portOf("full TLS server");
  // Two on one relay and one on the other: the limit counts them together.
  const other: Target = { port: server.portOf("random-message server"), tls: false };
  const held = [await dial(plain), await dial(plain), await dial(other)];
  try {
    await sleep(200);
    assert.equal((await closedBy(await dial(plain), 2000)).how, "eof");
    assert.equal((await closedBy(await dial(other), 2000)).how, "eof");
    // Refused on the TLS port before any handshake: the socket must really close.
    const refused = await closedBy(await dial({ port: tlsPort, tls: false }), 2000);
    assert.notEqual(refused.how, "open", "a refused TLS connection was left open");
    closeQuietly(held.pop()!);
    await sleep(200);
    const admitted = await closedBy(await dial(plain), 500);
    assert.equal(admitted.how, "open", "a freed slot was not given to the next client");
  } finally {
    for (const conn of held) closeQuietly(conn);
  }
});

Deno.test("--max-per-address refuses a third connection from one address until one leaves", async () => {
  await using server = await startServer(["--max-per-address", "2"]);
  const target = plainOf(server);
  const held = [await dial(target), await dial(target)];
  try {
    const refused = server.log.next(/per-address limit 2 reached for 127\.0\.0\.1/, 5000);
    await sleep(200);
    assert.equal((await closedBy(await dial(target), 2000)).how, "eof");
    await refused;
    closeQuietly(held.pop()!);
    await sleep(200);
    assert.equal((await closedBy(await dial(target), 500)).how, "open");
  } finally {
    for (const conn of held) closeQuietly(conn);
  }
});

/** Asserts that the server closed a connection between 0.8 and 3 s (limits of 1 s). */
function onTime(ending: { how: string; ms: number }, what: string): void {
  assert.notEqual(ending.how, "open", `${what}: still open after ${ending.ms.toFixed(0)} ms`);
  assert.ok(
    ending.ms >= 800 && ending.ms < 3000,
    `${what}: closed after ${ending.ms.toFixed(0)} ms`,
  );
}

const TIME_LIMITS = ["--identify-timeout", "1", "--frame-timeout", "1", "--handshake-timeout", "1"];

/**
 * The TLS time limits, as steps of `t`, on a TLS server started with `args` too: handshakes
 * stalled at their start and in their middle (whose sockets must really close), and a
 * handshake with no identify code after it.
 */
async function tlsTimeLimitSteps(t: Deno.TestContext, args: string[]): Promise<void> {
  await using certs = await CertificateDir.create();
  await using tlsServer = await startServer([
    ...TIME_LIMITS,
    "--cert",
    certs.certFile,
    "--key",
    certs.keyFile,
    ...args,
  ]);
  const tlsPort = tlsServer.endpoints[0].port;
  for (
    const [name, bytes] of [["silence", new Uint8Array()], [
      "half a ClientHello",
      Uint8Array.of(0x16, 3, 1, 0, 0xc8, 1),
    ]] as const
  ) {
    await t.step(
      `a TLS handshake stalled after ${name}, and its socket really closes`,
      async () => {
        const before = await procStats(tlsServer.pid);
        const conn = await dial({ port: tlsPort, tls: false });
        if (bytes.length) await writeAll(conn, bytes);
        onTime(await closedBy(conn, 5000), name);
        const after = await procStats(tlsServer.pid);
        if (before && after) {
          assert.equal(after.fds, before.fds, "the server still holds the socket");
        }
      },
    );
  }
  await t.step("a TLS handshake but no identify code", async () => {
    const conn = await dial({ port: tlsPort, tls: true, caCert: certs.caCert });
    onTime(await closedBy(conn, 5000), "TLS without identify");
  });
}

// Plain connections are on Deno's sockets until they identify, on either path: the plain
// limits are tried once.
Deno.test("identify, frame and TLS handshake time limits end stalled clients on time (native sockets)", async (t) => {
  await using server = await startServer(TIME_LIMITS);
  const plain = plainOf(server);
  await t.step("no identify code", async () => {
    const conn = await dial(plain);
    await writeAll(conn, Uint8Array.of(0, 0));
    onTime(await closedBy(conn, 5000), "half an identify code");
  });
  await t.step("a frame that never finishes", async () => {
    const conn = await dial(plain);
    await writeAll(
      conn,
      new Uint8Array([...encodeIdentify("keyboard"), ...frame("a", "b").subarray(0, 10)]),
    );
    onTime(await closedBy(conn, 5000), "half a frame");
  });
  await tlsTimeLimitSteps(t, []);
});

Deno.test("TLS handshake and identify time limits end stalled TLS clients on time (--no-native-sockets)", (t) =>
  tlsTimeLimitSteps(t, ["--no-native-sockets"]));

/** The timer of the server's side of a connection, from /proc/net/tcp: 2 is keepalive. */
async function timerOf(serverPort: number, clientPort: number): Promise<string> {
  const { stdout } = await new Deno.Command("cat", { args: ["/proc/net/tcp"], stdout: "piped" })
    .output();
  const rows = new TextDecoder().decode(stdout).split("\n").slice(1).map((l) =>
    l.trim().split(/\s+/)
  );
  const row = rows.find((r) =>
    r.length > 5 && parseInt(r[1].split(":")[1], 16) === serverPort &&
    parseInt(r[2].split(":")[1], 16) === clientPort
  );
  if (!row) throw new Error(`no socket ${serverPort} <- ${clientPort} in /proc/net/tcp`);
  return row[5].split(":")[0]; // "tr": 0 none, 1 retransmit, 2 keepalive, ...
}

/**
 * Whether the keepalive timer runs on the server's side of a connection. A retransmit timer
 * (the last TLS handshake bytes not yet acknowledged) hides it for a moment, so look again.
 */
async function keepAliveOn(serverPort: number, clientPort: number): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((await timerOf(serverPort, clientPort)) === "02") return true;
    await sleep(100);
  }
  return false;
}

for (const path of PATHS) {
  Deno.test({
    name:
      `TCP keepalive is on for plain and TLS clients, and --no-keepalive turns it off (${path.label})`,
    ignore: !LINUX,
    async fn() {
      await using certs = await CertificateDir.create();
      const tlsArgs = ["--cert", certs.certFile, "--key", certs.keyFile];
      for (const [args, expected] of [[[], true], [["--no-keepalive"], false]] as const) {
        await using plain = await startServer([...args, ...path.args]);
        await using tls = await startServer([...args, ...tlsArgs, ...path.args]);
        await using display = await RawClient.open(plain, plainOf(plain), "display");
        await using keyboard = await RawClient.open(tls, {
          port: tls.endpoints[0].port,
          tls: true,
          caCert: certs.caCert,
        }, "keyboard");
        assert.equal(await keepAliveOn(plain.endpoints[0].port, display.port), expected);
        assert.equal(await keepAliveOn(tls.endpoints[0].port, keyboard.port), expected);
      }
    },
  });
}

async function hasPrlimit(): Promise<boolean> {
  try {
    return (await new Deno.Command("prlimit", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "out of descriptors, the server logs once, backs off without spinning, and recovers",
  ignore: !LINUX || !(await hasPrlimit()),
  async fn() {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.startReference([
      "--certs",
      certs.dir,
      "--identify-timeout",
      "30",
    ], { nofile: 96 });
    const plain: Target = { port: server.portOf("full server"), tls: false };
    const tls: Target = {
      port: server.portOf("full TLS server"),
      tls: true,
      caCert: certs.caCert,
    };
    const failures = server.log.collect((line) => /accept failed/.test(line));
    const flood: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 150; i++) flood.push(await dial(i % 2 ? plain : { ...tls, tls: false }));
      await server.log.next(/accept failed/, 5000).catch(() => {});
      await sleep(500);
      const before = await server.stats();
      await sleep(3000);
      const after = await server.stats();
      assert.ok(failures.length >= 1, "no accept failure was logged");
      assert.match(failures[0], /Too many open files/);
      if (before && after) {
        const cpu = (after.cpuSeconds - before.cpuSeconds) / 3;
        assert.ok(
          cpu < 0.1,
          `the server used ${(cpu * 100).toFixed(0)}% CPU while out of descriptors`,
        );
      }
    } finally {
      for (const conn of flood) closeQuietly(conn);
    }
    await sleep(1500);
    assert.equal(await healthyExchange(plain, "plain after EMFILE"), "");
    assert.equal(await healthyExchange(tls, "TLS after EMFILE"), "");
    assert.ok(
      failures.length <= 2,
      `accept failures logged ${failures.length} times:\n${failures.join("\n")}`,
    );
    assert.equal(server.exited, false);
  },
});
