/**
 * End to end for the user's mistakes: each one gets one clear sentence on stderr and a
 * non-zero exit status, and never a stack trace.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CertificateDir,
  clientArgs,
  displayLine,
  type ProgramResult,
  REPO_ROOT,
  run,
  ServerProcess,
  startDisplay,
  startKeyboard,
} from "./helpers/processes.ts";
import { bounded } from "../tools/harness/wait.ts";

/** Asserts that a program failed with exactly one line on stderr, matching `sentence`. */
function assertOneSentence(result: ProgramResult, sentence: RegExp, code?: number): void {
  const shown = `exit ${result.code}, stderr:\n${result.stderr}`;
  if (code === undefined) assert.notEqual(result.code, 0, shown);
  else assert.equal(result.code, code, shown);
  assert.doesNotMatch(result.stderr, /^\s+at |error: Uncaught|Stack backtrace/m, shown);
  assert.match(result.stderr, /^[^\n]+\n$/, `exactly one line: ${shown}`);
  assert.match(result.stderr.trimEnd(), sentence);
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test(
  "the server on a port already in use says so in one sentence",
  bounded(30_000, async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    const result = await run("main_server.ts", ["--host", "127.0.0.1", "--port", String(port)]);
    assertOneSentence(
      result,
      new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`),
      1,
    );
  }),
);

Deno.test(
  "the server with a missing certificate file names the file in one sentence",
  bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    const missing = `${certs.dir}/missing.crt`;
    const result = await run("main_server.ts", [
      "--port",
      "0",
      "--cert",
      missing,
      "--key",
      certs.keyFile,
    ]);
    assertOneSentence(
      result,
      /^Cannot read the certificate .*missing\.crt: no such file or directory\. Create a throwaway set with: deno task certs$/,
      1,
    );
  }),
);

Deno.test(
  "the server with --cert but no --key asks for both in one sentence",
  bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    const result = await run("main_server.ts", ["--port", "0", "--cert", certs.certFile]);
    assertOneSentence(result, /^--cert and --key go together/, 2);
  }),
);

Deno.test(
  "the server without read permission names the missing --allow-read in one sentence",
  bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    const result = await run("main_server.ts", ["--port", "0", ...certs.serverArgs], {
      permissions: ["--allow-net"],
    });
    assertOneSentence(result, /permission denied \(the program was not granted --allow-read\)/, 1);
  }),
);

Deno.test(
  "clients to a port nobody listens on say the connection was refused",
  bounded(30_000, async () => {
    const port = closedPort();
    const [display, keyboard] = await Promise.all([
      run("main_display.ts", clientArgs(port)),
      run("main_keyboard.ts", [...clientArgs(port), "--user", "Jason"], { input: "hi\n" }),
    ]);
    for (const result of [display, keyboard]) {
      assertOneSentence(
        result,
        new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`),
        1,
      );
    }
  }),
);

Deno.test(
  "a client to a host name that does not resolve says so",
  bounded(30_000, async () => {
    const result = await run("main_display.ts", ["--host", "nonexistent.invalid", "--port", "1"]);
    assertOneSentence(
      result,
      /^Cannot connect to nonexistent\.invalid:1: the host name could not be resolved\.$/,
      1,
    );
  }),
);

Deno.test(
  "TLS mistakes get one sentence each: no --ca, --tls to a plain port, plain to a TLS port",
  bounded(45_000, async (t) => {
    await using certs = await CertificateDir.create();
    await using plain = await ServerProcess.start([]);
    await using tls = await ServerProcess.start(certs.serverArgs);

    await t.step("--tls without --ca does not trust the throwaway certificate", async () => {
      const result = await run("main_display.ts", [
        ...clientArgs(tls.port, { host: "localhost" }),
        "--tls",
      ]);
      assertOneSentence(
        result,
        /^Cannot connect to localhost:\d+: the server's certificate is not trusted \(pass --ca with the root CA that signed it\)\.$/,
        1,
      );
      await tls.log.waitFor(/ dropped \(unidentified\): TLS handshake failed/);
    });

    await t.step("--tls to a plain port", async () => {
      const result = await run("main_display.ts", clientArgs(plain.port, { ca: certs.caFile }));
      assertOneSentence(
        result,
        /^Cannot connect to 127\.0\.0\.1:\d+: .*(plain TCP port|TLS handshake failed).*try without --tls/,
        1,
      );
      await plain.log.waitFor(
        / dropped \(unidentified\): unknown identify code 16 03 .*use the TLS port/,
      );
    });

    await t.step("a plain display or keyboard to a TLS port", async () => {
      const [display, keyboard] = await Promise.all([
        run("main_display.ts", clientArgs(tls.port)),
        run("main_keyboard.ts", [...clientArgs(tls.port), "--user", "Jason"], {
          input: "Hello World\n",
        }),
      ]);
      for (const result of [display, keyboard]) {
        assertOneSentence(result, /^The server answered with TLS: connect with --tls/, 1);
      }
      await tls.log.waitForCount(/ dropped \(unidentified\): TLS handshake failed/, 3);
    });
  }),
);

Deno.test(
  "an unknown option gets one sentence and exit status 2 from every program",
  bounded(30_000, async () => {
    const results = await Promise.all(
      ["main_server.ts", "main_display.ts", "main_keyboard.ts"].map((script) =>
        run(script, ["--bogus"])
      ),
    );
    for (const result of results) {
      assertOneSentence(result, /^Unknown option '--bogus'.* Try --help\.$/, 2);
      assert.equal(result.stdout, "");
    }
  }),
);

Deno.test(
  "a keyboard whose username leaves no room for text in a frame says so in one sentence",
  bounded(30_000, async () => {
    const result = await run("main_keyboard.ts", ["--port", "1"], {
      input: `${"x".repeat(70_000)}\nhello\n`,
    });
    assertOneSentence(
      result,
      /^The username is 70000 bytes long; at most \d+ leave room for text in a frame\.$/,
      1,
    );
  }),
);

Deno.test(
  "a keyboard whose server vanishes mid-session says so in one sentence",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "Jason"]);
    await keyboard.write("before the server vanished\n");
    await display.stdout.waitFor(displayLine("Jason", "before the server vanished"));
    server.kill("SIGKILL");
    await server.exitWithin();
    const result = await keyboard.result();
    assertOneSentence(
      result,
      /^(The server closed the connection\.|The connection to the server was lost: .+\.)$/,
      1,
    );
    assert.equal(result.stdout, "");
  }),
);

// ---------------------------------------------------------------------------------------
// Mistakes that used to point the wrong way (issue 15).

Deno.test(
  "a private key given as --ca, --cert or --key's opposite is named as such in one sentence",
  bounded(60_000, async () => {
    await using certs = await CertificateDir.create();
    const display = await run("main_display.ts", [
      ...clientArgs(closedPort()),
      "--tls",
      "--ca",
      certs.keyFile,
    ]);
    assertOneSentence(
      display,
      /^The CA certificate file .*server\.key holds no certificate \(it holds a private key: --ca takes the root CA's certificate, e\.g\. certs\/root_ca\.crt\)\.$/,
      1,
    );
    const keyAsCert = await run("main_server.ts", [
      "--port",
      "0",
      "--cert",
      certs.keyFile,
      "--key",
      certs.keyFile,
    ]);
    assertOneSentence(
      keyAsCert,
      /^The certificate file .*server\.key holds no certificate \(it holds a private key: --cert takes server\.crt, --key server\.key\)\.$/,
      1,
    );
    const certAsKey = await run("main_server.ts", [
      "--port",
      "0",
      "--cert",
      certs.certFile,
      "--key",
      certs.certFile,
    ]);
    assertOneSentence(
      certAsKey,
      /^The private key file .*server\.crt holds no private key \(it holds a certificate: --key takes server\.key, --cert server\.crt\)\.$/,
      1,
    );
  }),
);

Deno.test(
  "a key from another pair is named in one sentence, both files with it",
  bounded(60_000, async () => {
    await using certs = await CertificateDir.create();
    await using other = await CertificateDir.create();
    const result = await run("main_server.ts", [
      "--port",
      "0",
      "--cert",
      certs.certFile,
      "--key",
      other.keyFile,
    ]);
    assertOneSentence(
      result,
      new RegExp(
        `^The key ${escape(other.keyFile)} does not belong to the certificate ${
          escape(certs.certFile)
        } \\(they come from different pairs`,
      ),
      1,
    );
  }),
);

function escape(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

Deno.test(
  "--reference checks every port and certificate before it says it listens anywhere",
  bounded(60_000, async () => {
    // The last of the four ports (BASE+300) is taken: nothing may be announced, and the
    // sentence names that port.
    const base = await freeRun();
    using _busy = Deno.listen({ hostname: "127.0.0.1", port: base + 300 });
    await using certs = await CertificateDir.create();
    const busy = await run("main_server.ts", [
      "--host",
      "127.0.0.1",
      "--reference",
      "--base-port",
      String(base),
      "--certs",
      certs.dir,
    ]);
    assertOneSentence(
      busy,
      new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${base + 300}: the port is already in use`),
      1,
    );
    const missing = `${certs.dir}/nothing-here`;
    const noCerts = await run("main_server.ts", [
      "--host",
      "127.0.0.1",
      "--reference",
      "--base-port",
      String(base),
      "--certs",
      missing,
    ]);
    assertOneSentence(
      noCerts,
      new RegExp(
        `^Cannot read the certificate ${
          escape(missing)
        }/server\\.crt: no such file or directory\\. ` +
          `Create a throwaway set with: deno task certs --out ${escape(missing)}$`,
      ),
      1,
    );
  }),
);

/** A base port B with B, B+100, B+200 and B+300 free a moment ago. */
async function freeRun(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    try {
      for (const offset of [0, 100, 200, 300]) {
        Deno.listen({ hostname: "127.0.0.1", port: base + offset }).close();
      }
      return base;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  throw new Error("no free run of four ports");
}

Deno.test(
  "a plain client on the TLS port is dropped with a hint, and the listening line says TLS once",
  bounded(60_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await ServerProcess.start(certs.serverArgs);
    const listening = server.log.matching(/ listening on /)[0];
    assert.match(listening, / full TLS server listening on 127\.0\.0\.1:\d+$/);
    const display = await run("main_display.ts", clientArgs(server.port));
    assertOneSentence(display, /^The server answered with TLS: connect with --tls \(and --ca\)\.$/);
    await server.log.waitFor(
      / dropped \(unidentified\): TLS handshake failed: not a TLS record \(a plain TCP client on the TLS port\)$/,
    );
  }),
);

Deno.test(
  "every program's --help starts with how it is run and ends with --help and --version",
  bounded(60_000, async () => {
    for (
      const [script, name] of [
        ["main_server.ts", "server"],
        ["main_display.ts", "display"],
        ["main_keyboard.ts", "keyboard"],
        ["main_chat.ts", "chat"],
        ["main_history.ts", "history"],
        ["tools/certs.ts", "certs"],
        ["tools/conformance/main.ts", "conformance"],
        ["tools/compile.ts", "compile"],
      ]
    ) {
      const result = await run(script, ["--help"]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      assert.match(result.stdout, new RegExp(`^Usage: deno task ${name} `), script);
      const options = result.stdout.split("\n").filter((line) => /^ {2}--?[a-z]/.test(line));
      assert.match(options.at(-2) ?? "", /^ {2}--help +show this help$/, script);
      assert.match(options.at(-1) ?? "", /^ {2}--version +show the version$/, script);
    }
  }),
);

Deno.test(
  "deno task compile refuses a bad --target or DENORT_BIN in one sentence and leaves no dist/",
  bounded(60_000, async () => {
    const out = await Deno.makeTempDir({ prefix: "wirechat_compile_" });
    try {
      const dist = `${out}/dist`;
      const target = await run("tools/compile.ts", ["--target", "vax-dec-vms", "--out", dist], {
        permissions: ["--allow-run", "--allow-read", `--allow-write=${out}`, "--allow-env"],
      });
      assertOneSentence(
        target,
        /^Unknown --target "vax-dec-vms": one of x86_64-unknown-linux-gnu, /,
        2,
      );
      const denort = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-run",
          "--allow-read",
          `--allow-write=${out}`,
          "--allow-env",
          "tools/compile.ts",
          "--out",
          dist,
        ],
        cwd: REPO_ROOT,
        env: { DENORT_BIN: `${out}/no-denort`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(denort.stderr);
      assert.equal(denort.code, 2, stderr);
      assert.equal(stderr, `DENORT_BIN points to ${out}/no-denort, where there is no file.\n`);
      assert.equal(await Deno.stat(dist).then(() => "there", () => "absent"), "absent");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  }),
);
