/**
 * The web listener and its WebSocket gateway without a browser: Deno's own WebSocket client
 * and raw TCP against a real server process started with --web.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CertificateDir, ServerProcess } from "./helpers/processes.ts";
import { frameOf, RawClient } from "./helpers/raw_client.ts";
import { message, WebClient } from "./helpers/web_client.ts";
import { bounded } from "../tools/harness/wait.ts";
import { writeAll } from "../lib/net/wire_io.ts";
import { concatBytes } from "../lib/protocol/bytes.ts";
import { MESSAGE_LIMIT } from "../lib/server/web/gateway.ts";
import { generateCertificates } from "../tools/certificates.ts";

/** A server with a web listener; its TCP port is `server.port`, its web port the second. */
async function webServer(args: string[] = []): Promise<ServerProcess> {
  return await ServerProcess.start(["--web", "127.0.0.1:0", ...args], { listeners: 2 });
}

const webPort = (server: ServerProcess) => server.portOf("web chat");
const wsUrl = (server: ServerProcess) => `ws://127.0.0.1:${webPort(server)}/ws`;

Deno.test(
  "the page is served with a strict CSP and nosniff; no other path, method or body is",
  bounded(30_000, async () => {
    await using server = await webServer();
    const base = `http://127.0.0.1:${webPort(server)}`;
    const page = await fetch(`${base}/`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /<script type="module" src="\/app.js"><\/script>/);
    assert.doesNotMatch(html, /<script>|\sstyle=|\son\w+=/, "no inline script, style or handler");
    assert.match(page.headers.get("content-security-policy")!, /default-src 'self'/);
    assert.doesNotMatch(page.headers.get("content-security-policy")!, /unsafe/);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    for (const path of ["/app.js", "/style.css", "/icon.svg"]) {
      const response = await fetch(`${base}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, 200, path);
    }
    // Raw requests, so that no client library normalises the path first.
    for (
      const target of ["/../deno.json", "/%2e%2e/deno.json", "/web/", "/app.ts", "//etc/passwd"]
    ) {
      assert.match(await rawRequest(webPort(server), `GET ${target} HTTP/1.1`), /^HTTP\/1.1 404/);
    }
    const post = await fetch(`${base}/`, { method: "POST", body: "x" });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    const long = await fetch(`${base}/${"a".repeat(3000)}`);
    await long.body?.cancel();
    assert.equal(long.status, 414);
  }),
);

/** Sends one request line (and a Host) on a fresh connection; returns the response's head. */
async function rawRequest(port: number, line: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(
      conn,
      new TextEncoder().encode(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

Deno.test(
  "a WebSocket from another Origin is refused with a log line; one allowed by --web-origin is not",
  bounded(30_000, async () => {
    await using server = await webServer(["--web-origin", "http://chat.example"]);
    const refused = new WebClient(wsUrl(server), { headers: { origin: "http://evil.example" } });
    await assert.rejects(refused.opened);
    await refused.untilClosed();
    await server.log.waitFor(/refused: Origin "http:\/\/evil.example" is not allowed$/);
    await using allowed = new WebClient(wsUrl(server), {
      headers: { origin: "http://chat.example" },
    });
    await allowed.opened;
    const own = new WebClient(wsUrl(server), {
      headers: { origin: `http://127.0.0.1:${webPort(server)}` },
    });
    await own.opened;
    await own[Symbol.asyncDispose]();
  }),
);

Deno.test(
  "browsers and terminal clients share one numbered order; a browser that resumes gets what it missed, once",
  bounded(30_000, async () => {
    await using server = await webServer();
    await using display = await RawClient.open(
      server,
      { port: server.port, tls: false },
      "display",
    );
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    const first = await WebClient.open(wsUrl(server));
    await using second = await WebClient.open(wsUrl(server));
    await server.log.waitForCount(/ identified as browser$/, 2);
    first.send(message("web", "one"));
    await keyboard.send(frameOf("tty", "two"));
    await first.until(() => first.records.length === 2, "two records");
    const resume = first.resumePoint;
    await first[Symbol.asyncDispose]();
    await server.log.waitFor(/disconnected \(browser\): closed by peer$/);
    await keyboard.send(concatBytes([frameOf("tty", "three"), frameOf("tty", "four")]));
    second.send(message("web2", "five"));
    await second.until(() => second.records.length === 5, "five records");
    await display.waitForMessages(5);
    const order = display.messages.map((m) => m.text);
    assert.deepEqual(second.texts, order);
    assert.deepEqual(second.records.map((r) => r.seq), [1, 2, 3, 4, 5]);
    await using back = await WebClient.open(wsUrl(server), resume);
    await back.until(() => back.records.length === 3, "the three missed records");
    assert.deepEqual(back.texts, order.slice(2));
    assert.deepEqual(back.records.map((r) => r.seq), [3, 4, 5]);
    assert.equal(back.recordsBeforeWelcome, 0, "the welcome comes before the missed records");
    await server.log.waitFor(/identified as browser \(resuming after 2 of epoch \w+\)$/);
    // A fresh browser without history gets nothing old.
    await using fresh = await WebClient.open(wsUrl(server));
    assert.equal(fresh.welcome!.seq, 5);
    assert.equal(fresh.records.length, 0);
  }),
);

Deno.test(
  "a keyboard's burst reaches a browser whole and in order, several records a message, none over the limit",
  bounded(30_000, async () => {
    await using server = await webServer(["--keyboard-rate", "0"]);
    await using browser = await WebClient.open(wsUrl(server));
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    const count = 3000;
    const texts = Array.from({ length: count }, (_, i) => `burst ${i}`);
    // About 170 KB in one write: more than one message may hold.
    await keyboard.send(concatBytes(texts.map((text) => frameOf("tty", text))));
    await browser.until(() => browser.records.length === count, `${count} records`);
    assert.deepEqual(browser.texts, texts);
    assert.deepEqual(browser.records.map((r) => r.seq), texts.map((_, i) => i + 1));
    assert.ok(browser.messageSizes.length < count / 10, `${browser.messageSizes.length} messages`);
    assert.ok(Math.max(...browser.messageSizes) <= MESSAGE_LIMIT, `${browser.messageSizes}`);
  }),
);

Deno.test(
  "a browser that resumes after 6 MB of messages gets the newest 4 MiB of them, the gap shown in its welcome",
  bounded(30_000, async () => {
    await using server = await webServer(["--keyboard-rate", "0"]);
    await using watcher = await WebClient.open(wsUrl(server));
    const epoch = watcher.welcome!.epoch;
    await using keyboard = await RawClient.identified(server, server.port, "keyboard");
    const big = (i: number) => `${i} `.padEnd(60_000, "x");
    for (let i = 1; i <= 100; i++) await keyboard.send(frameOf("tty", big(i)));
    await watcher.until(() => watcher.records.length === 100, "100 records");
    await using back = await WebClient.open(wsUrl(server), { epoch, seq: 0, tail: "0".repeat(16) });
    await back.until(() => back.records.at(-1)?.seq === 100, "the newest record");
    const seqs = back.records.map((r) => r.seq);
    const kept = seqs.length;
    assert.ok(kept > 60 && kept < 71, `${kept} records kept: about 4 MiB of 60 KB`);
    assert.deepEqual(seqs, Array.from({ length: kept }, (_, i) => 101 - kept + i));
    assert.equal(back.welcome!.seq, 100 - kept, "the welcome says where the kept ones start");
    assert.equal(back.recordsBeforeWelcome, 0);
    assert.equal(back.texts.at(-1), big(100));
  }),
);

Deno.test(
  "a WebSocket message larger than a frame may be drops that browser; the others carry on",
  bounded(30_000, async () => {
    await using server = await webServer(["--max-frame", "200"]);
    await using big = await WebClient.open(wsUrl(server));
    await using other = await WebClient.open(wsUrl(server));
    big.socket.send(new Uint8Array(205));
    const closed = await big.untilClosed();
    assert.equal(closed.code, 1008);
    await server.log.waitFor(
      /dropped \(browser\): WebSocket message of 205 bytes, larger than a frame may be \(204\)$/,
    );
    // A broken frame that fits is dropped by the same rules as a keyboard's.
    await using broken = await WebClient.open(wsUrl(server));
    broken.socket.send(Uint8Array.of(0, 0, 0, 2));
    await broken.untilClosed();
    await server.log.waitFor(/dropped \(browser\): .*overall_length/);
    other.send(message("still", "here"));
    await other.until(() => other.texts.includes("here"), "its own message back");
  }),
);

Deno.test(
  "a browser that never reads is evicted for its backlog while the others carry on",
  bounded(45_000, async () => {
    await using server = await webServer(["--max-backlog", "65536", "--soft-backlog", "16384"]);
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: webPort(server) });
    try {
      // The opening handshake and a masked hello by hand; after that, nothing is read.
      await writeAll(
        stalled,
        new TextEncoder().encode(
          "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
      );
      await writeAll(stalled, maskedText('{"type":"hello"}'));
      await server.log.waitFor(/ identified as browser$/);
      await using reader = await WebClient.open(wsUrl(server));
      await using keyboard = await RawClient.identified(server, server.port, "keyboard");
      const text = "x".repeat(1000);
      let sent = 0;
      while (server.log.matching(/dropped \(browser\): too slow/).length === 0) {
        await keyboard.send(concatBytes(Array.from({ length: 50 }, () => frameOf("k", text))));
        sent += 50;
        await reader.until(() => reader.records.length === sent, `${sent} records`);
        if (sent > 20_000) throw new Error("the stalled browser was never dropped");
      }
      assert.equal(reader.closed, undefined, "the reading browser is still connected");
      await keyboard.send(frameOf("k", "after"));
      await reader.until(() => reader.texts.at(-1) === "after", "the message after the drop");
    } finally {
      stalled.close();
    }
  }),
);

/** A client's masked text frame (RFC 6455 §5.3), mask all zeros. */
function maskedText(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  return Uint8Array.of(0x81, 0x80 | payload.length, 0, 0, 0, 0, ...payload);
}

Deno.test(
  "a browser over --keyboard-rate is paused, and dropped when it goes on sending",
  bounded(30_000, async () => {
    await using server = await webServer(["--keyboard-rate", "10", "--keyboard-burst", "5"]);
    await using flooder = await WebClient.open(wsUrl(server));
    await using other = await WebClient.open(wsUrl(server));
    const text = "f".repeat(1000);
    for (let i = 0; i < 400 && !flooder.closed; i++) flooder.send(message("flood", text));
    await flooder.untilClosed();
    await server.log.waitFor(/dropped \(browser\): flooding: \d+ bytes sent while paused/);
    // The burst went out before the pause; nothing near all 400.
    assert.ok(other.records.length >= 5 && other.records.length < 50, `${other.records.length}`);
    other.send(message("calm", "fine"));
    await other.until(() => other.texts.includes("fine"), "a calm browser's message");
  }),
);

Deno.test(
  "browsers count in --max-connections with the TCP clients; a silent one is dropped after --identify-timeout",
  bounded(30_000, async () => {
    await using server = await webServer(["--max-connections", "2", "--identify-timeout", "1"]);
    await using _display = await RawClient.open(
      server,
      { port: server.port, tls: false },
      "display",
    );
    const silent = new WebClient(wsUrl(server));
    await silent.opened;
    const third = new WebClient(wsUrl(server));
    await third.opened.catch(() => {});
    const refused = await third.untilClosed();
    assert.equal(refused.code, 1013);
    await server.log.waitFor(/refused: connection limit 2 reached$/);
    await silent.untilClosed();
    await server.log.waitFor(/dropped \(unidentified\): no hello within 1 s$/);
    // Its place is free again.
    await using next = await WebClient.open(wsUrl(server));
    assert.ok(next.welcome);
  }),
);

Deno.test(
  "a reload with a key that is not the certificate's keeps the page served with the old pair",
  { ignore: Deno.build.os === "windows" },
  bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await webServer(certs.serverArgs);
    const refused = server.log.next(/web chat: certificate not reloaded, keeping the old one/);
    await certs.install(await generateCertificates(), "cert");
    server.kill("SIGHUP");
    await refused;
    using client = Deno.createHttpClient({ caCerts: [certs.caCert] });
    const page = await fetch(`https://localhost:${webPort(server)}/`, { client });
    assert.equal(page.status, 200, "the old pair no longer serves the page");
    await page.body?.cancel();
  }),
);

Deno.test(
  "with a certificate the page is served over HTTPS with it, and plain HTTP is not answered",
  bounded(30_000, async () => {
    await using certs = await CertificateDir.create();
    await using server = await webServer(certs.serverArgs);
    assert.equal(server.endpoints.find((e) => e.label === "web chat")?.tls, true);
    using client = Deno.createHttpClient({ caCerts: [certs.caCert] });
    const page = await fetch(`https://localhost:${webPort(server)}/`, { client });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /wirechat/);
    await assert.rejects(fetch(`http://127.0.0.1:${webPort(server)}/`).then((r) => r.text()));
  }),
);
