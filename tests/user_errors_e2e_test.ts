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
