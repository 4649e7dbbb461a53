import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { type CertificateSet, generateCertificates } from "../tools/certificates.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Generous for a loopback handshake or one `deno run`; only a hang should ever hit it. */
const TIME_LIMIT_MS = 20_000;

/** Fail instead of hanging, and leave no timer behind for the sanitizers. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A TLS listener that completes the handshake with each client and sends it one
 * byte, so a client knows the whole exchange worked. Handshake failures on the
 * server side are expected in the negative tests and only end that connection.
 */
class TlsServer {
  readonly #listener: Deno.TlsListener;
  readonly #handlers = new Set<Promise<void>>();
  readonly #loop: Promise<void>;

  constructor(certs: CertificateSet, hostname: string) {
    this.#listener = Deno.listenTls({
      hostname,
      port: 0,
      cert: certs.serverCert,
      key: certs.serverKey,
    });
    this.#loop = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      const handler = this.#serve(conn);
      this.#handlers.add(handler);
      handler.finally(() => this.#handlers.delete(handler));
    }
  }

  async #serve(conn: Deno.TlsConn): Promise<void> {
    try {
      await conn.handshake();
      await conn.write(Uint8Array.of(42));
    } catch {
      // The client rejected our certificate: exactly what some tests want.
    } finally {
      conn.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#loop.catch(() => {});
    await Promise.all(this.#handlers);
  }
}

/** Finish the handshake and read the server's byte, closing the connection either way. */
async function exchange(conn: Deno.TlsConn): Promise<number> {
  try {
    await conn.handshake();
    const buffer = new Uint8Array(1);
    const n = await conn.read(buffer);
    assert.equal(n, 1);
    return buffer[0];
  } finally {
    conn.close();
  }
}

/**
 * TLS over a plain TCP connection to 127.0.0.1, verifying the certificate
 * against `serverName`. This checks any name in the certificate, DNS or IP,
 * without needing it to resolve or IPv6 to be configured.
 */
async function exchangeAs(port: number, serverName: string, caCert: string): Promise<number> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  let tls: Deno.TlsConn;
  try {
    tls = await Deno.startTls(tcp, { hostname: serverName, caCerts: [caCert] });
  } catch (error) {
    tcp.close();
    throw error;
  }
  return await exchange(tls);
}

async function assertRejectedCertificate(work: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof Deno.errors.InvalidData, `unexpected ${error}`);
    assert.match(error.message, reason);
    return true;
  });
}

function parse(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

/** The certificate's DER bytes, to find an extension's exact encoding in. */
function der(pem: string): Uint8Array {
  const base64 = pem.replace(/-----[A-Z ]+-----|\s/g, "");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Whether `bytes` occur in `haystack`. */
function contains(haystack: Uint8Array, bytes: number[]): boolean {
  outer: for (let i = 0; i + bytes.length <= haystack.length; i++) {
    for (let j = 0; j < bytes.length; j++) if (haystack[i + j] !== bytes[j]) continue outer;
    return true;
  }
  return false;
}

/** The extensions' exact DER: OID, critical flag, value. */
const EXTENSION = {
  caBasicConstraints: [
    0x30,
    0x0f,
    0x06,
    0x03,
    0x55,
    0x1d,
    0x13,
    0x01,
    0x01,
    0xff,
    0x04,
    0x05,
    0x30,
    0x03,
    0x01,
    0x01,
    0xff,
  ],
  leafBasicConstraints: [
    0x30,
    0x0c,
    0x06,
    0x03,
    0x55,
    0x1d,
    0x13,
    0x01,
    0x01,
    0xff,
    0x04,
    0x02,
    0x30,
    0x00,
  ],
  caKeyUsage: [
    0x30,
    0x0e,
    0x06,
    0x03,
    0x55,
    0x1d,
    0x0f,
    0x01,
    0x01,
    0xff,
    0x04,
    0x04,
    0x03,
    0x02,
    0x01,
    0x06,
  ],
  leafKeyUsage: [
    0x30,
    0x0e,
    0x06,
    0x03,
    0x55,
    0x1d,
    0x0f,
    0x01,
    0x01,
    0xff,
    0x04,
    0x04,
    0x03,
    0x02,
    0x05,
    0xa0,
  ],
  serverAuth: [
    0x30,
    0x13,
    0x06,
    0x03,
    0x55,
    0x1d,
    0x25,
    0x04,
    0x0c,
    0x30,
    0x0a,
    0x06,
    0x08,
    0x2b,
    0x06,
    0x01,
    0x05,
    0x05,
    0x07,
    0x03,
    0x01,
  ],
};

Deno.test("generateCertificates() output serves TLS to clients of localhost and 127.0.0.1", {
  permissions: { net: ["127.0.0.1", "localhost"] },
}, async () => {
  const certs = await generateCertificates();
  await within(
    TIME_LIMIT_MS,
    "the handshakes",
    (async () => {
      {
        await using server = new TlsServer(certs, "127.0.0.1");
        const byIp = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: server.port,
          caCerts: [certs.caCert],
        });
        assert.equal(await exchange(byIp), 42);
      }
      {
        // "localhost" may resolve to ::1 first on a machine with IPv6, so the
        // listener resolves the same name the client does.
        await using server = new TlsServer(certs, "localhost");
        const byName = await Deno.connectTls({
          hostname: "localhost",
          port: server.port,
          caCerts: [certs.caCert],
        });
        assert.equal(await exchange(byName), 42);
      }
    })(),
  );
});

Deno.test("a client without the root CA rejects the server certificate as unknown", {
  permissions: { net: ["127.0.0.1", "localhost"] },
}, async () => {
  const certs = await generateCertificates();
  await within(
    TIME_LIMIT_MS,
    "the refused handshake",
    (async () => {
      await using server = new TlsServer(certs, "127.0.0.1");
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: server.port });
      await assertRejectedCertificate(exchange(conn), /UnknownIssuer/);
    })(),
  );
});

// Every throwaway CA carries the same subject, so rustls matches the stranger
// as the issuer by name and then finds the signature wrong.
Deno.test("a client trusting another throwaway root CA rejects the server certificate", {
  permissions: { net: ["127.0.0.1", "localhost"] },
}, async () => {
  const [certs, stranger] = await Promise.all([generateCertificates(), generateCertificates()]);
  await within(
    TIME_LIMIT_MS,
    "the refused handshake",
    (async () => {
      await using server = new TlsServer(certs, "127.0.0.1");
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [stranger.caCert],
      });
      await assertRejectedCertificate(exchange(conn), /UnknownIssuer|BadSignature/);
    })(),
  );
});

Deno.test("the server certificate verifies for ::1, extra names and extra IPs, and no other name", {
  permissions: { net: ["127.0.0.1", "localhost"] },
}, async () => {
  const certs = await generateCertificates({ names: ["example.test", "10.0.0.5", "[fe80::1]"] });
  await within(
    TIME_LIMIT_MS,
    "the handshakes",
    (async () => {
      await using server = new TlsServer(certs, "127.0.0.1");
      for (const name of ["localhost", "127.0.0.1", "::1", "example.test", "10.0.0.5", "fe80::1"]) {
        assert.equal(await exchangeAs(server.port, name, certs.caCert), 42, name);
      }
      await assertRejectedCertificate(
        exchangeAs(server.port, "other.test", certs.caCert),
        /not ?valid ?for ?name/i,
      );
    })(),
  );
});

Deno.test("generateCertificates() lists the default and extra names as subjectAltNames", {
  permissions: "none",
}, async () => {
  const certs = await generateCertificates({
    names: ["Example.Test", "10.0.0.5", "[fe80::1]", "localhost", "::ffff:10.0.0.1"],
  });
  assert.equal(
    parse(certs.serverCert).subjectAltName,
    "DNS:localhost, IP Address:127.0.0.1, IP Address:::1, DNS:example.test, " +
      "IP Address:10.0.0.5, IP Address:fe80::1, IP Address:::ffff:10.0.0.1",
  );
});

Deno.test("the root CA is a self-signed CA that may only sign certificates and CRLs", {
  permissions: "none",
}, async () => {
  const certs = await generateCertificates();
  const ca = parse(certs.caCert);
  assert.equal(ca.subject, "CN=wirechat throwaway root CA");
  assert.equal(ca.issuer, ca.subject);
  assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey));
  assert.equal(ca.ca, true);
  assert.deepEqual(ca.keyUsage, ["KeyCertSign", "CRLSign"]);
  assert.ok(contains(der(certs.caCert), EXTENSION.caBasicConstraints), "critical CA:true");
  assert.ok(contains(der(certs.caCert), EXTENSION.caKeyUsage), "critical key usage");
  assert.match(certs.caKey, /^-----BEGIN PRIVATE KEY-----\n[^]+\n-----END PRIVATE KEY-----\n$/);
});

Deno.test("the server certificate is a CA-signed serverAuth leaf valid from an hour ago", {
  permissions: "none",
}, async () => {
  const before = Date.now();
  const certs = await generateCertificates({ days: 30 });
  const ca = parse(certs.caCert);
  const server = parse(certs.serverCert);
  assert.equal(server.subject, "CN=localhost");
  assert.equal(server.issuer, ca.subject);
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
  assert.equal(server.ca, false);
  assert.deepEqual(server.keyUsage, ["DigitalSignature", "KeyEncipherment"]);
  const bytes = der(certs.serverCert);
  assert.ok(contains(bytes, EXTENSION.leafBasicConstraints), "critical CA:false");
  assert.ok(contains(bytes, EXTENSION.leafKeyUsage), "critical key usage");
  assert.ok(contains(bytes, EXTENSION.serverAuth), "serverAuth");
  const hour = 60 * 60 * 1000;
  const slack = 60 * 1000;
  assert.ok(Math.abs(Date.parse(server.validFrom) - (before - hour)) < slack);
  assert.ok(Math.abs(Date.parse(server.validTo) - (before + 30 * 24 * hour)) < slack);
  assert.equal(server.publicKey.asymmetricKeyType, "ec");
  assert.match(certs.serverKey, /^-----BEGIN PRIVATE KEY-----\n/);
});

Deno.test("generateCertificates() gives every certificate a fresh positive serial number", {
  permissions: "none",
}, async () => {
  const sets = await Promise.all([generateCertificates(), generateCertificates()]);
  const serials = sets.flatMap((set) => [parse(set.caCert), parse(set.serverCert)])
    .map((cert) => cert.serialNumber);
  assert.equal(new Set(serials).size, serials.length);
  for (const serial of serials) {
    // Hex of a DER INTEGER: a top bit set would make it negative.
    assert.match(serial, /^[0-7][0-9A-F]{31}$/);
  }
});

Deno.test("generateCertificates() rejects bad names and day counts", {
  permissions: "none",
}, async () => {
  for (const name of ["", "bad name", "-leading.test", "a..b", "::g", "[fe80::1"]) {
    await assert.rejects(generateCertificates({ names: [name] }), TypeError, name);
  }
  for (const days of [0, -1, 1.5, Number.NaN, 36_501]) {
    await assert.rejects(generateCertificates({ days }), RangeError, String(days));
  }
});

/** Run the CLI as `deno task certs` does, with the same permission flags. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIME_LIMIT_MS);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-write", "tools/certs.ts", ...args],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      signal: controller.signal,
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("the certs tool writes the four files, keys readable by their owner only", {
  permissions: { run: true, read: true, write: true },
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirechat_certs_test_" });
  try {
    const out = join(dir, "nested", "certs");
    const result = await runCli(["--out", out, "--name", "example.test", "--days", "7"]);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const files = ["root_ca.crt", "root_ca.key", "server.crt", "server.key"];
    const lines = result.stdout.trimEnd().split("\n");
    assert.deepEqual(lines.slice(0, 4), files.map((file) => `wrote ${join(out, file)}`));
    assert.match(lines[4], /--cert .*server\.crt --key .*server\.key.*--tls --ca .*root_ca\.crt/);

    const server = parse(await Deno.readTextFile(join(out, "server.crt")));
    assert.match(server.subjectAltName ?? "", /\bDNS:example\.test\b/);
    const ca = parse(await Deno.readTextFile(join(out, "root_ca.crt")));
    assert.ok(server.verify(ca.publicKey));
    for (const key of ["root_ca.key", "server.key"]) {
      assert.match(await Deno.readTextFile(join(out, key)), /^-----BEGIN PRIVATE KEY-----/);
      if (Deno.build.os !== "windows") {
        assert.equal((await Deno.stat(join(out, key))).mode! & 0o777, 0o600, key);
      }
    }
    if (Deno.build.os !== "windows") {
      // Certificates are public: readable by all (less whatever the umask takes away).
      assert.equal((await Deno.stat(join(out, "server.crt"))).mode! & 0o400, 0o400);
      assert.notEqual((await Deno.stat(join(out, "server.crt"))).mode! & 0o077, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the certs tool narrows an existing world-readable key file to its owner", {
  permissions: { run: true, read: true, write: true },
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirechat_certs_test_" });
  try {
    await Deno.writeTextFile(join(dir, "server.key"), "old", { mode: 0o644 });
    await Deno.chmod(join(dir, "server.key"), 0o644);
    const result = await runCli(["--out", dir, "--force"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await Deno.stat(join(dir, "server.key"))).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the certs tool refuses to replace a set without --force, and writes nothing", {
  permissions: { run: true, read: true, write: true },
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirechat_certs_test_" });
  try {
    await Deno.writeTextFile(join(dir, "server.crt"), "handed out already");
    const refused = await runCli(["--out", dir]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, "");
    assert.match(
      refused.stderr,
      /^\S*server\.crt already exists: nothing was written\. Use --force to replace the set, or --out DIR for another place\.\n$/,
    );
    assert.equal(await Deno.readTextFile(join(dir, "server.crt")), "handed out already");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["server.crt"]);
    const forced = await runCli(["--out", dir, "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(await Deno.readTextFile(join(dir, "server.crt")), /^-----BEGIN CERTIFICATE-----/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the certs tool reports a bad option as one sentence and exits non-zero", {
  permissions: { run: true, read: true },
}, async () => {
  for (const args of [["--bogus"], ["--days", "soon"], ["--name", "bad name"], ["stray"]]) {
    const result = await runCli(args);
    assert.notEqual(result.code, 0, args.join(" "));
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^[^\n]+\.\n$/, args.join(" "));
    assert.doesNotMatch(result.stderr, /\bat /);
  }
});
