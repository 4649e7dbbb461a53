/**
 * The conformance checker (tools/conformance/) run as a real subprocess, as students and
 * graders run it: against our own server, display and keyboard (everything passes), and
 * against deliberately broken implementations in tests/fixtures/ (exactly the right checks
 * fail, with the right hints). Its diagnosis helpers are pinned first, on exact bytes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeFrame, type Timestamp } from "../lib/protocol/frame.ts";
import { dumpFrame } from "../tools/conformance/hexdump.ts";
import {
  characterCountHint,
  displayLineHint,
  identifyHint,
  overallLengthHint,
  relayHint,
} from "../tools/conformance/hints.ts";
import { analyzeKeyboardStream } from "../tools/conformance/keyboard_analysis.ts";
import { within } from "../tools/harness/wait.ts";
import { programCommand } from "../tools/harness/program.ts";
import { REPO_ROOT } from "../tools/harness/deno_tasks.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";

const ROOT = REPO_ROOT;
/** `run FLAGS tools/conformance/main.ts`, exactly as the deno.json task runs it. */
const CHECKER = programCommand("tools/conformance/main.ts", []).slice(1);
const TIME: Timestamp = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 };
const JASON = encodeFrame({ username: "Jason", time: TIME, text: "Hello World" });

const python = await new Deno.Command("python3", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output()
  .then((r) => r.success, () => false);

function pure(name: string, fn: () => void): void {
  Deno.test({ name, permissions: "none", fn });
}

// ---------------------------------------------------------------------------------------
// The diagnoses, on exact bytes.

pure("relayHint() recognises a server that re-stamped the time", () => {
  const restamped = encodeFrame({
    username: "Jason",
    time: { ...TIME, year: 2026, hour: 17 },
    text: "Hello World",
  });
  assert.match(
    relayHint(JASON, restamped)!,
    /only the date fields differ \(bytes 13-36\).*re-stamped/,
  );
});

pure("relayHint() recognises a frame cut after one recv()", () => {
  assert.match(relayHint(JASON, JASON.subarray(0, 20))!, /only the first 20 of 52 bytes/);
});

pure("identifyHint() reads 01 00 00 00 as a little-endian DISPLAY", () => {
  const hint = identifyHint(Uint8Array.of(1, 0, 0, 0), 1)!;
  assert.match(hint, /identify code arrived as 01 00 00 00: that is 1 in little-endian/);
  assert.match(hint, /htonl \/ struct\.pack\('!i'\) \/ DataView setInt32\(\.\.\., false\)/);
});

pure("identifyHint() recognises a frame sent without an identify code", () => {
  assert.match(
    identifyHint(JASON, 2, { usernameBytes: 5 })!,
    /look like the overall_length \(48\)/,
  );
});

pure("overallLengthHint() asks whether the length field counted itself", () => {
  assert.equal(
    overallLengthHint(52, 5, 11),
    "overall_length says 52 but the fields add up to 48: did you count the length field " +
      "itself? overall_length counts only the bytes after it",
  );
});

pure("characterCountHint() tells characters from bytes", () => {
  assert.match(characterCountHint("ulen", 3, "Zoë")!, /number of characters.*UTF-8 bytes \(4\)/);
  assert.equal(characterCountHint("ulen", 4, "Zoë"), undefined);
});

pure("displayLineHint() spots a date without zero padding", () => {
  const hint = displayLineHint(
    { username: "pad", time: { ...TIME, year: 2025, month: 3, day: 7 }, text: "x" },
    "pad 2025-3-7 3:4:5 x",
  );
  assert.match(hint!, /not zero-padded \(2025-3-7 3:4:5\)/);
});

pure("dumpFrame() names each field of the Jason frame at its offset", () => {
  const lines = dumpFrame(JASON, { marks: { overall_length: "expected 44" } });
  assert.match(lines[1], /^ {2}0 {2}00 00 00 30 +overall_length +48 {2}<- expected 44$/);
  assert.match(lines[3], /^ {2}8 {2}4a 61 73 6f 6e +username +5 bytes "Jason"$/);
  assert.match(lines[4], /^ 13 {2}00 00 07 e8 +year +2024$/);
  assert.match(lines[11], /^ 41 {2}48 65 6c .* +text +11 bytes "Hello World"$/);
});

pure("analyzeKeyboardStream() lays out frames whose lengths count characters", () => {
  const frame = encodeFrame({ username: "Zoë", time: TIME, text: "héllo" });
  const view = new DataView(frame.buffer);
  view.setInt32(0, 32 + 3 + 5); // overall_length from character counts
  view.setInt32(4, 3); // ulen in characters
  view.setInt32(8 + 4 + 24, 5); // tlen in characters
  const stream = new Uint8Array([0, 0, 0, 2, ...frame, ...frame]);
  const analysis = analyzeKeyboardStream(stream, { username: "Zoë", lines: ["héllo", "héllo"] });
  assert.equal(analysis.identify.status, "ok");
  assert.equal(analysis.frames.length, 2);
  assert.deepEqual(analysis.frames.map((f) => [f.ulen, f.username.length, f.tlen, f.text.length]), [
    [3, 4, 5, 6],
    [3, 4, 5, 6],
  ]);
  assert.equal(analysis.leftover, undefined);
});

// ---------------------------------------------------------------------------------------
// Running the checker.

interface Record {
  type: "check";
  group: string;
  name: string;
  status: "PASS" | "FAIL" | "SKIP";
  expected?: string;
  got?: string;
  hint?: string;
  reason?: string;
}

interface Summary {
  type: "summary";
  passed: number;
  failed: number;
  skipped: number;
  ok: boolean;
  notes: string[];
}

interface Run {
  code: number;
  records: Record[];
  summary: Summary;
  stderr: string;
  byName(name: string): Record;
  failed(): string[];
}

/** Runs `conformance ARGS --json` and parses its records. */
async function conformance(...args: string[]): Promise<Run> {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  const rest = split < 0 ? [] : args.slice(split);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...CHECKER, ...own, "--json", ...rest],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  const parsed = lines.map((l) => JSON.parse(l));
  const records = parsed.filter((r) => r.type === "check") as Record[];
  const summary = parsed.find((r) => r.type === "summary") as Summary;
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(summary, `no summary record; stdout:\n${stdout}\nstderr:\n${stderr}`);
  return {
    code: output.code,
    records,
    summary,
    stderr,
    byName(name) {
      const record = records.find((r) => r.name === name);
      assert.ok(record, `no record for ${name}`);
      return record;
    },
    failed: () => records.filter((r) => r.status === "FAIL").map((r) => r.name),
  };
}

function explain(run: Run): string {
  return run.records.filter((r) => r.status !== "PASS").map((r) => JSON.stringify(r)).join("\n") +
    `\n${run.stderr}`;
}

function assertAllPassed(run: Run): void {
  assert.equal(run.summary.failed + run.summary.skipped, 0, explain(run));
  assert.equal(run.code, 0);
  assert.ok(run.summary.ok);
}

const ourServer = () => ServerProcess.start([]);

// ---------------------------------------------------------------------------------------
// Our own implementations pass everything.

Deno.test("conformance server: our server passes every check, extensions and hostile included", async () => {
  await using server = await ourServer();
  const run = await conformance(
    "server",
    "--port",
    String(server.port),
    "--extensions",
    "--hostile",
  );
  assertAllPassed(run);
  assert.equal(run.records.length, 22);
});

Deno.test("conformance server: our server passes the core checks over TLS", async () => {
  const { generateCertificates } = await import("../tools/certificates.ts");
  const certs = await generateCertificates();
  const dir = await Deno.makeTempDir({ prefix: "conformance-test-" });
  try {
    for (
      const [file, pem] of [["server.crt", certs.serverCert], ["server.key", certs.serverKey], [
        "root_ca.crt",
        certs.caCert,
      ]]
    ) {
      await Deno.writeTextFile(join(dir, file), pem);
    }
    await using server = await ServerProcess.start([
      "--cert",
      join(dir, "server.crt"),
      "--key",
      join(dir, "server.key"),
    ]);
    const run = await conformance(
      "server",
      "--port",
      String(server.port),
      "--tls",
      "--ca",
      join(dir, "root_ca.crt"),
    );
    assertAllPassed(run);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conformance display: our display passes, plain and with a throwaway TLS set", async () => {
  const display = programCommand("main_display.ts", ["--host", "localhost", "--port", "{port}"]);
  const [plain, tls] = await Promise.all([
    conformance("display", "--", ...display),
    conformance("display", "--tls", "--", ...display, "--tls", "--ca", "{ca}"),
  ]);
  assertAllPassed(plain);
  assertAllPassed(tls);
  assert.equal(plain.records.length, 11);
});

Deno.test("conformance keyboard: our keyboard passes, username typed or given as {user}", async () => {
  const keyboard = programCommand("main_keyboard.ts", ["--host", "{host}", "--port", "{port}"]);
  const [typed, given] = await Promise.all([
    conformance("keyboard", "--", ...keyboard),
    conformance("keyboard", "--user", "Zoë", "--", ...keyboard, "--user", "{user}"),
  ]);
  assertAllPassed(typed);
  assertAllPassed(given);
  assert.equal(typed.records.length, 8);
});

// ---------------------------------------------------------------------------------------
// Broken servers.

Deno.test({
  name: "conformance server: a student server with blocking sendall fails slow-display " +
    "and relays malformed frames",
  ignore: !python,
  async fn() {
    await using server = await ServerProcess.start(["--port", "0"], {
      command: ["python3", "tests/fixtures/blocking_server.py"],
    });
    const run = await conformance(
      "server",
      "--port",
      String(server.port),
      "--hostile",
      "--timeout",
      "2",
    );
    assert.deepEqual(
      run.failed(),
      ["slow-display", "inconsistent-lengths", "negative-length"],
      explain(run),
    );
    assert.equal(run.code, 1);
    assert.match(run.byName("slow-display").hint!, /blocking sendall\(\) waits forever/);
    assert.match(run.byName("slow-display").got!, /display A received \d+ of \d+ messages/);
    assert.match(
      run.byName("inconsistent-lengths").got!,
      /received a malformed frame: (ulen 200 does not fit|overall_length says 52)/,
    );
    // Which negative field reaches the display first depends on how the blocking server's reads
    // fell: either shows that it relayed the frame.
    assert.match(
      run.byName("negative-length").got!,
      /impossible overall_length -1|received a malformed frame: ulen is negative/,
    );
    assert.equal(run.summary.notes.length, 0);
  },
});

Deno.test("conformance server: a server that re-stamps the time, and dies on a bad frame", async () => {
  await using server = await ServerProcess.start([], {
    command: programCommand("tests/fixtures/restamp_server.ts", []),
  });
  const run = await conformance("server", "--port", String(server.port), "--hostile");
  assert.deepEqual(run.failed(), ["relay-byte-for-byte", "oversized-length"], explain(run));
  const restamped = run.byName("relay-byte-for-byte");
  assert.match(restamped.hint!, /only the date fields differ.*the server re-stamped the time/);
  const died = run.byName("oversized-length");
  assert.match(died.got!, /the server stopped answering after the oversized-length check/);
  assert.deepEqual(
    run.records.filter((r) => r.status === "SKIP").map((r) => r.name),
    [
      "inconsistent-lengths",
      "negative-length",
      "slow-loris-identify",
      "garbage-identify",
      "abrupt-reset",
    ],
  );
  assert.match(
    run.byName("abrupt-reset").reason!,
    /stopped answering after the oversized-length check/,
  );
  assert.match(run.summary.notes[0], /stopped answering after the oversized-length check/);
});

Deno.test("conformance server: a server that never relays fails within the timeout, not hangs", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed at the end of the test.
    }
  })();
  const started = Date.now();
  const run = await conformance("server", "--port", String(listener.addr.port), "--timeout", "1");
  const elapsed = Date.now() - started;
  listener.close();
  await accepting;
  for (const conn of held) conn.close();
  assert.deepEqual(run.failed(), ["identify"]);
  assert.match(
    run.byName("identify").got!,
    /never received the keyboard's message: no answer within 1 s/,
  );
  assert.equal(run.summary.skipped, 12);
  assert.match(run.byName("order").reason!, /the server relayed no message/);
  assert.ok(elapsed < 8000, `took ${elapsed} ms`);
});

// ---------------------------------------------------------------------------------------
// Broken clients.

const studentDisplay = (bug?: string) => [
  "python3",
  "tests/fixtures/student_display.py",
  "--host",
  "{host}",
  "--port",
  "{port}",
  ...(bug ? ["--bug", bug] : []),
];

Deno.test({
  name: "conformance display: student displays, correct, unpadded, printing raw escapes, " +
    "crashing on a split frame",
  ignore: !python,
  async fn() {
    const [good, unpadded, raw, crash] = await Promise.all([
      conformance("display", "--", ...studentDisplay()),
      conformance("display", "--", ...studentDisplay("unpadded")),
      conformance("display", "--", ...studentDisplay("raw-controls")),
      conformance("display", "--", ...studentDisplay("crash-on-split")),
    ]);
    assertAllPassed(good);
    assert.deepEqual(unpadded.failed(), ["zero-padding", "midnight"], explain(unpadded));
    assert.equal(unpadded.byName("zero-padding").got, '"pad 2025-3-7 4:5:6 single digits"');
    assert.match(
      unpadded.byName("midnight").hint!,
      /the date is not zero-padded \(2024-12-31 0:0:0\)/,
    );
    assert.deepEqual(raw.failed(), ["control-characters"], explain(raw));
    const controls = raw.byName("control-characters");
    assert.match(controls.got!, /a raw ESC \(0x1b\) reached stdout, at character 29:/);
    assert.match(controls.hint!, /drive everyone's terminal/);
    // Expected and got in the notation the display must print: one backslash, no \u001b.
    assert.match(controls.expected!, /"mallory 2024-11-11 11:11:11 \\x1b\[2J\\x1b\[31mowned/);
    for (const shown of [controls.expected!, controls.got!]) {
      assert.doesNotMatch(shown, /\\\\|\\u001b/, shown);
    }

    // The crash is named first, on the check of the message it crashed on.
    assert.deepEqual(crash.failed(), ["split-frame", "coalesced-frames"], explain(crash));
    const split = crash.byName("split-frame");
    assert.match(
      split.got!,
      /^the display exited with status 1 while the checker was still sending, before printing this line \(it printed 7 line\(s\) in all\); its stderr ends with:\n[^]*struct\.error/,
    );
    assert.match(split.hint!, /its exit status and stderr above tell why.*arrived in four pieces/);
  },
});

const studentKeyboard = (bug?: string) => [
  "python3",
  "tests/fixtures/student_keyboard.py",
  "--host",
  "{host}",
  "--port",
  "{port}",
  ...(bug ? ["--bug", bug] : []),
];

Deno.test({
  name: "conformance keyboard: each classic mistake fails exactly its check, with its hint",
  ignore: !python,
  async fn() {
    const bugs = [
      "",
      "little-endian",
      "all-little",
      "chars",
      "self-length",
      "no-identify",
      "newline",
    ];
    // Two at a time: a loaded CI machine must not starve the clients of CPU.
    const runs: Run[] = [];
    for (let i = 0; i < bugs.length; i += 2) {
      runs.push(
        ...await Promise.all(
          bugs.slice(i, i + 2).map((bug) =>
            conformance("keyboard", "--", ...studentKeyboard(bug || undefined))
          ),
        ),
      );
    }
    const [good, little, allLittle, chars, selfLength, noIdentify, newline] = runs;
    assertAllPassed(good);

    assert.deepEqual(little.failed(), ["byte-order"], explain(little));
    assert.match(
      little.byName("byte-order").got!,
      /overall_length arrived as 30 00 00 00, 48 little-endian/,
    );
    assert.match(little.byName("byte-order").hint!, /big-endian \(network byte order\): use htonl/);

    assertAllPassed(allLittle);
    assert.match(allLittle.byName("identify").hint!, /identified little-endian \(02 00 00 00\)/);

    // Counting characters makes overall_length wrong too: each field fails its own check.
    assert.deepEqual(chars.failed(), ["overall-length", "byte-lengths"], explain(chars));
    assert.match(chars.byName("overall-length").expected!, /username bytes \+ \d+ text bytes/);
    assert.match(chars.byName("overall-length").hint!, /count UTF-8 bytes, not characters/);
    assert.match(chars.byName("byte-lengths").hint!, /tlen is 19, the number of characters/);
    assert.match(chars.byName("byte-lengths").hint!, /number of UTF-8 bytes \(32\)/);

    assert.deepEqual(selfLength.failed(), ["overall-length"], explain(selfLength));
    assert.match(
      selfLength.byName("overall-length").hint!,
      /overall_length says 52 but the fields add up to 48: did you count the length field itself\?/,
    );

    assert.deepEqual(noIdentify.failed(), ["identify"], explain(noIdentify));
    assert.match(
      noIdentify.byName("identify").got!,
      /no identify code: the stream starts with 00 00 00 30/,
    );
    assert.match(noIdentify.byName("identify").hint!, /must come first, before any frame/);

    assert.deepEqual(newline.failed(), ["text"], explain(newline));
    assert.match(newline.byName("text").hint!, /newline was sent as part of the text/);
  },
});

Deno.test("conformance display: a client that exits at once fails connect and skips the rest", async () => {
  const run = await conformance("display", "--", Deno.execPath(), "eval", "Deno.exit(3)");
  assert.deepEqual(run.failed(), ["connect"]);
  assert.match(run.byName("connect").got!, /the client exited with status 3 before connecting/);
  assert.equal(run.summary.skipped, 10);
});

// ---------------------------------------------------------------------------------------
// The command line.

Deno.test("conformance: usage errors are one sentence and exit status 2", async () => {
  for (
    const [args, pattern] of [
      [["server", "--bogus"], /^Unknown option --bogus/],
      [["keyboard"], /^Keyboard mode needs the command/],
      [["server", "--port", "http"], /^--port must be a number/],
      [["display", "--only", "nope", "--", "true"], /^There is no check named "nope"/],
      [["launch"], /^Unknown mode "launch"/],
    ] as const
  ) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [...CHECKER, ...args],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr).trim();
    assert.equal(output.code, 2, stderr);
    assert.match(stderr, pattern);
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.equal(output.stdout.length, 0);
  }
});

Deno.test({
  name: "conformance: Ctrl-C (SIGINT) on the checker stops the client under test too",
  ignore: !python || Deno.build.os === "windows",
  async fn() {
    // The "client" reports to this listener and then sleeps; its connection ends when it dies.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const client = [
      "python3",
      "-c",
      "import os, socket, time\n" +
      `s = socket.create_connection(("127.0.0.1", ${listener.addr.port}))\n` +
      "s.sendall(str(os.getpid()).encode())\ntime.sleep(60)",
    ];
    const checker = new Deno.Command(Deno.execPath(), {
      args: [...CHECKER, "display", "--", ...client],
      cwd: ROOT,
      stdout: "null",
      stderr: "null",
    }).spawn();
    let conn: Deno.Conn | undefined;
    try {
      conn = await within(10_000, "the client under test connecting", listener.accept());
      const buffer = new Uint8Array(32);
      const n = await within(5000, "the client's pid", conn.read(buffer));
      assert.ok(n && n > 0, "the client sent nothing");
      checker.kill("SIGINT");
      const status = await within(5000, "the checker's exit", checker.status);
      assert.equal(status.code, 130, "the checker should exit 130 after SIGINT");
      const end = await within(5000, "the client's end", conn.read(buffer).catch(() => null));
      assert.equal(end, null, "the client under test is still running after the checker left");
    } finally {
      conn?.close();
      try {
        checker.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await checker.status;
    }
  },
});
