/**
 * The relay: accepts connections on any number of listeners, reads each client's identify
 * code in the client's own task, then either subscribes a display to the bus (lib/server/bus.ts) or
 * reads a keyboard's frames and publishes them there. Every limit that keeps one bad client
 * from hurting the others lives in {@linkcode RelayOptions}.
 *
 * @module
 */

import { ClientMemory, type MemoryHolder } from "./client_memory.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { Bus } from "./bus.ts";
import { type BacklogLimits, DisplayQueue, Fanout } from "./fanout.ts";
import { HistoryBus } from "./history/history_bus.ts";
import type { HistoryStore } from "./history/store.ts";
import { DEFAULT_MAX_FRAME } from "../protocol/frame.ts";
import { KeyboardSession } from "./keyboard_session.ts";
import { type Identity, parseIdentify } from "../protocol/identify.ts";
import type { Logger } from "../cli/log.ts";
import { describeIoError, TlsError } from "../net/io_errors.ts";
import { describeHandshakeError } from "../net/native_socket.ts";
import type { RelayConn, RelayListener } from "../net/relay_conn.ts";
import { closeQuietly, readExact } from "../net/wire_io.ts";

/** Every limit of a relay. Times are in seconds, sizes in bytes. */
export interface RelayOptions extends BacklogLimits {
  maxFrame: number;
  identifyTimeout: number;
  frameTimeout: number;
  handshakeTimeout: number;
  /**
   * Most simultaneous connections across all listeners (and all relays sharing a
   * {@linkcode ConnectionCount}); 0 means no limit.
   */
  maxConnections: number;
  /** Most simultaneous connections from one address; 0 means no limit. */
  maxPerAddress: number;
  /** Messages per second a keyboard may send before its socket is paused; 0 turns it off. */
  keyboardRate: number;
  /** Messages a keyboard may send in a burst above its rate. */
  keyboardBurst: number;
  /** TCP keepalive on every connection, so that peers that vanished are noticed. */
  keepAlive: boolean;
  /**
   * Bytes all clients of the process may hold together in partly received frames and unsent
   * backlogs (lib/server/client_memory.ts); 0 means no budget.
   */
  maxClientMemory: number;
}

/** Defaults, chosen in RELIABILITY.md beside those of IRC servers and Redis. */
export const DEFAULT_RELAY_OPTIONS: RelayOptions = {
  maxFrame: DEFAULT_MAX_FRAME,
  maxBacklog: 1024 * 1024,
  softBacklog: 256 * 1024,
  softSeconds: 10,
  identifyTimeout: 10,
  frameTimeout: 30,
  handshakeTimeout: 10,
  maxConnections: 20_000,
  maxPerAddress: 0,
  keyboardRate: 1000,
  keyboardBurst: 5000,
  keepAlive: true,
  maxClientMemory: 256 * 1024 * 1024,
};

/** How long a TLS peer gets to take its close_notify when the relay shuts down. */
const SHUTDOWN_GRACE_MS = 500;
/**
 * Read buffer sizes for keyboards: a small one while a keyboard sends at a human pace (an
 * idle keyboard's pending read holds its buffer), a large one while its reads fill the small
 * one (a burst). A large frame arriving in pieces is read straight into its own buffer.
 */
const KEYBOARD_READ_SMALL = 2 * 1024;
const KEYBOARD_READ_LARGE = 32 * 1024;
/** Displays only ever send their identify code; what else they send is read and ignored. */
const discardBuffer = new Uint8Array(4096);
/**
 * Bytes a second of what a display sends after its code that the server reads (and ignores);
 * beyond it, its socket waits. Read flat out, a display sending junk over TLS took a core to
 * decrypt (55 MB/s) and slowed everyone's exchanges to a third of a second.
 */
const DISPLAY_READ_RATE = 64 * 1024;

/** A connection the relay holds, with an idempotent close that logs why exactly once. */
class Client implements MemoryHolder {
  readonly peer: string;
  readonly address: string;
  /** Replaced at most once: by the connection a display is written on (#runDisplay). */
  conn: RelayConn;
  role: Identity["role"] | "unidentified" = "unidentified";
  closed = false;
  /**
   * Bytes held for it, by which the memory budget ranks it: a keyboard's partial frame, or a
   * display's own joined copy (lib/server/client_memory.ts, lib/server/fanout.ts).
   */
  holding: () => number = () => 0;
  /** Drops it with a reason; set by the relay. */
  evict: (reason: string) => void = () => {};
  #onClose: (client: Client) => void;
  #memory: ClientMemory;
  #wake: (() => void) | undefined;
  /** Bytes of its own counted in the memory budget: a keyboard's partial frame. */
  #reserved = 0;

  constructor(conn: RelayConn, memory: ClientMemory, onClose: (client: Client) => void) {
    this.conn = conn;
    this.#memory = memory;
    const addr = conn.remoteAddr;
    this.address = addr.hostname;
    this.peer = addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
    this.#onClose = onClose;
  }

  get held(): number {
    return this.holding();
  }

  /**
   * Counts `bytes` as this client's own in the memory budget, in place of what it counted
   * before. Closing counts 0 at once, so that a budget check that drops clients sees their
   * memory go with them, not when their tasks end.
   */
  reserve(bytes: number): void {
    if (this.closed) bytes = 0;
    this.#memory.change(bytes - this.#reserved);
    this.#reserved = bytes;
  }

  /** Resolves after `ms`, or at once when the client is closed. */
  sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#wake?.();
    this.reserve(0);
    try {
      this.conn.close();
    } catch {
      // Already closed by the runtime.
    }
    this.#onClose(this);
  }

  /**
   * Closes a TLS connection the orderly way: a close_notify first, which `close()` alone
   * does not flush before the process exits (the peer would see an unexpected EOF instead
   * of the end of the stream). A peer that does not read gets at most `ms` of it.
   */
  async shutdown(ms: number): Promise<void> {
    if (this.closed) return;
    if (this.conn.secure) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.conn.closeWrite().catch(() => {}),
        new Promise((resolve) => timer = setTimeout(resolve, ms)),
      ]);
      clearTimeout(timer);
    }
    this.close();
  }
}

/** Runs `work` with a deadline; on expiry, `onTimeout` runs (it closes the connection). */
async function withDeadline<T>(
  seconds: number,
  onTimeout: () => void,
  work: Promise<T>,
): Promise<T> {
  const timer = setTimeout(onTimeout, seconds * 1000);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Accept failures that are a state of the whole process (out of descriptors or memory), seen
 * by every listener at once: one line when an episode starts, one when accepting has worked
 * again for a while, and none in between, however often the loops retry.
 */
const acceptTrouble = {
  since: 0,
  lastFailure: 0,
  failures: 0,
  failed(log: Logger, error: unknown): void {
    const now = Date.now();
    this.lastFailure = now;
    this.failures++;
    if (this.since !== 0) return;
    this.since = now;
    log.error(`accept failed: ${describeIoError(error)}; backing off until it works again`);
  },
  succeeded(log: Logger): void {
    if (this.since === 0 || Date.now() - this.lastFailure < 5000) return;
    log.info(
      `accepting again, after ${this.failures} failed accepts over ${
        Math.round((this.lastFailure - this.since) / 1000)
      } s`,
    );
    this.since = 0;
    this.failures = 0;
  },
};

/** errno values of accept(2) that say the process, not one connection, is out of something. */
const PROCESS_WIDE_ERRNOS = new Set([
  23, // ENFILE: the system's file table is full
  24, // EMFILE: this process's descriptors are used up
  12, // ENOMEM
  105, // ENOBUFS
]);

/**
 * Whether an accept failure is the process's (back off: retrying at once would spin) rather
 * than one connection's. A peer that reset before its accept completed (ECONNABORTED, or
 * ENOTCONN when the runtime asks for its address) is that connection's problem alone: the
 * next accept must run at once, or a burst of resets stalls accepting for everyone.
 */
export function isProcessWideAcceptError(error: unknown): boolean {
  if (
    error instanceof Deno.errors.NotConnected || error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.WouldBlock || error instanceof Deno.errors.TimedOut
  ) {
    return false;
  }
  const errno = /\(os error (\d+)\)/.exec(error instanceof Error ? error.message : "")?.[1];
  // An error that names no errno is not known to be one connection's: back off, to be safe.
  return errno === undefined || PROCESS_WIDE_ERRNOS.has(Number(errno));
}

/**
 * Connections counted for the limits. The relays of one process (the reference servers' two)
 * share one, so that --max-connections and --max-per-address bound the process and its
 * descriptors, not each relay on its own.
 */
export class ConnectionCount {
  total = 0;
  readonly perAddress = new Map<string, number>();
  /** The client memory budget of the process, shared the same way. */
  readonly memory: ClientMemory;

  constructor(maxClientMemory = DEFAULT_RELAY_OPTIONS.maxClientMemory) {
    this.memory = new ClientMemory(maxClientMemory);
  }
}

/** A relay: one display registry, any number of listeners feeding it. */
export class Relay {
  readonly options: RelayOptions;
  /**
   * Where keyboards publish and displays subscribe: the in-process fan-out (lib/server/bus.ts),
   * behind the history bus when the relay keeps history.
   */
  readonly bus: Bus;
  #log: Logger;
  #clients = new Set<Client>();
  #count: ConnectionCount;
  #listeners = new Set<RelayListener>();
  #softTimer: ReturnType<typeof setInterval>;
  #lastLimitLog = 0;
  #closing = false;
  #tasks = new Set<Promise<void>>();

  /**
   * `count` may be shared with other relays, so that the limits bound them together; with a
   * `history` store, every message is kept there before displays are sent it, and a display
   * that joins is first sent the store's replay (lib/server/history/history_bus.ts).
   */
  constructor(
    options: Partial<RelayOptions>,
    log: Logger,
    count?: ConnectionCount,
    history?: HistoryStore,
  ) {
    this.options = { ...DEFAULT_RELAY_OPTIONS, ...options };
    this.#log = log;
    this.#count = count ?? new ConnectionCount(this.options.maxClientMemory);
    const fanout = new Fanout(this.#count.memory);
    this.bus = history ? new HistoryBus(fanout, history, log) : fanout;
    this.#softTimer = setInterval(() => this.bus.checkLimits(Date.now()), 1000);
  }

  /** Open connections, for tests and the soak's accounting. */
  get connections(): number {
    return this.#clients.size;
  }

  /**
   * Accepts connections from `listener` until it or the relay is closed. TLS listeners
   * hand over connections whose handshake each client's own task completes, under a
   * deadline, so a client that never finishes it delays nobody.
   */
  serve(listener: RelayListener): Promise<void> {
    this.#listeners.add(listener);
    return this.#track(this.#acceptLoop(listener));
  }

  /** Stops listening on `listener` only, leaving its connections open (certificate reload). */
  unserve(listener: RelayListener): void {
    if (this.#listeners.delete(listener)) closeQuietly(listener);
  }

  /** Sends a run of complete big-endian frames from the relay itself to every display. */
  broadcast(frames: Uint8Array): void {
    this.bus.publish(frames, false);
  }

  /** Stops accepting, closes every client, and resolves when every task has ended. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#softTimer);
    for (const listener of this.#listeners) closeQuietly(listener);
    this.#listeners.clear();
    this.bus.close();
    await Promise.all([...this.#clients].map((client) => client.shutdown(SHUTDOWN_GRACE_MS)));
    await Promise.allSettled([...this.#tasks]);
  }

  #track(task: Promise<void>): Promise<void> {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
    return task;
  }

  async #acceptLoop(listener: RelayListener): Promise<void> {
    let backoff = 0;
    for (;;) {
      let conn: RelayConn;
      try {
        conn = await listener.accept();
        backoff = 0;
        acceptTrouble.succeeded(this.#log);
      } catch (error) {
        if (this.#closing || !this.#listeners.has(listener)) return;
        if (error instanceof Deno.errors.BadResource) return;
        if (!isProcessWideAcceptError(error)) {
          this.#log.debug(`accept of one connection failed: ${describeIoError(error)}`);
          continue;
        }
        // Out of descriptors (EMFILE) and the like: say so once per episode, back off, retry.
        acceptTrouble.failed(this.#log, error);
        backoff = Math.min(Math.max(backoff * 2, 10), 1000);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        continue;
      }
      this.#admit(conn);
    }
  }

  /** The client memory budget this relay counts in (shared like the connection count). */
  get memory(): ClientMemory {
    return this.#count.memory;
  }

  /**
   * Counts a connection the relay does not read itself (a browser's WebSocket, see
   * lib/server/web/gateway.ts) in the same connection limits and memory budget as its own.
   * Returns the refusal (already logged, at most once a second), or the function that
   * uncounts it when it ends.
   */
  admitExternal(peer: string, address: string, holder: MemoryHolder): string | (() => void) {
    const refusal = this.#refusal(peer, address);
    if (refusal) return refusal;
    this.#count.memory.add(holder);
    this.#count.total++;
    this.#count.perAddress.set(address, (this.#count.perAddress.get(address) ?? 0) + 1);
    let counted = true;
    return () => {
      if (!counted) return;
      counted = false;
      this.#uncount(address, holder);
    };
  }

  /** Why a new connection from `address` is refused (logged), or "" when it may come in. */
  #refusal(peer: string, address: string): string {
    const { maxConnections, maxPerAddress } = this.options;
    const fromAddress = this.#count.perAddress.get(address) ?? 0;
    let refusal = "";
    if (maxConnections > 0 && this.#count.total >= maxConnections) {
      refusal = `connection limit ${maxConnections} reached`;
    } else if (maxPerAddress > 0 && fromAddress >= maxPerAddress) {
      refusal = `per-address limit ${maxPerAddress} reached for ${address}`;
    }
    const now = Date.now();
    if (refusal && now - this.#lastLimitLog >= 1000) {
      this.#lastLimitLog = now;
      this.#log.warn(`${peer} refused: ${refusal}`);
    }
    return refusal;
  }

  #admit(conn: RelayConn): void {
    const client = new Client(conn, this.#count.memory, (gone) => this.#forget(gone));
    if (this.#refusal(client.peer, client.address)) return closeQuietly(conn);
    this.#clients.add(client);
    client.evict = (reason) => this.#end(client, "dropped", reason);
    this.#count.memory.add(client);
    this.#count.total++;
    this.#count.perAddress.set(
      client.address,
      (this.#count.perAddress.get(client.address) ?? 0) + 1,
    );
    this.#log.info(`${client.peer} connected${conn.secure ? " (TLS)" : ""}`);
    this.#track(this.#handle(client));
  }

  #forget(client: Client): void {
    this.#clients.delete(client);
    this.#uncount(client.address, client);
  }

  #uncount(address: string, holder: MemoryHolder): void {
    this.#count.memory.delete(holder);
    this.#count.total--;
    const left = (this.#count.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.#count.perAddress.set(address, left);
    else this.#count.perAddress.delete(address);
  }

  /** Ends a client with exactly one log line: a disconnect, or a drop with its reason. */
  #end(client: Client, how: "disconnected" | "dropped", reason: string): void {
    if (client.closed) return;
    client.close();
    const line = `${client.peer} ${how} (${client.role}): ${reason}`;
    if (how === "dropped") this.#log.warn(line);
    else this.#log.info(line);
  }

  async #handle(client: Client): Promise<void> {
    const conn = client.conn;
    let handshaken = !conn.secure;
    const expire = (what: string) => () => this.#end(client, "dropped", what);
    try {
      if (this.options.keepAlive) conn.setKeepAlive(true);
      if (conn.secure) {
        await withDeadline(
          this.options.handshakeTimeout,
          expire(`no TLS handshake within ${this.options.handshakeTimeout} s`),
          conn.handshake(),
        );
        handshaken = true;
      }
      const code = await withDeadline(
        this.options.identifyTimeout,
        expire(`no identify code within ${this.options.identifyTimeout} s`),
        readExact(conn, 4),
      );
      if (code === null) return this.#end(client, "disconnected", "closed before identifying");
      const identity = parseIdentify(code);
      client.role = identity.role;
      conn.setNoDelay(true);
      this.#log.info(
        `${client.peer} identified as ${identity.role}${
          identity.littleEndian ? " (little-endian)" : ""
        }`,
      );
      if (identity.role === "display") await this.#runDisplay(client, identity.littleEndian);
      else await this.#runKeyboard(client, identity.littleEndian);
    } catch (error) {
      if (client.closed) return;
      if (error instanceof ProtocolError) return this.#end(client, "dropped", error.message);
      if (!handshaken) {
        return this.#end(
          client,
          "dropped",
          `TLS handshake failed: ${describeHandshakeError(error)}`,
        );
      }
      if (error instanceof TlsError) return this.#end(client, "dropped", describeIoError(error));
      this.#end(client, "disconnected", describeIoError(error));
    }
  }

  async #runDisplay(client: Client, littleEndian: boolean): Promise<void> {
    // A plain display moves onto a native socket, where it can (RelayConn.forDisplay).
    client.conn = client.conn.forDisplay();
    const queue = new DisplayQueue(
      client.conn,
      littleEndian,
      this.options,
      (reason) => this.#end(client, "dropped", reason),
    );
    client.holding = () => queue.ownBytes;
    this.bus.subscribe(queue);
    let tokens = DISPLAY_READ_RATE;
    let refilled = Date.now();
    try {
      // Reading tells us when the display goes away; whatever it sends is ignored.
      while (!client.closed) {
        const n = await client.conn.read(discardBuffer);
        if (n === null) return this.#end(client, "disconnected", "closed by peer");
        const now = Date.now();
        tokens = Math.min(DISPLAY_READ_RATE, tokens + (now - refilled) * DISPLAY_READ_RATE / 1000);
        refilled = now;
        tokens -= n;
        if (tokens < 0) await client.sleep(-tokens * 1000 / DISPLAY_READ_RATE);
      }
    } finally {
      this.bus.unsubscribe(queue);
      queue.discard();
    }
  }

  async #runKeyboard(client: Client, littleEndian: boolean): Promise<void> {
    const session = new KeyboardSession({ ...this.options, littleEndian }, Date.now());
    const decoder = session.decoder;
    client.holding = () => decoder.reserved;
    const buffers = new ReadBuffers();
    let frameTimer: ReturnType<typeof setTimeout> | undefined;
    let armedFor: number | undefined;
    /** Keeps the frame timer at the session's deadline. */
    const followDeadline = () => {
      const deadline = session.frameDeadline;
      if (deadline === armedFor) return;
      clearTimeout(frameTimer);
      armedFor = deadline;
      frameTimer = deadline === undefined ? undefined : setTimeout(
        () => this.#end(client, "dropped", session.frameTimeoutReason),
        deadline - Date.now(),
      );
    };
    /** Waits without reading; the frame clock stops meanwhile (see KeyboardSession). */
    const pause = async (until: Promise<unknown>) => {
      session.stopClock();
      followDeadline();
      await until;
      session.startClock(Date.now());
      followDeadline();
    };
    try {
      for (;;) {
        // The server is writing slower than keyboards send: let the displays catch up first.
        const ready = this.bus.ready();
        if (ready) await pause(ready);
        if (client.closed) return;
        const spare = decoder.spare();
        // A large frame in progress is read into its own buffer; its last bytes, like small
        // frames, into the read buffer (the small one, if the frame is large: see next()).
        const target = spare.length >= KEYBOARD_READ_SMALL
          ? spare
          : buffers.next(decoder.reserved > KEYBOARD_READ_LARGE);
        const n = await client.conn.read(target);
        if (n === null) {
          const partial = session.inFrame ? " in the middle of a frame" : "";
          return this.#end(client, "disconnected", `closed by peer${partial}`);
        }
        if (target !== spare) buffers.filled(n);
        const received = session.receive(target.subarray(0, n), Date.now());
        client.reserve(decoder.reserved);
        if (received.frames.length > 0) this.bus.publish(received.frames, littleEndian);
        if (received.drop) return this.#end(client, "dropped", received.drop);
        followDeadline();
        // Over --keyboard-rate: its socket is not read for a while, so TCP pushes back on it.
        if (received.pauseMs > 0) await pause(client.sleep(received.pauseMs));
      }
    } finally {
      clearTimeout(frameTimer);
      client.reserve(0);
      client.holding = () => 0;
      session.release();
      buffers.release();
    }
  }
}

/**
 * A keyboard's read buffer: the small one until a read fills it, then the large one until
 * a read leaves most of it empty, when it is let go again. Each is made when first read
 * into, so a keyboard whose reads go into its frame's own buffer (spare()) holds neither.
 */
class ReadBuffers {
  #small: Uint8Array<ArrayBuffer> | undefined;
  #large: Uint8Array<ArrayBuffer> | undefined;
  #wantLarge = false;

  /**
   * The buffer for the next read; the small one while the last bytes of a large frame are due
   * (a keyboard that stops one byte short of it then holds no large buffer beside it).
   */
  next(finishingLargeFrame = false): Uint8Array {
    if (this.#wantLarge && !finishingLargeFrame) {
      return this.#large ??= new Uint8Array(KEYBOARD_READ_LARGE);
    }
    return this.#small ??= new Uint8Array(KEYBOARD_READ_SMALL);
  }

  /** Frees both buffers at once (see FrameDecoder.release); no read may be pending. */
  release(): void {
    for (const buffer of [this.#small, this.#large]) buffer?.buffer.transfer(0);
    this.#small = this.#large = undefined;
  }

  /** Adapts to how much the last read of {@linkcode next}'s buffer brought. */
  filled(n: number): void {
    if (n === 0) return;
    if (!this.#wantLarge && n === KEYBOARD_READ_SMALL) this.#wantLarge = true;
    else if (this.#wantLarge && n < KEYBOARD_READ_SMALL) {
      this.#wantLarge = false;
      this.#large = undefined;
    }
  }
}
