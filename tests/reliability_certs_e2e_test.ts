/** Certificate reload against the real server: SIGHUP and --reload-certs change the certificate for new connections while open ones carry on, and a bad pair keeps the old one (RELIABILITY.md). */

import { RawClient } from "./helpers/raw_client.ts";
import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";
import { generateCertificates } from "../tools/certificates.ts";

import { closeQuietly, dial, sleep } from "../tools/soak/net.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { frame, startServer } from "./helpers/relay_client.ts";

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
  await using display = await RawClient.open(server, target, "display");
  await using keyboard = await RawClient.open(server, target, "keyboard");
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
      const reloaded = server.log.next(/certificate reloaded/, 5000);
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
    const reloaded = server.log.next(/certificate reloaded/, 5000);
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
      const refused = server.log.next(/certificate not reloaded, keeping the old one/, 5000);
      await certs.install(await generateCertificates(), "cert");
      server.kill("SIGHUP");
      await refused;
      assert.ok(await trusts(port, certs.caCert), "the old certificate is no longer served");
    }),
});
