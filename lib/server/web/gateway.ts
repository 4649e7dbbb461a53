/**
 * The WebSocket gateway: browsers as one more publisher and subscriber of the relay's bus
 * (lib/server/bus.ts). One tap subscribes to the bus like a display and numbers every frame
 * in the one global order; the numbered records go through the gateway's own fan-out to each
 * browser's bounded queue (the same DisplayQueue, limits and eviction as a TCP display). A
 * browser's frames go through the same KeyboardSession as a keyboard's and are published on
 * the bus. The sub-protocol is PROTOCOL.md §11.
 *
 * **Resume.** The gateway keeps the last {@linkcode KEEP} records. A browser that comes back
 * in the same epoch gets every record after the last one it saw; after a restart (a new epoch)
 * the one whose frame has the fingerprint it saw last is looked for, and what follows it is
 * sent. With history (issue 12), the history bus replays its store to the tap when it
 * subscribes, so the records after a restart are the history database's messages.
 *
 * @module
 */

import type { Logger } from "../../cli/log.ts";
import { DisplayQueue, Fanout, type Writable } from "../fanout.ts";
import { KeyboardSession } from "../keyboard_session.ts";
import type { Relay } from "../relay.ts";
import { LENGTH_FIELD_SIZE } from "../../protocol/frame.ts";
import {
  encodeRecords,
  fingerprint,
  type Hello,
  parseHello,
  SEQ_SIZE,
  type WebRecord,
  type Welcome,
} from "../../protocol/web_records.ts";

/** Records kept for browsers that reconnect. */
export const KEEP = 1000;
/**
 * Bytes of frames kept at most, whatever their number: what one resuming browser may be sent
 * at once (a thousand messages of 64 KiB would be 64 MiB a browser).
 */
export const KEEP_BYTES = 4 * 1024 * 1024;
/** Bytes a browser's socket may buffer before its writer waits (its queue then grows). */
const SOCKET_HIGH_WATER = 64 * 1024;
/** Bytes of records in one WebSocket message at most (one record may be larger). */
export const MESSAGE_LIMIT = 60 * 1024;
/** How often a waiting writer looks at the socket's buffer again. */
const DRAIN_POLL_MS = 5;
/** Bytes of messages a browser may send while it is paused (flood control) before it goes. */
const HELD_LIMIT = 256 * 1024;

/** What the gateway needs of its deployment. */
export interface GatewayOptions {
  /**
   * Whether a browser that connects afresh is sent the records kept: true when the relay
   * keeps history (the browser then sees what a terminal display would be replayed).
   */
  replayToNew?: boolean;
}

/** Where a browser connected from, as the log shows it. */
export interface WebPeer {
  /** "host:port". */
  peer: string;
  address: string;
  secure: boolean;
}

/** The gateway between WebSockets and a relay's bus. */
export class WebGateway {
  readonly epoch: string = crypto.randomUUID().slice(0, 8);
  #relay: Relay;
  #log: Logger;
  #replayToNew: boolean;
  #seq = 0;
  #kept: WebRecord[] = [];
  #keptBytes = 0;
  #browsers: Fanout;
  #tap: DisplayQueue;
  #sessions = new Set<BrowserSession>();

  constructor(relay: Relay, log: Logger, options: GatewayOptions = {}) {
    this.#relay = relay;
    this.#log = log;
    this.#replayToNew = options.replayToNew ?? false;
    this.#browsers = new Fanout(relay.memory);
    // The tap's writes complete one macrotask later: what the bus delivers meanwhile (every
    // WebSocket message read in this turn is one run) queues behind, and goes to the browsers
    // as one message each, not one per run. After a quiet spell a run goes at once.
    const nextTurn = (length: number) =>
      new Promise<number>((resolve) => setTimeout(() => resolve(length), 0));
    const tap: Writable = {
      write: (bytes) => nextTurn(this.#number([bytes])),
      writev: (runs) => nextTurn(this.#number(runs)),
    };
    // The tap is never evicted: its writes always complete.
    this.#tap = new DisplayQueue(
      tap,
      false,
      { maxBacklog: Infinity, softBacklog: Infinity, softSeconds: Infinity },
      (reason) => log.error(`web gateway: ${reason}`),
    );
    relay.bus.subscribe(this.#tap);
  }

  /** The last sequence number assigned. */
  get seq(): number {
    return this.#seq;
  }

  /** Browsers connected, for tests and the log. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Applies the browsers' time-based backlog limits; called about once a second. */
  checkLimits(now: number): void {
    this.#browsers.checkLimits(now);
  }

  /**
   * Takes a browser's WebSocket just upgraded; it is counted in the relay's limits first (a
   * refusal string is returned, and the socket closed, when it may not come in).
   */
  accept(socket: WebSocket, from: WebPeer): string | undefined {
    const session = new BrowserSession(socket, from, this);
    const admitted = this.#relay.admitExternal(from.peer, from.address, session);
    if (typeof admitted === "string") {
      session.refuse(admitted);
      return admitted;
    }
    this.#sessions.add(session);
    session.start(() => {
      admitted();
      this.#sessions.delete(session);
    });
    this.#log.info(`${from.peer} connected (WebSocket${from.secure ? ", TLS" : ""})`);
    return undefined;
  }

  /** Closes every browser and leaves the bus. */
  close(): void {
    this.#relay.bus.unsubscribe(this.#tap);
    this.#tap.discard();
    for (const session of [...this.#sessions]) session.end("disconnected", "server shutting down");
    this.#browsers.close();
  }

  /** @internal The relay's options and log, for sessions. */
  get relay(): Relay {
    return this.#relay;
  }

  /** @internal */
  get log(): Logger {
    return this.#log;
  }

  /**
   * @internal Sends the welcome with `sendWelcome`, then subscribes a browser's queue, with
   * what it missed queued first. The welcome goes before any record: the page reads a record's
   * number in the epoch the welcome named, and a record ahead of it would be read in the epoch
   * of the page's previous connection (and skipped, after a restart).
   */
  join(queue: DisplayQueue, hello: Hello, sendWelcome: (text: string) => void): void {
    const records = this.#missed(hello);
    const welcome: Welcome = {
      type: "welcome",
      epoch: this.epoch,
      seq: records.length > 0 ? records[0].seq - 1 : this.#seq,
      maxFrame: this.#relay.options.maxFrame,
    };
    sendWelcome(JSON.stringify(welcome));
    if (records.length > 0) queue.enqueue(encodeRecords(records));
    this.#browsers.subscribe(queue);
  }

  /** @internal */
  leave(queue: DisplayQueue): void {
    this.#browsers.unsubscribe(queue);
  }

  /** The kept records a browser saying `hello` has not seen. */
  #missed(hello: Hello): WebRecord[] {
    const resume = hello.resume;
    if (!resume) return this.#replayToNew ? this.#kept.slice() : [];
    if (resume.epoch === this.epoch) return this.#kept.filter((r) => r.seq > resume.seq);
    for (let i = this.#kept.length - 1; i >= 0; i--) {
      if (fingerprint(this.#kept[i].frame) === resume.tail) return this.#kept.slice(i + 1);
    }
    return this.#kept.slice();
  }

  /**
   * Numbers runs of big-endian frames from the bus and hands them, as one message of records,
   * to every browser; returns the runs' length. The records kept are views into that message:
   * one copy of the runs, not one per frame, pinning at most the kept frames' bytes plus one
   * message.
   */
  #number(runs: readonly Uint8Array[]): number {
    let length = 0;
    let count = 0;
    for (const frames of runs) {
      const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
      for (let at = 0; at < frames.length; at += LENGTH_FIELD_SIZE + view.getInt32(at)) count++;
      length += frames.length;
    }
    const message = new Uint8Array(length + count * SEQ_SIZE);
    const out = new DataView(message.buffer);
    let to = 0;
    for (const frames of runs) {
      const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
      for (let at = 0; at < frames.length;) {
        const size = LENGTH_FIELD_SIZE + view.getInt32(at);
        const seq = ++this.#seq;
        out.setBigUint64(to, BigInt(seq));
        to += SEQ_SIZE;
        message.set(frames.subarray(at, at + size), to);
        this.#kept.push({ seq, frame: message.subarray(to, to + size) });
        this.#keptBytes += size;
        to += size;
        at += size;
      }
    }
    // The oldest go past KEEP records or KEEP_BYTES (the newest record always stays).
    let drop = 0;
    const left = () => this.#kept.length - drop;
    while (left() > KEEP || (left() > 1 && this.#keptBytes > KEEP_BYTES)) {
      this.#keptBytes -= this.#kept[drop++].frame.length;
    }
    if (drop > 0) this.#kept.splice(0, drop);
    this.#browsers.publish(message, false);
    return length;
  }
}

/**
 * Writes a browser's queued records as WebSocket messages, one per chunk; waits while the
 * socket's own buffer is over {@linkcode SOCKET_HIGH_WATER}, so that a browser that does not
 * read shows up as a stalled write, as a TCP display does. A browser that joins while records
 * are on their way gets them once: what it missed is queued before it subscribes, and the
 * fan-out does not hand a subscriber the runs published before it joined (lib/server/bus.ts).
 */
class SocketWriter implements Writable {
  #socket: WebSocket;

  constructor(socket: WebSocket) {
    this.#socket = socket;
  }

  async write(bytes: Uint8Array): Promise<number> {
    // Messages under malloc's mmap threshold (deno task server sets it to 64 KiB): Deno copies
    // each message it sends, and a larger copy is a fresh mapping, faulted in page by page.
    if (bytes.length <= MESSAGE_LIMIT) {
      this.#open().send(bytes);
    } else {
      // A long chunk (a replay, say) goes a piece at a time, each once the socket has room:
      // Deno's copies of what it has not written stay within the high-water mark.
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      let from = 0;
      for (let at = 0; at < bytes.length;) {
        const next = at + SEQ_SIZE + LENGTH_FIELD_SIZE + view.getInt32(at + SEQ_SIZE);
        if (next - from > MESSAGE_LIMIT && at > from) {
          this.#open().send(bytes.subarray(from, at));
          await this.#drained();
          from = at;
        }
        at = next;
      }
      this.#open().send(bytes.subarray(from));
    }
    await this.#drained();
    return bytes.length;
  }

  /** The socket, or a BrokenPipe once it has closed. */
  #open(): WebSocket {
    if (this.#socket.readyState !== WebSocket.OPEN) {
      throw new Deno.errors.BrokenPipe("the WebSocket is closed");
    }
    return this.#socket;
  }

  /** Resolves once the socket's buffer is at most {@linkcode SOCKET_HIGH_WATER}. */
  async #drained(): Promise<void> {
    while (this.#socket.bufferedAmount > SOCKET_HIGH_WATER) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      this.#open();
    }
  }
}

/** One browser: its hello deadline, its keyboard session, its queue, and its single end. */
class BrowserSession {
  #socket: WebSocket;
  #from: WebPeer;
  #gateway: WebGateway;
  #queue: DisplayQueue | undefined;
  #session: KeyboardSession | undefined;
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  /** Messages received while paused (flood control, back-pressure), in order. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #paused = false;
  #ended = false;
  #release: () => void = () => {};

  constructor(socket: WebSocket, from: WebPeer, gateway: WebGateway) {
    this.#socket = socket;
    this.#from = from;
    this.#gateway = gateway;
    socket.binaryType = "arraybuffer";
  }

  get held(): number {
    return (this.#queue?.ownBytes ?? 0) + this.#heldBytes;
  }

  evict(reason: string): void {
    this.end("dropped", reason);
  }

  refuse(reason: string): void {
    this.#ended = true;
    const close = () => this.#socket.close(1013, reason.slice(0, 120));
    if (this.#socket.readyState === WebSocket.OPEN) close();
    else this.#socket.onopen = close;
  }

  start(release: () => void): void {
    this.#release = release;
    const { identifyTimeout } = this.#gateway.relay.options;
    this.#helloTimer = setTimeout(
      () => this.end("dropped", `no hello within ${identifyTimeout} s`),
      identifyTimeout * 1000,
    );
    this.#socket.onmessage = (event) => this.#receive(event.data);
    this.#socket.onclose = () => this.end("disconnected", "closed by peer");
    this.#socket.onerror = (event) => {
      const message = (event as ErrorEvent).message ?? "WebSocket error";
      this.end("disconnected", message);
    };
  }

  /** Ends the browser with exactly one log line. */
  end(how: "disconnected" | "dropped", reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#helloTimer);
    if (this.#queue) {
      this.#gateway.leave(this.#queue);
      this.#queue.discard();
    }
    this.#session?.release();
    this.#held = [];
    this.#heldBytes = 0;
    this.#release();
    try {
      if (this.#socket.readyState <= WebSocket.OPEN) {
        this.#socket.close(how === "dropped" ? 1008 : 1001, reason.slice(0, 120));
      }
    } catch {
      // Closed by the runtime already.
    }
    const role = this.#session ? "browser" : "unidentified";
    const line = `${this.#from.peer} ${how} (${role}): ${reason}`;
    if (how === "dropped") this.#gateway.log.warn(line);
    else this.#gateway.log.info(line);
  }

  #receive(data: unknown): void {
    if (this.#ended) return;
    if (!this.#session) return this.#hello(data);
    if (typeof data === "string") return this.end("dropped", "text message after the hello");
    const bytes = new Uint8Array(data as ArrayBuffer);
    const limit = LENGTH_FIELD_SIZE + this.#gateway.relay.options.maxFrame;
    if (bytes.length > limit) {
      return this.end(
        "dropped",
        `WebSocket message of ${bytes.length} bytes, larger than a frame may be (${limit})`,
      );
    }
    if (this.#paused) return this.#hold(bytes);
    this.#frames(bytes);
  }

  #hello(data: unknown): void {
    clearTimeout(this.#helloTimer);
    if (typeof data !== "string") return this.end("dropped", "binary message before the hello");
    let hello: Hello;
    try {
      hello = parseHello(data);
    } catch (error) {
      return this.end("dropped", (error as Error).message);
    }
    const relay = this.#gateway.relay;
    this.#session = new KeyboardSession({ ...relay.options, littleEndian: false }, Date.now());
    this.#queue = new DisplayQueue(
      new SocketWriter(this.#socket),
      false,
      relay.options,
      (reason) => this.end("dropped", reason),
    );
    const resume = hello.resume
      ? ` (resuming after ${hello.resume.seq} of epoch ${hello.resume.epoch})`
      : "";
    this.#gateway.log.info(`${this.#from.peer} identified as browser${resume}`);
    this.#gateway.join(this.#queue, hello, (welcome) => this.#socket.send(welcome));
  }

  /** Validates and publishes one message's frames; pauses when over the rate. */
  #frames(bytes: Uint8Array): void {
    const session = this.#session!;
    const received = session.receive(bytes, Date.now());
    const bus = this.#gateway.relay.bus;
    if (received.frames.length > 0) bus.publish(received.frames, false);
    if (received.drop) return this.end("dropped", received.drop);
    if (session.inFrame) {
      return this.end("dropped", "a WebSocket message must hold whole frames");
    }
    const ready = bus.ready();
    if (received.pauseMs > 0 || ready) {
      this.#paused = true;
      const wait = ready ?? new Promise((resolve) => setTimeout(resolve, received.pauseMs));
      wait.then(() => this.#resume());
    }
  }

  #hold(bytes: Uint8Array): void {
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
    if (this.#heldBytes > HELD_LIMIT) {
      this.end(
        "dropped",
        `flooding: ${this.#heldBytes} bytes sent while paused over --keyboard-rate`,
      );
    }
  }

  #resume(): void {
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused && !this.#ended) {
      const next = this.#held.shift()!;
      this.#heldBytes -= next.length;
      this.#frames(next);
    }
  }
}
