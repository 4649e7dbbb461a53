/**
 * Clients for the attack tests, built to be cheap in the test process (which shares two cores
 * with the server it attacks): a storm of connections reset as soon as they connect, many
 * keyboards holding a partly sent frame from one shared buffer, displays that read as fast as
 * they can and check every byte against the stream they should get (with node:buffer's native
 * compare, not a JavaScript loop), and the server's unread receive queues from /proc/net/tcp.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import net from "node:net";
import { encodeIdentify } from "../../lib/protocol/identify.ts";
import { closeQuietly, dial, type Target } from "../../tools/soak/net.ts";
import { writeAll } from "../../lib/net/wire_io.ts";

/** Resolves after `ms` with a timer the caller need not clear (for polling loops only). */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Opens `count` TCP connections to `port`, all at once, and resets each (an RST, not a FIN)
 * the moment it is connected, before the server has had a chance to accept it. Resolves,
 * once every socket is closed, with how many were connected and reset; connections that
 * failed to connect at all are not counted.
 */
export async function resetStorm(port: number, count: number): Promise<number> {
  const outcomes = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<boolean>((resolve) => {
        let reset = false;
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.once("connect", () => {
          reset = true;
          socket.resetAndDestroy();
        });
        // Refused, or reset by the server first: the storm goes on without it.
        socket.on("error", () => {});
        socket.once("close", () => resolve(reset));
      })),
  );
  return outcomes.filter((reset) => reset).length;
}

/** Connections held open by the test, closed together. */
export class HeldConnections implements AsyncDisposable {
  readonly conns: Deno.Conn[];
  /** Resolves once every connection is closed, by either side. */
  readonly ended: Promise<void>;

  private constructor(conns: Deno.Conn[]) {
    this.conns = conns;
    this.ended = Promise.all(conns.map((conn) => this.#watch(conn))).then(() => {});
  }

  /**
   * Connects `count` times to `target`, or to each of several targets in turn (`parallel`
   * connects at a time, so that the listen backlog does not overflow and SYNs are not retried
   * a second later), and writes `bytes` (the same buffer, never copied) on each. Resolves once
   * every write is in the kernel.
   */
  static async open(
    target: Target | readonly Target[],
    count: number,
    bytes: Uint8Array,
    parallel = 64,
  ): Promise<HeldConnections> {
    const targets = Array.isArray(target) ? target : [target];
    const conns: Deno.Conn[] = [];
    try {
      for (let at = 0; at < count; at += parallel) {
        const batch = await Promise.all(
          Array.from(
            { length: Math.min(parallel, count - at) },
            (_, i) => dial(targets[(at + i) % targets.length]),
          ),
        );
        conns.push(...batch);
        await Promise.all(batch.map((conn) => writeAll(conn, bytes).catch(() => {})));
      }
    } catch (error) {
      for (const conn of conns) closeQuietly(conn);
      throw error;
    }
    return new HeldConnections(conns);
  }

  /** Writes `bytes` (the same buffer, never copied) on every connection. */
  async sendAll(bytes: Uint8Array): Promise<void> {
    await Promise.all(this.conns.map((conn) => writeAll(conn, bytes).catch(() => {})));
  }

  /** The local ports, as the server's log names the peers (`127.0.0.1:PORT`). */
  get ports(): Set<number> {
    return new Set(this.conns.map((conn) => (conn.localAddr as Deno.NetAddr).port));
  }

  close(): void {
    for (const conn of this.conns) closeQuietly(conn);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.ended;
  }

  /** Reads until the connection ends, so that one the server drops is closed here too. */
  async #watch(conn: Deno.Conn): Promise<void> {
    const sink = new Uint8Array(1024);
    try {
      while ((await conn.read(sink)) !== null) {
        // The server sends keyboards nothing; whatever comes is ignored.
      }
    } catch {
      // Reset by the server, or closed by the test.
    } finally {
      closeQuietly(conn);
    }
  }
}

/**
 * A display that reads as fast as it can into one 64 KiB buffer and compares every byte with
 * `expected`, the exact stream it must receive (the server relays frames byte for byte).
 */
export class CheckingDisplay implements AsyncDisposable {
  readonly conn: Deno.Conn;
  readonly port: number;
  readonly expected: Uint8Array;
  /** Bytes received so far, all equal to `expected`'s. */
  received = 0;
  /** Why reading stopped early: "" while reading or once everything arrived. */
  problem = "";
  /** Resolves once everything has arrived, or reading stopped for `problem`. */
  readonly done: Promise<void>;
  #closedByUs = false;
  #expected: Buffer;

  private constructor(conn: Deno.Conn, expected: Uint8Array) {
    this.conn = conn;
    this.port = (conn.localAddr as Deno.NetAddr).port;
    this.expected = expected;
    this.#expected = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
    this.done = this.#read();
  }

  /** Connects to `target` and identifies as a display; reading starts at once. */
  static async connect(target: Target, expected: Uint8Array): Promise<CheckingDisplay> {
    const conn = await dial(target);
    try {
      await writeAll(conn, encodeIdentify("display"));
    } catch (error) {
      closeQuietly(conn);
      throw error;
    }
    return new CheckingDisplay(conn, expected);
  }

  get complete(): boolean {
    return this.received === this.expected.length;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closedByUs = true;
    closeQuietly(this.conn);
    await this.done;
  }

  async #read(): Promise<void> {
    const buffer = Buffer.alloc(64 * 1024);
    try {
      while (!this.complete) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          this.problem = "the server closed the connection";
          return;
        }
        const end = this.received + n;
        if (end > this.expected.length) {
          this.problem = `${end - this.expected.length} bytes more than expected`;
          return;
        }
        if (!buffer.subarray(0, n).equals(this.#expected.subarray(this.received, end))) {
          this.problem = `a byte differs in the ${n} bytes from stream offset ${this.received}`;
          return;
        }
        this.received = end;
      }
    } catch (error) {
      if (!this.#closedByUs) {
        this.problem = error instanceof Deno.errors.ConnectionReset
          ? "the server reset the connection"
          : `reading failed: ${error}`;
      }
    }
  }
}

/** What the kernel holds for the server's side of the connections on one port. */
export interface UnreadOnPort {
  /** Established connections. */
  connections: number;
  /** Bytes received but not read by the server yet, over all of them. */
  unread: number;
}

/**
 * Bytes the kernel has received for the server's side of its connections on `serverPort` but
 * the server has not read yet, and how many such connections are established, from
 * /proc/net/tcp (read with `cat`, as the other process tests do).
 */
export async function unreadByServer(serverPort: number): Promise<UnreadOnPort> {
  return (await unreadByPort([serverPort])).get(serverPort)!;
}

/** {@linkcode unreadByServer} for each of `serverPorts`, from one read of /proc/net/tcp. */
export async function unreadByPort(serverPorts: number[]): Promise<Map<number, UnreadOnPort>> {
  const { success, stdout } = await new Deno.Command("cat", {
    args: ["/proc/net/tcp"],
    stdout: "piped",
  }).output();
  if (!success) throw new Error("could not read /proc/net/tcp");
  const found = new Map(serverPorts.map((port) => [port, { connections: 0, unread: 0 }]));
  for (const line of new TextDecoder().decode(stdout).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address rem_address st tx_queue:rx_queue; 01 is ESTABLISHED.
    if (fields.length < 5 || fields[3] !== "01") continue;
    const seen = found.get(parseInt(fields[1].split(":")[1], 16));
    if (!seen) continue;
    seen.connections++;
    seen.unread += parseInt(fields[4].split(":")[1], 16);
  }
  return found;
}

/**
 * Resolves once the server has read everything sent to it on `serverPort`, over at least
 * `connections` connections; rejects after `ms`, saying what was still unread.
 */
export async function serverHasRead(
  serverPort: number,
  connections: number,
  ms: number,
): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    const seen = await unreadByServer(serverPort);
    if (seen.connections >= connections && seen.unread === 0) return;
    if (performance.now() > deadline) {
      throw new Error(
        `after ${ms} ms the server had ${seen.unread} bytes unread on ${seen.connections} of ${connections} connections`,
      );
    }
    await pause(100);
  }
}
