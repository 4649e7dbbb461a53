/**
 * End to end for how the programs start and stop: the keyboard reading piped input, Ctrl-C
 * (SIGINT) on the clients, and the server shutting down on SIGTERM with clients connected.
 *
 * @module
 */

import assert from "node:assert/strict";
import { concatBytes } from "../lib/protocol/bytes.ts";
import {
  CertificateDir,
  clientArgs,
  displayLine,
  escapeRegExp,
  run,
  ServerProcess,
  startDisplay,
  startKeyboard,
} from "./helpers/processes.ts";
import { frameOf, RawClient } from "./helpers/raw_client.ts";
import { bounded } from "../tools/harness/wait.ts";

const STACK_TRACE = /^\s+at |error: Uncaught|Stack backtrace/m;

Deno.test(
  "a keyboard with --user sends each piped line as one message, in order, printing nothing",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const keyboard = await run(
      "main_keyboard.ts",
      [...clientArgs(server.port), "--user", "Jason"],
      {
        input: "one\ntwo\r\n\nthree, without a final newline",
      },
    );
    assert.equal(keyboard.code, 0, keyboard.stderr);
    assert.equal(keyboard.stdout, "");
    assert.equal(keyboard.stderr, "");
    const lines = await display.stdout.waitForCount(/^Jason /, 4);
    const expected = ["one", "two", "", "three, without a final newline"];
    lines.forEach((line, i) => assert.match(line, displayLine("Jason", expected[i])));
  }),
);

Deno.test(
  "a keyboard without --user takes the first piped line as the username, with no prompt",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const keyboard = await run("main_keyboard.ts", clientArgs(server.port), {
      input: "Jason\nHello World\n",
    });
    assert.equal(keyboard.code, 0, keyboard.stderr);
    assert.equal(keyboard.stdout, "", "no Username: prompt when stdin is not a terminal");
    assert.equal(keyboard.stderr, "");
    assert.match(await display.stdout.waitFor(/World/), displayLine("Jason", "Hello World"));
    assert.equal(display.stdout.all.length, 1, "the username line is not sent as a message");
  }),
);

Deno.test(
  "a keyboard exits 0 at the end of its input, and every line it read arrives",
  bounded(30_000, async () => {
    const COUNT = 2000;
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    const input = Array.from({ length: COUNT }, (_, i) => `line ${i}\n`).join("");
    const keyboard = await run("main_keyboard.ts", [...clientArgs(server.port), "--user", "bulk"], {
      input,
    });
    assert.equal(keyboard.code, 0, keyboard.stderr);
    const lines = await display.stdout.waitForCount(/^bulk /, COUNT);
    assert.deepEqual(
      lines.map((line) => line.replace(/^bulk \S+ \S+ /, "")),
      Array.from({ length: COUNT }, (_, i) => `line ${i}`),
    );
    await server.log.waitFor(/ disconnected \(keyboard\): closed by peer$/);
  }),
);

for (const tls of [false, true]) {
  Deno.test(
    `SIGINT (Ctrl-C) ends a running ${
      tls ? "TLS " : ""
    }display and keyboard with exit status 0 and no stack trace`,
    bounded(30_000, async () => {
      await using certs = await CertificateDir.create();
      await using server = await ServerProcess.start(tls ? certs.serverArgs : []);
      const args = clientArgs(server.port, tls ? { ca: certs.caFile } : {});
      await using display = await startDisplay(server, args);
      await using keyboard = startKeyboard([...args, "--user", "Jason"]);
      await keyboard.write("before Ctrl-C\n");
      await display.stdout.waitFor(displayLine("Jason", "before Ctrl-C"));
      for (const program of [display, keyboard]) {
        program.kill("SIGINT");
        const result = await program.result();
        assert.equal(result.code, 0, result.stderr);
        assert.doesNotMatch(result.stderr, STACK_TRACE);
        assert.equal(result.stderr, "");
      }
      const ends = await server.log.waitForCount(/ (disconnected|dropped) /, 2);
      for (const line of ends) {
        assert.match(line, / disconnected \((display|keyboard)\): closed by peer\b/);
        assert.doesNotMatch(line, /https?:/, "a log line, not a library's manual");
      }
    }),
  );
}

for (const tls of [false, true]) {
  Deno.test(
    `SIGTERM stops the ${
      tls ? "TLS " : ""
    }server within 2 s with clients connected, and they say so in one sentence`,
    bounded(30_000, async () => {
      await using certs = await CertificateDir.create();
      // Backlog limits high enough that a display which never reads is still connected,
      // with writes pending, when the signal comes.
      await using server = await ServerProcess.start([
        ...(tls ? certs.serverArgs : []),
        "--max-backlog",
        "100000000",
        "--soft-backlog",
        "100000000",
      ]);
      const raw = tls ? { caCert: certs.caCert } : {};
      await using stalled = await RawClient.identified(server, server.port, "display", raw);
      {
        await using flood = await RawClient.identified(server, server.port, "keyboard", raw);
        const batch = concatBytes(
          Array.from({ length: 16 }, () => frameOf("flood", "x".repeat(4000))),
        );
        for (let i = 0; i < 128; i++) await flood.send(batch);
        flood.close();
        await server.log.waitFor(new RegExp(` ${escapeRegExp(flood.peer)} disconnected `));
      }
      const args = clientArgs(server.port, tls ? { ca: certs.caFile } : {});
      await using display = await startDisplay(server, args);
      await using keyboard = startKeyboard([...args, "--user", "Jason"]);
      await keyboard.write("before the shutdown\n");
      await display.stdout.waitFor(displayLine("Jason", "before the shutdown"));

      server.kill("SIGTERM");
      const status = await server.exitWithin(2_000);
      assert.equal(status.code, 0, server.log.all.join("\n"));
      assert.match(server.log.all.at(-1)!, / stopped$/);
      for (const program of [display, keyboard]) {
        const result = await program.result();
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr, "The server closed the connection.\n");
      }
      await stalled.closedByServer();
    }),
  );
}
