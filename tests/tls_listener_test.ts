/**
 * Native sockets (lib/net/native_socket.ts) and the server's TLS listener (lib/net/tls_listener.ts) in
 * process, the listener on both of its paths: the native node:net socket this Deno allows (the
 * fast one), and the Node stream over a `Deno.TcpConn` it falls back to. Real sockets on
 * 127.0.0.1 and real certificates throughout.
 */

import assert from "node:assert/strict";
import { generateCertificates } from "../tools/certificates.ts";
import { TlsError } from "../lib/net/io_errors.ts";
import {
  checkNativeSockets,
  NativeConn,
  NativeSocket,
  type NodeError,
  tlsError,
} from "../lib/net/native_socket.ts";
import { NodeTlsListener } from "../lib/net/tls_listener.ts";
import { bounded, within } from "../tools/harness/wait.ts";
import { Child, Program, programCommand } from "../tools/harness/program.ts";

const HOST = "127.0.0.1";

async function readAll(conn: Pick<Deno.Conn, "read">, bytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(bytes);
  let have = 0;
  while (have < bytes) {
    const n = await conn.read(out.subarray(have));
    if (n === null) throw new Error(`the stream ended after ${have} of ${bytes} bytes`);
    have += n;
  }
  return out;
}

async function writeAll(conn: Pick<Deno.Conn, "write">, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function payload(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
}

Deno.test(
  "this Deno lets a connection move onto a native socket (the fast path for displays and TLS)",
  bounded(10_000, async () => {
    using listener = Deno.listen({ hostname: HOST, port: 0 });
    const client = await Deno.connect({ hostname: HOST, port: listener.addr.port });
    const tcp = await listener.accept();
    const native = NativeSocket.adopt(tcp);
    assert.ok(native, "NativeSocket.adopt found no way in: every socket would be the slow kind");
    try {
      const received = new Promise<Uint8Array>((resolve) => native.socket.once("data", resolve));
      await writeAll(client, Uint8Array.of(1, 2, 3));
      assert.deepEqual([...await within(5000, "bytes on the native socket", received)], [1, 2, 3]);
      native.socket.end(Uint8Array.of(4, 5));
      assert.deepEqual([...await readAll(client, 2)], [4, 5]);
      assert.equal(await client.read(new Uint8Array(1)), null, "no end of stream after end()");
    } finally {
      native.close();
      client.close();
    }
  }),
);

Deno.test(
  "the server's start-up self-test finds native sockets working in this Deno",
  bounded(10_000, async () => {
    assert.equal(await checkNativeSockets(), undefined);
  }),
);

Deno.test(
  "a native display connection writes on its handle: chunks in order, whole, as one writev or one write each",
  bounded(20_000, async () => {
    using listener = Deno.listen({ hostname: HOST, port: 0 });
    const client = await Deno.connect({ hostname: HOST, port: listener.addr.port });
    const conn = NativeConn.adopt(await listener.accept());
    assert.ok(conn, "no native socket");
    try {
      assert.ok(conn.writev, "this Deno's handle has no direct writes: displays copy every join");
      // Large enough that the kernel cannot take them at once: the handle queues the rest.
      const chunks = [payload(3 << 20, 1), payload(75, 2), payload(1 << 20, 3)];
      const small = payload(300, 4);
      const total = chunks.reduce((n, c) => n + c.length, 0) + small.length;
      const reading = readAll(client, total);
      assert.equal(await conn.writev(chunks), total - small.length);
      assert.equal(await conn.write(small), small.length);
      const got = await within(15_000, "every byte at the client", reading);
      let at = 0;
      for (const chunk of [...chunks, small]) {
        assert.ok(got.subarray(at, at + chunk.length).every((b, i) => b === chunk[i]));
        at += chunk.length;
      }
    } finally {
      conn.close();
      client.close();
    }
  }),
);

Deno.test(
  "a direct write to a peer that has gone fails with a Deno error class, not a raw Node error",
  bounded(10_000, async () => {
    using listener = Deno.listen({ hostname: HOST, port: 0 });
    const client = await Deno.connect({ hostname: HOST, port: listener.addr.port });
    const conn = NativeConn.adopt(await listener.accept());
    assert.ok(conn?.writev, "no native socket with direct writes");
    try {
      client.close();
      let error: unknown;
      // The first writes may still be taken by the kernel; the reset follows within a few.
      for (let i = 0; i < 200 && error === undefined; i++) {
        await conn.writev([payload(1000, i), payload(1000, i + 1)]).catch((e) => error = e);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(
        error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset ||
          error instanceof Deno.errors.BadResource,
        `not a Deno error class: ${error}`,
      );
    } finally {
      conn.close();
    }
  }),
);

// Canary: the reason lib/net/tls_listener.ts exists. When this fails, Deno closes a TlsConn in
// mid-handshake at once, and the server could go back to Deno.listenTls. The sanitizers are
// off because the leak is what it shows: Deno keeps the socket in a task of its own.
Deno.test({
  name: "canary: Deno.TlsConn.close() in mid-handshake still leaves the socket open",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: bounded(10_000, async () => {
    const certs = await generateCertificates();
    const listener = Deno.listenTls({
      hostname: HOST,
      port: 0,
      cert: certs.serverCert,
      key: certs.serverKey,
    });
    const client = await Deno.connect({ hostname: HOST, port: listener.addr.port });
    try {
      const server = await listener.accept();
      server.close();
      const read = client.read(new Uint8Array(64)).catch(() => null);
      const outcome = await Promise.race([
        read.then(() => "closed"),
        new Promise((resolve) => setTimeout(() => resolve("open"), 1000)),
      ]);
      assert.equal(outcome, "open", "Deno now closes a handshaking TlsConn: see tls_listener.ts");
    } finally {
      client.close();
      listener.close();
    }
  }),
});

Deno.test({
  name: "canary: node:net's server still does not survive running out of descriptors",
  ignore: Deno.build.os !== "linux",
  fn: bounded(20_000, async () => {
    // Why the relay accepts with Deno.listen (tls_listener.ts, native_socket.ts). The server
    // runs in its own process under a low limit: in this one, running out would hurt the test.
    await using server = new Child("node:net server", [
      "prlimit",
      "--nofile=40:40",
      ...programCommand("tests/fixtures/node_net_accept.ts", [], { permissions: ["--allow-net"] }),
    ]);
    const port = Number((await server.stdout.waitFor(/^port \d+$/)).split(" ")[1]);
    const conns: Deno.Conn[] = [];
    try {
      // More connections than it has descriptors for: it accepts what it can, then hits EMFILE
      // (or dies of it, and the connections after are refused). Held until it has gone quiet.
      for (let i = 0; i < 60; i++) {
        const conn = await Deno.connect({ hostname: HOST, port }).catch(() => undefined);
        if (!conn) break;
        conns.push(conn);
      }
      await server.stdout.waitFor(/^accepted \d+$/);
      while (!server.exited) {
        const more = await server.stdout.next(/^accepted \d+$/, 1_500).then(
          () => true,
          () => false,
        );
        if (!more) break;
      }
      const accepted = server.stdout.matching(/^accepted \d+$/).length;
      assert.ok(accepted < conns.length, `it accepted all ${accepted}: the limit did not bite`);
    } finally {
      for (const conn of conns) conn.close();
    }
    // Descriptors are free again; a sound server accepts the next connection and reads it.
    const fresh = await Deno.connect({ hostname: HOST, port }).catch(() => undefined);
    try {
      await fresh?.write(new Uint8Array([0x78])).catch(() => {});
      const mine = new RegExp(`^data from ${(fresh?.localAddr as Deno.NetAddr)?.port}$`);
      const outcome = fresh === undefined ? "not" : await Promise.race([
        server.stdout.next(mine, 3_000).then(() => "accepted", () => "not"),
        server.status.then(() => "not"),
      ]);
      assert.equal(
        outcome,
        "not",
        "node:net now accepts again after EMFILE: the relay could accept with it " +
          "(see tls_listener.ts)",
      );
    } finally {
      fresh?.close();
    }
  }),
});

Deno.test("canary: a node:tls socket destroyed in the turn it was made is still never freed", async () => {
  // Why NodeTlsConn starts TLS lazily, on first use (tls_listener.ts, #start): the connections
  // refused over a limit are closed in the turn they are accepted.
  await using probe = new Program("tests/fixtures/tls_same_turn.ts", [], {
    permissions: ["--v8-flags=--expose-gc"],
  });
  const { code, stdout } = await probe.result(20_000);
  assert.equal(code, 0);
  const freed = JSON.parse(stdout) as { count: number; sameTurn: number; nextTurn: number };
  assert.ok(freed.nextTurn >= freed.count / 2, `the probe itself is off: ${stdout}`);
  assert.equal(
    freed.sameTurn,
    0,
    `Deno now frees them (${stdout}): NodeTlsConn could start TLS in its constructor`,
  );
});

/** A TLS listener on a free port with a fresh certificate set, closed after `body`. */
async function withListener(
  native: boolean,
  body: (listener: NodeTlsListener, caCert: string) => Promise<void>,
): Promise<void> {
  const certs = await generateCertificates();
  const context = NodeTlsListener.context({ cert: certs.serverCert, key: certs.serverKey });
  const listener = new NodeTlsListener(Deno.listen({ hostname: HOST, port: 0 }), context, native);
  try {
    await body(listener, certs.caCert);
  } finally {
    listener.close();
  }
}

for (const native of [true, false]) {
  const path = native ? "native socket" : "fallback stream";

  Deno.test(
    `TLS over the ${path}: 256 KiB each way intact, then a close the client sees as the end`,
    bounded(20_000, () =>
      withListener(native, async (listener, caCert) => {
        const connecting = Deno.connectTls({
          hostname: "localhost",
          port: listener.addr.port,
          caCerts: [caCert],
        });
        const server = await listener.accept();
        const client = await connecting;
        try {
          await within(5000, "the handshake", server.handshake());
          const up = payload(256 * 1024, 7);
          const down = payload(256 * 1024, 11);
          const [, gotUp, , gotDown] = await within(
            10_000,
            "the exchange",
            Promise.all([
              writeAll(client, up),
              readAll(server, up.length),
              writeAll(server, down),
              readAll(client, down.length),
            ]),
          );
          assert.ok(gotUp.every((b, i) => b === up[i]), "client to server bytes differ");
          assert.ok(gotDown.every((b, i) => b === down[i]), "server to client bytes differ");
          server.close();
          assert.equal(
            await within(5000, "the end of stream", client.read(new Uint8Array(1))),
            null,
          );
        } finally {
          client.close();
        }
      })),
  );

  Deno.test(
    `TLS over the ${path}: a client silent in its handshake is cut off when the server closes`,
    bounded(10_000, () =>
      withListener(native, async (listener) => {
        const client = await Deno.connect({ hostname: HOST, port: listener.addr.port });
        try {
          const server = await listener.accept();
          const handshake = server.handshake();
          handshake.catch(() => {});
          server.close();
          const n = await within(5000, "the cut", client.read(new Uint8Array(64)));
          assert.equal(n, null, "the server's close did not reach the silent client");
          await assert.rejects(handshake);
        } finally {
          client.close();
        }
      })),
  );
}

/** An error worded as Deno 2.9's node:tls words them (rustls's message, an OpenSSL-ish code). */
function nodeError(message: string, code: string): NodeError {
  return Object.assign(new Error(message), { code });
}

Deno.test(
  "tlsError() gives the record errors a client can cause short reasons, and leaves socket errors alone",
  { permissions: "none" },
  () => {
    const cases: [NodeError, string | undefined][] = [
      [
        nodeError("cannot decrypt peer's message", "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"),
        "bad record MAC",
      ],
      [
        nodeError(
          "received corrupt message of type InvalidContentType (SSL routines:ssl3_get_record:wrong version number)",
          "ERR_SSL_WRONG_VERSION_NUMBER",
        ),
        "not a TLS record",
      ],
      [
        nodeError(
          "received corrupt message of type MessageTooLarge (SSL routines:ssl3_get_record:wrong version number)",
          "ERR_SSL_WRONG_VERSION_NUMBER",
        ),
        "record too large",
      ],
      [
        nodeError("received fatal alert: DecodeError", "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"),
        "received fatal alert: DecodeError",
      ],
      [nodeError("read ECONNRESET", "ECONNRESET"), undefined],
      [new Error("no code at all"), undefined],
    ];
    for (const [error, reason] of cases) {
      const result = tlsError(error);
      if (reason === undefined) assert.equal(result, undefined, error.message);
      else {
        assert.ok(result instanceof TlsError, error.message);
        assert.equal(result.message, reason);
      }
    }
  },
);
