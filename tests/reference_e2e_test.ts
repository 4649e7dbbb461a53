/**
 * End to end for `--reference`: the course's four reference servers in one process, on
 * BASE (random messages), BASE+100 (full), BASE+200 and BASE+300 (their TLS twins).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CertificateDir,
  clientArgs,
  displayLine,
  run,
  ServerProcess,
  startDisplays,
} from "./helpers/processes.ts";
import { bounded } from "../tools/harness/wait.ts";

/** Whether nothing listens on any of `ports` on 127.0.0.1 right now. */
function allFree(ports: number[]): boolean {
  const opened: Deno.Listener[] = [];
  try {
    for (const port of ports) opened.push(Deno.listen({ hostname: "127.0.0.1", port }));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return false;
    throw error;
  } finally {
    for (const listener of opened) listener.close();
  }
}

/**
 * Starts the reference servers on a random base port from 20000 to 30000 whose four ports
 * are free, trying another base if one was taken in between.
 */
async function startReference(
  certs: CertificateDir,
): Promise<{ server: ServerProcess; base: number }> {
  for (let attempt = 1;; attempt++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 97) + Math.floor(Math.random() * 100);
    if (!allFree([base, base + 100, base + 200, base + 300])) continue;
    try {
      const server = await ServerProcess.start(
        ["--reference", "--base-port", String(base), "--certs", certs.dir],
        { port: null },
      );
      return { server, base };
    } catch (error) {
      if (attempt >= 5 || !/already in use/.test(String(error))) throw error;
    }
  }
}

const RANDOM_LINE =
  /^(alice|bob|carol|dave|erin|frank|grace|heidi|ivan|judy) \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} .+ \(#\d+\)$/;

Deno.test(
  "--reference serves random messages on BASE and BASE+200, and one shared relay on BASE+100 and BASE+300",
  bounded(45_000, async () => {
    await using certs = await CertificateDir.create();
    const { server: started, base } = await startReference(certs);
    await using server = started;
    assert.deepEqual(
      server.endpoints.map(({ label, port, tls }) => ({ label, port, tls })),
      [
        { label: "random-message server", port: base, tls: false },
        { label: "random-message TLS server", port: base + 200, tls: true },
        { label: "full server", port: base + 100, tls: false },
        { label: "full TLS server", port: base + 300, tls: true },
      ],
    );
    const ca = certs.caFile;
    const displays = await startDisplays(server, [
      clientArgs(base),
      clientArgs(base + 200, { host: "localhost", ca }),
      clientArgs(base + 100),
      clientArgs(base + 300, { host: "localhost", ca }),
    ]);
    await using stack = new AsyncDisposableStack();
    for (const display of displays) stack.use(display);
    const [random, randomTls, full, fullTls] = displays;

    const keyboards = await Promise.all([
      run("main_keyboard.ts", [...clientArgs(base + 300, { ca }), "--user", "tls"], {
        input: "from the TLS port\n",
      }),
      run("main_keyboard.ts", [...clientArgs(base + 100), "--user", "plain"], {
        input: "from the plain port\n",
      }),
    ]);
    for (const keyboard of keyboards) assert.equal(keyboard.code, 0, keyboard.stderr);
    for (const display of [full, fullTls]) {
      await display.stdout.waitFor(displayLine("tls", "from the TLS port"));
      await display.stdout.waitFor(displayLine("plain", "from the plain port"));
    }
    await Promise.all([
      random.stdout.waitForCount(RANDOM_LINE, 2),
      randomTls.stdout.waitForCount(RANDOM_LINE, 2),
    ]);
    // By now a random message has been due twice: the full relay got none, and the random
    // relay none of the keyboards' lines.
    assert.equal(full.stdout.all.length, 2, full.stdout.text);
    assert.equal(fullTls.stdout.all.length, 2, fullTls.stdout.text);
    for (const display of [random, randomTls]) {
      for (const line of display.stdout.all) assert.match(line, RANDOM_LINE);
    }
  }),
);
