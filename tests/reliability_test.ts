/**
 * The server's limits and its answers to faults, each checked against the real server run as
 * a process (RELIABILITY.md lists them): backlog limits, flood control, connection limits,
 * time limits, keepalive, running out of descriptors, certificate reload; and the clients'
 * answers to a closed stdout and a vanished server.
 *
 * The tests whose connections the server holds differently on native sockets (TLS
 * connections, and plain displays once identified: lib/native_socket.ts) run on both paths,
 * native sockets and `--no-native-sockets`: stalled and slow displays, a TLS keyboard's
 * flood, keepalive, and the TLS time limits.
 */

import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";
import { generateCertificates } from "../tools/certificates.ts";
import { encodeFrame, type Message } from "../lib/protocol/frame.ts";
import { FrameDecoder } from "../lib/protocol/frame_decoder.ts";
import { encodeIdentify, type Role } from "../lib/protocol/identify.ts";
import { healthyExchange } from "../tools/soak/health.ts";
import { closeQuietly, dial, readUntilClosed, sleep, type Target } from "../tools/soak/net.ts";
import { procStats, ServerProcess } from "../tools/soak/server_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const LINUX = Deno.build.os === "linux";
const TIME = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };

function frame(username: string, text: string, littleEndian = false): Uint8Array {
  return encodeFrame({ username, time: TIME, text }, { littleEndian });
}

function frames(count: number, username: string, size = 10): Uint8Array {
  const one = (i: number) => frame(username, `${i}:${"x".repeat(size)}`);
  const all = Array.from({ length: count }, (_, i) => one(i));
  const out = new Uint8Array(all.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const f of all) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A client speaking the protocol from the test: identifies, then collects what arrives. */
class Client implements AsyncDisposable {
  readonly messages: Message[] = [];
  /** How the connection ended, once it has. */
  ending: Promise<string>;
  #conn: Deno.Conn;
  #changed: (() => void) | undefined;

  private constructor(conn: Deno.Conn, littleEndian: boolean, read: boolean) {
    this.#conn = conn;
    this.ending = read ? this.#read(littleEndian) : Promise.resolve("not read");
  }

  /**
   * Connects, identifies as `role`, and waits until the server's log says it saw that. With
   * `read: false` nothing is read: the test reads, or lets the data pile up.
   */
  static async connect(
    server: ServerProcess,
    target: Target,
    role: Role,
    options: { littleEndian?: boolean; read?: boolean } = {},
  ): Promise<Client> {
    const conn = await dial(target);
    const port = (conn.localAddr as Deno.NetAddr).port;
    const seen = server.log.waitFor(new RegExp(`:${port} identified as ${role}`), 10_000);
    await writeAll(conn, encodeIdentify(role, options.littleEndian));
    await seen;
    return new Client(conn, options.littleEndian ?? false, options.read ?? true);
  }

  get port(): number {
    return (this.#conn.localAddr as Deno.NetAddr).port;
  }

  get conn(): Deno.Conn {
    return this.#conn;
  }

  send(bytes: Uint8Array): Promise<void> {
    return writeAll(this.#conn, bytes);
  }

  /** Resolves once `count` messages have arrived, or rejects after `ms`. */
  async waitForMessages(count: number, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.messages.length < count) {
      if (performance.now() > deadline) {
        throw new Error(`${this.messages.length} of ${count} messages arrived within ${ms} ms`);
      }
      await Promise.race([new Promise<void>((r) => this.#changed = r), sleep(100)]);
    }
  }

  async #read(littleEndian: boolean): Promise<string> {
    const decoder = new FrameDecoder({ littleEndian, maxFrame: 2 ** 31 - 1 });
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) return "eof";
        this.messages.push(...decoder.push(buffer.subarray(0, n)));
        this.#changed?.();
      }
    } catch (error) {
      return error instanceof Deno.errors.ConnectionReset ? "reset" : `error: ${error}`;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.#conn);
    await Promise.race([this.ending, sleep(100)]);
  }
}

/** Reads whatever comes until the server closes the connection; says how and when. */
async function closedBy(conn: Deno.Conn, ms: number): Promise<{ how: string; ms: number }> {
  const ending = await readUntilClosed(conn, ms);
  return { how: ending.how, ms: ending.ms };
}

async function startServer(args: string[], endpoints = 1): Promise<ServerProcess> {
  return await ServerProcess.start(["--port", "0", ...args], { endpoints });
}

const plainOf = (server: ServerProcess): Target => ({ port: server.endpoints[0].port, tls: false });

/** The two ways the server can hold a connection; tests of the connection code try both. */
const PATHS = [
  { label: "native sockets", args: [] as string[] },
  { label: "--no-native-sockets", args: ["--no-native-sockets"] },
];

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
    await using stalled = await Client.connect(server, target, "display", { read: false });
    await using reader = await Client.connect(server, target, "display");
    await using keyboard = await Client.connect(server, target, "keyboard");
    const drop = server.log.waitFor(
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
    await using slow = await Client.connect(server, target, "display", { read: false });
    const trickle = (async () => {
      const one = new Uint8Array(1);
      for (let i = 0; i < 30; i++) {
        await sleep(1000);
        if ((await slow.conn.read(one).catch(() => null)) === null) return;
      }
    })();
    await using keyboard = await Client.connect(server, target, "keyboard");
    const drop = server.log.waitFor(
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
  await using display = await Client.connect(server, target, "display");
  await using keyboard = await Client.connect(server, target, "keyboard");
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
  assert.equal(server.log.dropReasons.size, 0, [...server.log.dropReasons.keys()].join("; "));
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
      await using keyboard = await Client.connect(server, target, "keyboard");
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
  await using display = await Client.connect(server, target, "display");
  await using keyboard = await Client.connect(server, target, "keyboard");
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
  await using display = await Client.connect(server, target, "display");
  await using keyboard = await Client.connect(server, target, "keyboard");
  // 30 frames and half of one more: the server pauses for about 2 s after reading them, and
  // the second half, sent at once, waits in the socket meanwhile.
  const last = frame("paced", "the last one");
  await keyboard.send(new Uint8Array([...frames(30, "paced"), ...last.subarray(0, 20)]));
  await sleep(200);
  await keyboard.send(last.subarray(20));
  await display.waitForMessages(31, 10_000);
  assert.equal(display.messages[30].text, "the last one");
  assert.equal(server.log.dropReasons.size, 0, [...server.log.dropReasons.keys()].join("; "));
});

Deno.test("--max-connections bounds the whole process: the excess is refused at once, plain and TLS", async () => {
  await using certs = await CertificateDir.create();
  await using server = await ServerProcess.startReference([
    "--certs",
    certs.dir,
    "--max-connections",
    "3",
  ]);
  const plain: Target = { port: server.port("full server"), tls: false };
  const tlsPort = server.port("full TLS server");
  // Two on one relay and one on the other: the limit counts them together.
  const other: Target = { port: server.port("random-message server"), tls: false };
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
    const refused = server.log.waitFor(/per-address limit 2 reached for 127\.0\.0\.1/, 5000);
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
        await using display = await Client.connect(plain, plainOf(plain), "display");
        await using keyboard = await Client.connect(tls, {
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
    const plain: Target = { port: server.port("full server"), tls: false };
    const tls: Target = {
      port: server.port("full TLS server"),
      tls: true,
      caCert: certs.caCert,
    };
    const failures = server.log.collect((line) => /accept failed/.test(line));
    const flood: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 150; i++) flood.push(await dial(i % 2 ? plain : { ...tls, tls: false }));
      await server.log.waitFor(/accept failed/, 5000).catch(() => {});
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

/** Whether a TLS client trusting `caCert` completes a handshake with the server. */
async function trusts(port: number, caCert: string): Promise<boolean> {
  try {
    closeQuietly(await dial({ port, tls: true, caCert }));
    return true;
  } catch {
    return false;
  }
}

/**
 * A TLS server with a display and a keyboard connected, whose certificate files `certs` are
 * rewritten by `body`; the display and keyboard must exchange messages before and after.
 */
async function withOpenTlsSession(
  args: string[],
  body: (server: ServerProcess, certs: CertificateDir, port: number) => Promise<void>,
): Promise<void> {
  await using certs = await CertificateDir.create();
  await using server = await startServer([
    "--cert",
    certs.certFile,
    "--key",
    certs.keyFile,
    ...args,
  ]);
  const port = server.endpoints[0].port;
  const target = { port, tls: true, caCert: certs.caCert };
  await using display = await Client.connect(server, target, "display");
  await using keyboard = await Client.connect(server, target, "keyboard");
  await keyboard.send(frame("alice", "before"));
  await display.waitForMessages(1, 5000);
  await body(server, certs, port);
  await keyboard.send(frame("alice", "after"));
  await display.waitForMessages(2, 5000);
  assert.deepEqual(display.messages.map((m) => m.text), ["before", "after"]);
  assert.equal(server.exited, false);
}

Deno.test({
  name: "SIGHUP reloads the certificate for new connections; open ones carry on",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withOpenTlsSession([], async (server, certs, port) => {
      const next = await generateCertificates();
      await certs.install(next);
      const reloaded = server.log.waitFor(/certificate reloaded/, 5000);
      server.kill("SIGHUP");
      await reloaded;
      assert.ok(
        await trusts(port, next.caCert),
        "a new connection did not get the new certificate",
      );
      assert.ok(
        !(await trusts(port, certs.caCert)),
        "a new connection got the old certificate",
      );
    }),
});

Deno.test("--reload-certs reloads the certificate when its files change; open connections carry on", () =>
  withOpenTlsSession(["--reload-certs", "0.2"], async (server, certs, port) => {
    const next = await generateCertificates();
    const reloaded = server.log.waitFor(/certificate reloaded/, 5000);
    await sleep(20); // a new modification time, even on coarse clocks
    await certs.install(next);
    await reloaded;
    // The key may have been read a moment before the certificate; the next check fixes that.
    for (let i = 0; i < 20 && !(await trusts(port, next.caCert)); i++) await sleep(100);
    assert.ok(await trusts(port, next.caCert), "a new connection did not get the new certificate");
  }));

Deno.test({
  name: "a reload with a key that does not match the certificate keeps the old pair serving",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withOpenTlsSession([], async (server, certs, port) => {
      const refused = server.log.waitFor(/certificate not reloaded, keeping the old one/, 5000);
      await certs.install(await generateCertificates(), "cert");
      server.kill("SIGHUP");
      await refused;
      assert.ok(await trusts(port, certs.caCert), "the old certificate is no longer served");
    }),
});

/** Runs a client program with piped stdio; returns the child. */
function program(name: "display" | "keyboard", args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", `${ROOT}main_${name}.ts`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The first line of `stream` that matches `pattern` (default: any); stops reading then. */
async function lineMatching(
  stream: ReadableStream<Uint8Array>,
  pattern = /^/,
  ms = 15_000,
): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), ms);
  let text = "";
  try {
    for (;;) {
      const lines = text.split("\n");
      const found = lines.slice(0, -1).find((line) => pattern.test(line));
      if (found !== undefined) return found;
      const { value, done } = await reader.read();
      if (done) throw new Error(`no line matching ${pattern} in:\n${text}`);
      text += value;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
}

Deno.test("a display piped into a reader that goes away (head -n 1) exits 0, quietly", async () => {
  await using server = await startServer([]);
  const port = String(server.endpoints[0].port);
  const identified = server.log.waitFor(/identified as display/, 10_000);
  const child = program("display", ["--port", port]);
  await child.stdin.close();
  await identified;
  await using keyboard = await Client.connect(server, plainOf(server), "keyboard");
  await keyboard.send(frame("alice", "first"));
  assert.match(await lineMatching(child.stdout), /^alice 2024-01-02 03:04:05 first$/);
  // stdout is closed now: the next line makes the display notice and leave.
  for (let i = 0; i < 5; i++) await keyboard.send(frame("alice", `more ${i}`));
  const { code } = await child.status;
  const stderr = await new Response(child.stderr).text();
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
});

Deno.test("when the server vanishes, each client says so in one sentence; --reconnect comes back", async () => {
  const server = await startServer([]);
  const port = server.endpoints[0].port;
  const displays = server.log.collect((line) => /identified as display/.test(line));
  const display = program("display", ["--port", String(port)]);
  const again = program("display", ["--port", String(port), "--reconnect"]);
  const keyboard = program("keyboard", ["--port", String(port), "--user", "bob"]);
  await display.stdin.close();
  await again.stdin.close();
  const keyboardIn = keyboard.stdin.getWriter();
  await keyboardIn.write(new TextEncoder().encode("hello\n"));
  const keyboardSeen = server.log.waitFor(/identified as keyboard/, 10_000);
  while (displays.length < 2) await sleep(50);
  await keyboardSeen;
  server.kill("SIGKILL");
  await server.stop();
  const [displayDone, keyboardDone] = await Promise.all([display.output(), keyboard.output()]);
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  for (const [name, done] of [["display", displayDone], ["keyboard", keyboardDone]] as const) {
    const stderr = text(done.stderr);
    assert.equal(done.code, 1, `${name}: ${stderr}`);
    assert.equal(stderr.split("\n").length, 1, `${name} said more than one sentence: ${stderr}`);
    assert.doesNotMatch(stderr, /Uncaught|^\s+at /m);
  }
  // The reconnecting display says so, and is back once a server is.
  const said = again.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!/Reconnecting in \d+ s/.test(stderr)) stderr += (await said.read()).value ?? "";
  const revived = await ServerProcess.start(["--port", String(port)]);
  try {
    await revived.log.waitFor(/identified as display/, 15_000);
    await using keyboard = await Client.connect(revived, { port, tls: false }, "keyboard");
    await keyboard.send(frame("carol", "welcome back"));
    await lineMatching(again.stdout, /^carol 2024-01-02 03:04:05 welcome back$/);
  } finally {
    again.kill("SIGTERM");
    await again.status;
    await said.cancel();
    await revived.stop();
  }
});

Deno.test("connections that come and go, plain and TLS, refused or not, leave nothing on the heap", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      `${ROOT}tools/soak/heap_check.ts`,
      "--rounds",
      "4",
      "--per-round",
      "250",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const report = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, report);
});
