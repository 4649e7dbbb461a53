/**
 * End to end with hostile or broken peers: each kind of malformed input gets its sender
 * dropped with one log line naming the peer and the reason, and the relay carries on
 * serving everyone else. Control characters never reach a display's terminal raw.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeIdentify } from "../lib/protocol/identify.ts";
import {
  CertificateDir,
  clientArgs,
  displayLine,
  type Program,
  run,
  ServerProcess,
  startDisplay,
} from "./helpers/processes.ts";
import { FIXED_TIME_TEXT, frameOf, RawClient, resetAfter } from "./helpers/raw_client.ts";
import { bounded } from "../tools/harness/wait.ts";

const MAX_FRAME = 4096;

/** An int32 in network byte order. */
function int32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value);
  return bytes;
}

/** A valid frame with the int32 at `offset` replaced by `value`. */
function frameWith(offset: number, value: number): Uint8Array {
  const frame = frameOf("Jason", "Hello World");
  new DataView(frame.buffer).setInt32(offset, value);
  return frame;
}

/** Offset of the month field in a frame from "Jason": length, ulen, username, year. */
const MONTH_OFFSET = 4 + 4 + 5 + 4;
/** Offset of tlen in a frame from "Jason": the six date fields follow the username. */
const TLEN_OFFSET = 4 + 4 + 5 + 24;

/**
 * Resolves with the one line that ended `peer`'s connection, after checking that it is
 * the only line about the peer besides its connect and identify.
 */
async function theEndOf(server: ServerProcess, peer: string, reason: RegExp): Promise<string> {
  const line = await server.log.waitFor(
    new RegExp(` ${peer.replaceAll(".", "\\.")} (dropped|disconnected) `),
  );
  assert.match(line, reason);
  const others = server.linesAbout(peer).filter((l) =>
    !/ connected( \(TLS\))?$| identified as /.test(l)
  );
  assert.deepEqual(others, [line], "one line ends the connection");
  return line;
}

/** A keyboard program's line still reaches the display that has been there all along. */
async function stillRelays(server: ServerProcess, display: Program, after: string): Promise<void> {
  const text = `still relaying after ${after}`;
  const keyboard = await run("main_keyboard.ts", [...clientArgs(server.port), "--user", "ok"], {
    input: `${text}\n`,
  });
  assert.equal(keyboard.code, 0, keyboard.stderr);
  await display.stdout.waitFor(displayLine("ok", text));
}

Deno.test(
  "each kind of malformed input drops its sender with one log line, and the relay carries on",
  bounded(90_000, async (t) => {
    await using server = await ServerProcess.start([
      "--identify-timeout",
      "0.5",
      "--frame-timeout",
      "0.5",
      "--max-frame",
      String(MAX_FRAME),
    ]);
    await using display = await startDisplay(server, clientArgs(server.port));

    /** A raw client sends `bytes`; the server drops it for `reason` and closes it. */
    const rejects = (name: string, bytes: Uint8Array, reason: RegExp) =>
      t.step(name, async () => {
        await using client = await RawClient.connect(server.port);
        await client.send(bytes);
        await theEndOf(server, client.peer, reason);
        await client.closedByServer();
        await stillRelays(server, display, name);
      });
    const keyboard = encodeIdentify("keyboard");
    const withKeyboard = (bytes: Uint8Array) => Uint8Array.from([...keyboard, ...bytes]);

    await rejects(
      "an unknown identify code",
      Uint8Array.of(0, 0, 0, 7),
      /dropped \(unidentified\): unknown identify code 00 00 00 07/,
    );
    await t.step("a TLS ClientHello on the plain port, with a hint in the log", async () => {
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: server.port });
      const local = conn.localAddr as Deno.NetAddr;
      try {
        await assert.rejects(conn.handshake());
      } finally {
        conn.close();
      }
      await theEndOf(
        server,
        `${local.hostname}:${local.port}`,
        /dropped \(unidentified\): unknown identify code 16 03 .*this port is plain TCP, use the TLS port/,
      );
      await stillRelays(server, display, "a TLS ClientHello");
    });
    await rejects(
      "a negative overall_length",
      withKeyboard(int32(-5)),
      /dropped \(keyboard\): .*overall_length is negative \(-5\)/,
    );
    await rejects(
      "an overall_length below the 32 fixed bytes",
      withKeyboard(int32(31)),
      /dropped \(keyboard\): .*overall_length 31 is less than the 32 bytes/,
    );
    // Only the four header bytes are sent: the server must not wait for the rest.
    await rejects(
      "an overall_length above --max-frame, as soon as its header arrives",
      withKeyboard(int32(MAX_FRAME + 1)),
      new RegExp(`dropped \\(keyboard\\): .*overall_length ${MAX_FRAME + 1} exceeds the maximum`),
    );
    await rejects(
      "lengths that do not add up",
      withKeyboard(frameWith(TLEN_OFFSET, 20)),
      /dropped \(keyboard\): .*overall_length says 48 but 32 \+ ulen 5 \+ tlen 20 = 57/,
    );
    await rejects(
      "a date field out of range",
      withKeyboard(frameWith(MONTH_OFFSET, 13)),
      /dropped \(keyboard\): .*month 13 is out of range 1-12/,
    );
    await rejects(
      "no identify code within --identify-timeout",
      new Uint8Array(0),
      /dropped \(unidentified\): no identify code within 0\.5 s/,
    );
    await rejects(
      "a frame left unfinished past --frame-timeout (slow loris)",
      withKeyboard(frameOf("Jason", "Hello World").subarray(0, 10)),
      /dropped \(keyboard\): frame not completed within 0\.5 s/,
    );
    await t.step("a connection reset in the middle of a frame", async () => {
      const peer = await resetAfter(
        server.port,
        withKeyboard(frameOf("Jason", "Hello World").subarray(0, 10)),
        (peer) =>
          server.log.waitFor(new RegExp(` ${peer.replaceAll(".", "\\.")} identified as keyboard`)),
      );
      await theEndOf(
        server,
        peer,
        /disconnected \(keyboard\): (connection reset by peer|closed by peer in the middle of a frame)$/,
      );
      await stillRelays(server, display, "a reset");
    });

    assert.equal(display.stdout.matching(/^ok /).length, 10);
    assert.equal(display.stdout.all.length, 10, "nothing malformed reached the display");
  }),
);

/** A server on a TLS port with a short handshake deadline, and a TLS display on it. */
async function tlsRelay(certs: CertificateDir) {
  const server = await ServerProcess.start([
    ...certs.serverArgs,
    "--handshake-timeout",
    "0.5",
    "--identify-timeout",
    "0.5",
  ]);
  const tls = clientArgs(server.port, { ca: certs.caFile });
  const display = await startDisplay(server, tls).catch(async (error) => {
    await server[Symbol.asyncDispose]();
    throw error;
  });
  const stillRelays = async (after: string) => {
    const text = `still relaying after ${after}`;
    const keyboard = await run("main_keyboard.ts", [...tls, "--user", "ok"], {
      input: `${text}\n`,
    });
    assert.equal(keyboard.code, 0, keyboard.stderr);
    await display.stdout.waitFor(displayLine("ok", text));
  };
  return { server, display, stillRelays };
}

Deno.test(
  "the TLS port drops clients that skip the handshake or the identify code, and still serves TLS",
  bounded(30_000, async (t) => {
    await using certs = await CertificateDir.create();
    const relay = await tlsRelay(certs);
    await using server = relay.server;
    await using _display = relay.display;

    await t.step("silence instead of a handshake", async () => {
      await using client = await RawClient.connect(server.port);
      await theEndOf(
        server,
        client.peer,
        /dropped \(unidentified\): no TLS handshake within 0\.5 s$/,
      );
      // That the socket itself closes is the next test's subject.
      await relay.stillRelays("a silent handshake");
    });
    await t.step("a plain identify code instead of a handshake", async () => {
      await using client = await RawClient.connect(server.port);
      await client.send(encodeIdentify("display"));
      await theEndOf(server, client.peer, /dropped \(unidentified\): TLS handshake failed: /);
      await client.closedByServer();
      await relay.stillRelays("a plain identify code");
    });
    await t.step("a handshake but no identify code", async () => {
      await using client = await RawClient.connect(server.port, { caCert: certs.caCert });
      await theEndOf(
        server,
        client.peer,
        /dropped \(unidentified\): no identify code within 0\.5 s$/,
      );
      await client.closedByServer();
      await relay.stillRelays("a silent TLS client");
    });
  }),
);

// Deno.listenTls cannot close a connection in mid-handshake, so the server's TLS listener
// (lib/net/tls_listener.ts) owns its sockets: this proves the socket really closes.
Deno.test({
  name: "a client silent through its TLS handshake is disconnected at --handshake-timeout",
  fn: bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    const relay = await tlsRelay(certs);
    await using _server = relay.server;
    await using _display = relay.display;
    await using client = await RawClient.connect(relay.server.port);
    await client.closedByServer(3_000);
  }),
});

Deno.test(
  "control characters in usernames and texts reach the display escaped, never raw",
  bounded(30_000, async () => {
    await using server = await ServerProcess.start([]);
    await using display = await startDisplay(server, clientArgs(server.port));
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    const nasty = "a\x1b[2Jb\x07c\rd\x9be\u202ef\x00g\x7fh";
    await keyboard.send(frameOf(`ev\x1bil${nasty}`, nasty));
    await keyboard.send(frameOf("next", "line"));
    const [line] = await display.stdout.waitForCount(/ /, 1);
    await display.stdout.waitFor(/^next /);
    const escaped = "a\\x1b[2Jb\\x07c\\x0dd\\x9be\\u202ef\\x00g\\x7fh";
    assert.equal(line, `ev\\x1bil${escaped} ${FIXED_TIME_TEXT} ${escaped}`);
    const controls = [...display.stdout.bytes].filter((b) =>
      (b < 0x20 && b !== 0x0a) || b === 0x7f
    );
    assert.deepEqual(controls, [], "no raw C0 control byte or DEL on stdout");
    assert.doesNotMatch(display.stdout.text, /[\x80-\x9f\u202a-\u202e\u2066-\u2069]/);
  }),
);
