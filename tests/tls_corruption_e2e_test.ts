/**
 * Issue 9, hole 2: a TLS record the server cannot decrypt or parse, arriving after the
 * handshake, went unnoticed: no log line, no alert seen by the relay, no close; the connection
 * stayed open for as long as the client kept it. Now it is fatal: the peer gets the alert, the
 * connection closes at once, and the server logs one line, on both connection paths (native
 * sockets, and `--no-native-sockets`), for displays and keyboards, before and after identify;
 * and on `--reference`'s full TLS port, whose relay a plain port shares.
 *
 * The client runs node:tls over a stream the test feeds from its own TCP connection, so that
 * it can also write bytes beneath TLS: a record with a bad MAC, or plain text.
 */

import assert from "node:assert/strict";
import { CertificateDir } from "./helpers/processes.ts";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { encodeIdentify, type Role } from "../lib/protocol/identify.ts";
import { healthyExchange } from "../tools/soak/health.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { bounded, within } from "../tools/harness/wait.ts";

/** How long the server has to log the drop, and the client to see the close. */
const WITHIN_MS = 2000;

/** The two ways the server can hold a TLS connection. */
const PATHS = [
  { label: "native sockets", args: [] as string[] },
  { label: "--no-native-sockets", args: ["--no-native-sockets"] },
];

/** What the client writes beneath TLS, the reason the server logs, the alert it sends back. */
const CORRUPTIONS = [
  {
    label: "an application-data record with a bad MAC",
    bytes: () => Uint8Array.of(0x17, 0x03, 0x03, 0x00, 0x20, ...randomBytes(32)),
    reason: "bad record MAC",
    alert: /BadRecordMac/,
  },
  {
    label: "plain text",
    bytes: () => new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"),
    reason: "not a TLS record",
    alert: /DecodeError/,
  },
];

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/**
 * A TLS 1.3 client on a TCP connection the test holds. node:tls writes through the same queue
 * as {@linkcode UnderTlsClient.beneath}, so bytes written beneath TLS follow TLS's own on the
 * wire.
 */
class UnderTlsClient implements AsyncDisposable {
  /** This connection as the server's log names it, e.g. "127.0.0.1:40312". */
  readonly peer: string;
  /** How the server's side ended, as the TCP reader saw it: "eof", "reset" or an error. */
  readonly ended: Promise<string>;
  /** The first error node:tls reported: the server's alert, once it has come. */
  readonly tlsError: Promise<Error>;
  #conn: Deno.TcpConn;
  #tls: tls.TLSSocket;
  #writing = Promise.resolve();
  /** TCP reads so far, and who waits for the next one. */
  #reads = 0;
  #nextRead: (() => void) | undefined;

  private constructor(conn: Deno.TcpConn, caCert: string) {
    this.#conn = conn;
    this.peer = `127.0.0.1:${conn.localAddr.port}`;
    const stream = new Duplex({
      read() {},
      write: (chunk: Uint8Array, _encoding, callback) => {
        this.#enqueue(chunk).then(() => callback(), callback);
      },
    });
    this.ended = this.#pump(stream);
    this.#tls = tls.connect({ socket: stream, servername: "localhost", ca: caCert });
    // Listened to for the connection's life: an 'error' nobody listens to would throw.
    this.tlsError = new Promise((resolve) => this.#tls.on("error", resolve));
  }

  /** Connects and completes the handshake, on the server's side too. */
  static async connect(port: number, caCert: string): Promise<UnderTlsClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const client = new UnderTlsClient(conn, caCert);
    try {
      await within(WITHIN_MS, "the TLS handshake", client.#handshake());
    } catch (error) {
      await client[Symbol.asyncDispose]();
      throw error;
    }
    return client;
  }

  /** Sends `bytes` through TLS. */
  send(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#tls.write(bytes, (error) => error ? reject(error) : resolve());
    });
  }

  /** Writes `bytes` straight to the TCP connection, after whatever TLS has written. */
  beneath(bytes: Uint8Array): Promise<void> {
    return this.#enqueue(bytes);
  }

  async #handshake(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#tls.once("secureConnect", resolve);
      this.#tls.once("error", reject);
    });
    // In TLS 1.3 the client is done before the server: its Finished goes out after
    // 'secureConnect'. The server sends its session tickets once it has that Finished, so the
    // next bytes to arrive say that the server's handshake is complete too.
    const reads = this.#reads;
    while (this.#reads === reads) await new Promise<void>((resolve) => this.#nextRead = resolve);
  }

  #enqueue(bytes: Uint8Array): Promise<void> {
    const done = this.#writing.then(async () => {
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    });
    this.#writing = done.catch(() => {});
    return done;
  }

  async #pump(stream: Duplex): Promise<string> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        this.#reads++;
        this.#nextRead?.();
        if (n === null) {
          stream.push(null);
          return "eof";
        }
        stream.push(buffer.slice(0, n));
      }
    } catch (error) {
      this.#reads++;
      this.#nextRead?.();
      if (error instanceof Deno.errors.ConnectionReset) return "reset";
      return `error: ${error}`;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#tls.destroy();
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.ended;
    await this.#writing;
  }
}

/** What one case does: who connects, whether it identifies first, and what it corrupts with. */
interface Case {
  role: Role;
  identify: boolean;
  corruption: typeof CORRUPTIONS[number];
}

/** Every case: each role, before and after identify, with each corruption. */
const CASES: Case[] = (["display", "keyboard"] as const).flatMap((role) =>
  [false, true].flatMap((identify) =>
    CORRUPTIONS.map((corruption) => ({ role, identify, corruption }))
  )
);

/** The step's name for `c`. */
function caseName({ role, identify, corruption }: Case): string {
  return `${corruption.label}, ${identify ? "after" : "instead of"} identify, as a ${role}`;
}

/**
 * One case on the server's TLS port `port`: connect, maybe identify, corrupt, and check the
 * drop, the close and the alert.
 */
async function corruptAndCheck(
  server: ServerProcess,
  port: number,
  caCert: string,
  { role, identify, corruption }: Case,
): Promise<void> {
  await using client = await UnderTlsClient.connect(port, caCert);
  const peer = client.peer.replaceAll(".", "\\.");
  const endings = server.log.collect((line) => line.includes(`${client.peer} `));
  if (identify) {
    const identified = server.log.next(new RegExp(` ${peer} identified as ${role}$`), 5000);
    await client.send(encodeIdentify(role));
    await identified;
  }
  const logged = identify ? role : "unidentified";
  const dropped = server.log.next(
    new RegExp(` ${peer} dropped \\(${logged}\\): TLS error: ${corruption.reason}$`),
    WITHIN_MS,
  );
  await client.beneath(corruption.bytes());
  await dropped;
  const ending = await within(WITHIN_MS, "the client seeing the close", client.ended);
  assert.match(ending, /^(eof|reset)$/);
  const alert = await within(WITHIN_MS, "the client seeing an alert", client.tlsError);
  assert.match(alert.message, corruption.alert);
  const token = `${role}-${identify}-${corruption.reason}`.replaceAll(" ", "-");
  assert.equal(
    await healthyExchange({ port, tls: true, caCert }, token, 2000),
    "",
    "a healthy exchange afterwards",
  );
  const lines = endings.filter((line) => / (dropped|disconnected) /.test(line));
  assert.equal(lines.length, 1, `one line for the connection's end, got:\n${lines.join("\n")}`);
}

for (const path of PATHS) {
  Deno.test(
    `a corrupted TLS record after the handshake drops the connection at once, with an alert and one log line (${path.label})`,
    bounded(30_000, async (t) => {
      await using certs = await CertificateDir.create();
      await using server = await ServerProcess.start([
        "--port",
        "0",
        "--cert",
        certs.certFile,
        "--key",
        certs.keyFile,
        ...path.args,
      ]);
      const port = server.endpoints[0].port;
      for (const c of CASES) {
        await t.step(caseName(c), () => corruptAndCheck(server, port, certs.caCert, c));
      }
      assert.deepEqual(server.tally.crashes, []);
    }),
  );

  // Half the cases, in which each role, moment and corruption meets each of the others' values
  // once: the listener and its relay are the same code as above, started by --reference.
  Deno.test(
    `a corrupted TLS record after the handshake on --reference's full TLS port drops the connection at once, with an alert and one log line (${path.label})`,
    bounded(30_000, async (t) => {
      await using certs = await CertificateDir.create();
      await using server = await ServerProcess.startReference(["--certs", certs.dir, ...path.args]);
      const port = server.portOf("full TLS server");
      const some = CASES.filter((c) =>
        (c.role === "display") === (c.identify === (c.corruption === CORRUPTIONS[1]))
      );
      for (const c of some) {
        await t.step(caseName(c), () => corruptAndCheck(server, port, certs.caCert, c));
      }
      assert.deepEqual(server.tally.crashes, []);
    }),
  );
}
