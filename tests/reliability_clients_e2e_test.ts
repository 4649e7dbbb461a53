/** The clients' answers to faults: a display whose stdout closes, and a server that vanishes (RELIABILITY.md). */

import { RawClient } from "./helpers/raw_client.ts";
import assert from "node:assert/strict";

import { sleep } from "../tools/soak/net.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { frame, plainOf, ROOT, startServer } from "./helpers/relay_client.ts";
import { bounded } from "../tools/harness/wait.ts";

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

Deno.test(
  "a display piped into a reader that goes away (head -n 1) exits 0, quietly",
  bounded(30_000, async () => {
    await using server = await startServer([]);
    const port = String(server.endpoints[0].port);
    const identified = server.log.next(/identified as display/, 10_000);
    const child = program("display", ["--port", port]);
    await child.stdin.close();
    await identified;
    await using keyboard = await RawClient.open(server, plainOf(server), "keyboard");
    await keyboard.send(frame("alice", "first"));
    assert.match(await lineMatching(child.stdout), /^alice 2024-01-02 03:04:05 first$/);
    // Our end of its stdout closes once the cancel has gone through the stream pipe, which may
    // take a moment: lines that come before are still taken. Send until a line meets the
    // closed pipe and the display leaves, for 10 s at most.
    let exited = false;
    const status = child.status.then((status) => {
      exited = true;
      return status;
    });
    for (let i = 0; !exited && i < 100; i++) {
      await keyboard.send(frame("alice", `more ${i}`));
      await Promise.race([status, sleep(100)]);
    }
    assert.ok(exited, "the display did not leave when its stdout closed");
    const { code } = await status;
    const stderr = await new Response(child.stderr).text();
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
  }),
);

Deno.test(
  "when the server vanishes, each client says so in one sentence; --reconnect comes back",
  bounded(30_000, async () => {
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
    const keyboardSeen = server.log.next(/identified as keyboard/, 10_000);
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
      await revived.log.next(/identified as display/, 15_000);
      await using keyboard = await RawClient.open(revived, { port, tls: false }, "keyboard");
      await keyboard.send(frame("carol", "welcome back"));
      await lineMatching(again.stdout, /^carol 2024-01-02 03:04:05 welcome back$/);
    } finally {
      again.kill("SIGTERM");
      await again.status;
      await said.cancel();
      await revived.stop();
    }
  }),
);
