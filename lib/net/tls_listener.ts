/**
 * The server's TLS listener: TCP from `Deno.listen`, TLS from node:tls on top of it, instead
 * of `Deno.listenTls`.
 *
 * Why: a `Deno.TlsConn` whose handshake has not finished cannot be closed. `close()` hands the
 * socket to a task that waits for the handshake to end (rustls-tokio-stream's `Drop`), with no
 * time limit, so a client that connects to the TLS port and sends nothing keeps its socket,
 * and the server's descriptor, for as long as it likes, whatever the handshake timeout or the
 * connection limit say. Here the TCP connection is the server's own, which closes when told
 * to, in mid-handshake or not. Accepting stays with `Deno.listen`: node:net's server in Deno
 * 2.9 stops accepting for good after one EMFILE, where the relay's accept loop backs off and
 * recovers. Each of these bugs has a canary in tests/tls_listener_test.ts that fails the day
 * the pinned Deno fixes it, so the workaround can go. A second gain: a new certificate applies to new connections without closing the
 * listening socket, so a reload refuses nobody.
 *
 * Each accepted connection is moved onto a native node:net socket (native_socket.ts), so that
 * node:tls reads, encrypts and writes in Rust; only plaintext crosses into JavaScript. Where
 * that cannot be done, a Node stream over the `Deno.TcpConn` stands in: the same behaviour at
 * about half the throughput (BENCHMARKS.md).
 *
 * The connections it hands out are {@linkcode RelayConn}s, with the error classes of
 * `Deno.TlsConn` (and TlsError for record errors after the handshake).
 *
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";
import type { RelayConn, RelayListener } from "./relay_conn.ts";
import { writeAll } from "./wire_io.ts";
import { TlsError } from "./io_errors.ts";
import {
  denoError,
  Inbox,
  NativeSocket,
  type NodeError,
  tlsError,
  writeTo,
} from "./native_socket.ts";

/** A certificate and key in PEM. */
export interface TlsKeys {
  cert: string;
  key: string;
}

/** A TLS record: fatal alert, unexpected_message. */
const HANDSHAKE_FAILURE_ALERT = Uint8Array.of(0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a);
/** How long a closing connection may take to send its close_notify. */
const CLOSE_GRACE_MS = 1000;
/** How long a failed connection may take to send its alert before its sockets close. */
const ALERT_GRACE_MS = 200;
/** Bytes read from the TCP connection at a time. */
const READ_SIZE = 16 * 1024;

/**
 * Stops the reading of a TCP connection while its reader is behind. Node streams' own pause()
 * does not reach through node:tls to the stream underneath, so the gate sits there itself.
 */
class Gate {
  #closed = false;
  #open: (() => void) | undefined;

  close(): void {
    this.#closed = true;
  }

  open(): void {
    this.#closed = false;
    this.#open?.();
    this.#open = undefined;
  }

  /** Resolves at once while open, else when next opened. */
  async pass(): Promise<void> {
    while (this.#closed) await new Promise<void>((resolve) => this.#open = resolve);
  }
}

/** A Node stream over a Deno TCP connection, for node:tls to run on. */
function duplexOf(conn: Deno.TcpConn, gate: Gate, lost: (error?: Error) => void): Duplex {
  let pumping = false;
  const duplex: Duplex = new Duplex({
    read() {
      if (pumping) return;
      pumping = true;
      (async () => {
        try {
          for (;;) {
            await gate.pass();
            // A fresh buffer each time: push() keeps what it is given.
            const buffer = new Uint8Array(READ_SIZE);
            const n = await conn.read(buffer);
            if (n === null) {
              lost();
              return void duplex.push(null);
            }
            if (!duplex.push(buffer.subarray(0, n))) break;
          }
        } catch (error) {
          lost(error as Error);
          duplex.destroy(error as Error);
        }
        pumping = false;
      })();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(conn, chunk).then(() => callback(), callback);
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), callback);
    },
    destroy(error, callback) {
      // The TCP connection is NodeTlsConn's to close: it may have an alert to send first.
      callback(error);
    },
  });
  return duplex;
}

/** One TLS connection over a TCP connection the server can close at any time. */
export class NodeTlsConn implements RelayConn {
  readonly secure = true;
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  #tcp: Deno.TcpConn;
  #context: tls.SecureContext;
  /** Created on first use: a connection refused at once never gets one (see #start). */
  #tls: tls.TLSSocket | undefined;
  /** The native socket the connection moved to, if it could (see native_socket.ts). */
  #native: NativeSocket | undefined;
  /** Holds back the reading of the fallback stream while the reader is behind. */
  #gate = new Gate();
  #inbox = new Inbox((on) =>
    this.#native ? this.#native.setReading(on) : this.#gate[on ? "open" : "close"]()
  );
  #handshake: Promise<void> | undefined;
  #closed = false;
  /** Whether the sockets are closed or closing: by close(), or by a TLS error. */
  #destroyed = false;
  #secure = false;
  #handshakeFailed = false;
  #peerLeft: (error?: Error) => void = () => {};

  #tryNative: boolean;

  /** `native: false` keeps the Node stream over `tcp` (the fallback; for tests). */
  constructor(tcp: Deno.TcpConn, context: tls.SecureContext, native = true) {
    this.#tcp = tcp;
    this.#context = context;
    this.#tryNative = native;
    this.remoteAddr = tcp.remoteAddr;
    this.localAddr = tcp.localAddr;
  }

  /**
   * Starts TLS on the connection. Not in the constructor: a node:tls socket destroyed in the
   * same turn it was made is never released (12 KB a time, found by the soak's floods), and
   * the connections refused over the limit are closed in that turn. A canary in
   * tests/tls_listener_test.ts fails the day Deno frees them.
   */
  #start(): tls.TLSSocket {
    if (this.#tls) return this.#tls;
    this.#native = this.#tryNative ? NativeSocket.adopt(this.#tcp) : undefined;
    const stream = this.#native?.socket ??
      duplexOf(this.#tcp, this.#gate, (e) => this.#peerLeft(e));
    const socket = new tls.TLSSocket(stream, { isServer: true, secureContext: this.#context });
    this.#tls = socket;
    this.#handshake = new Promise<void>((resolve, reject) => {
      socket.once("secure", () => {
        this.#secure = true;
        resolve();
      });
      socket.once("error", (error: NodeError) => reject(tlsError(error) ?? denoError(error)));
      socket.once("close", () => reject(new Error("the peer closed the connection")));
      // On a native socket, a peer that leaves in mid-handshake shows as the end of the stream.
      socket.once("end", () => this.#peerLeft());
      // node:tls here does not notice a peer that leaves in mid-handshake: the TCP side does.
      this.#peerLeft = (error) => {
        if (this.#secure) return;
        this.#inbox.fail(error ?? new Error("the peer closed the connection"));
        reject(this.#inbox.error);
      };
    });
    // Nobody may be waiting on the handshake when it fails; the error is kept for read().
    this.#handshake.catch(() => {});
    socket.on("data", (chunk: Uint8Array) => this.#inbox.push(chunk));
    socket.on("end", () => this.#inbox.end());
    socket.on("error", (error: NodeError) => {
      if (!this.#secure) this.#handshakeFailed = true;
      const fatal = this.#secure ? tlsError(error) : undefined;
      if (fatal) return this.#abort(fatal);
      this.#inbox.fail(denoError(error));
    });
    // After the handshake, node:tls (Deno's, like Node's) gives an error to 'error' listeners
    // only once the socket's owner has released control of it, as tls.Server does on
    // 'secure'; a TLSSocket made by hand is never released, so a record it cannot decrypt
    // shows only as this internal event: rustls sends its alert, and the socket stays open.
    // Other errors reported this way (a reset underneath) stay as they were: the end follows.
    socket.on("_tlsError", (error: NodeError) => {
      const fatal = this.#secure ? tlsError(error) : undefined;
      if (fatal) this.#abort(fatal);
    });
    socket.on("close", () => this.#inbox.end());
    return socket;
  }

  /**
   * A TLS error after the handshake is fatal: read() and write() fail with it from now on, and
   * the connection closes at once, reader or not, right behind rustls's alert.
   */
  #abort(error: TlsError): void {
    this.#inbox.fail(error);
    this.#destroy();
  }

  /** Resolves once the TLS handshake is complete; rejects if it fails or the peer leaves. */
  handshake(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("the connection is closed"));
    }
    this.#start();
    return this.#handshake!;
  }

  /** Reads decrypted bytes into `buffer`; null at the end of the stream. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (!this.#closed) this.#start();
    return await this.#inbox.read(buffer, () => this.#closed);
  }

  /** Writes `bytes`; resolves with their length once the socket has taken them. */
  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("the connection is closed"));
    }
    if (this.#inbox.error) return Promise.reject(this.#inbox.error);
    return writeTo(this.#start(), bytes, () => this.#closed);
  }

  /** Sends close_notify and the TCP FIN; resolves once they are written. */
  closeWrite(): Promise<void> {
    if (this.#closed || this.#destroyed) return Promise.resolve();
    const socket = this.#start();
    return new Promise<void>((resolve) => socket.end(resolve));
  }

  /**
   * Closes the connection. After a handshake, the peer is sent a close_notify first, so that
   * it sees the end of the stream rather than a cut; a peer that does not take it gets
   * {@linkcode CLOSE_GRACE_MS}. In mid-handshake the socket is closed at once.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the connection is already closed");
    this.#closed = true;
    this.#gate.open();
    this.#inbox.wake();
    if (!this.#secure || this.#inbox.error) return this.#destroy();
    const timer = setTimeout(() => this.#destroy(), CLOSE_GRACE_MS);
    this.#tls!.end(() => {
      clearTimeout(timer);
      this.#destroy();
    });
  }

  /** Closes the sockets, once: at once, or after a TLS error behind the alert. */
  #destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const socket = this.#tls;
    if (!socket || !(this.#inbox.error instanceof TlsError)) return this.#closeSockets();
    // rustls queues its alert for a bad record, and a TLS socket destroyed now would drop it:
    // on a native socket, behind a write still under way (the session tickets, just after
    // the handshake); on the fallback stream, always, as the alert reaches the stream only
    // after the microtasks that follow the error. So: one turn of the event loop for it to
    // be queued, then the TLS socket ended (its FIN goes after what it holds), then closed,
    // or after ALERT_GRACE_MS if the peer does not read.
    setTimeout(() => {
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        this.#closeSockets();
      };
      const timer = setTimeout(close, ALERT_GRACE_MS);
      socket.end(close);
    }, 0);
  }

  #closeSockets(): void {
    this.#tls?.destroy();
    // A native socket's TLS sends its own alert when a handshake fails.
    if (this.#native) return this.#native.close();
    const closeTcp = () => {
      try {
        this.#tcp.close();
      } catch {
        // Already closed.
      }
    };
    if (!this.#handshakeFailed) return closeTcp();
    // A failed handshake gets a fatal alert, as rustls would send, so that a client that
    // spoke plain TCP to this port can tell (node:tls here drops the connection silently).
    const timer = setTimeout(closeTcp, ALERT_GRACE_MS);
    this.#tcp.write(HANDSHAKE_FAILURE_ALERT).catch(() => {}).finally(() => {
      clearTimeout(timer);
      closeTcp();
    });
  }

  setNoDelay(noDelay = true): void {
    if (this.#native) this.#native.socket.setNoDelay(noDelay);
    else this.#tcp.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    if (this.#native) this.#native.socket.setKeepAlive(keepAlive);
    else this.#tcp.setKeepAlive(keepAlive);
  }

  /** A TLS connection is on a native socket already, where it could be moved. */
  forDisplay(): RelayConn {
    return this;
  }
}

/**
 * Accepts TCP connections and wraps each in TLS with the current certificate. Shaped like
 * the part of `Deno.Listener` the relay uses: `accept()`, `close()` and `addr`; accept errors
 * (EMFILE) come out of `accept()` as from Deno's, for the relay's loop to back off.
 */
export class NodeTlsListener implements RelayListener {
  readonly addr: Deno.NetAddr;
  #listener: Deno.TcpListener;
  #context: tls.SecureContext;
  #native: boolean;

  /** `native: false` keeps every connection on the fallback stream (for tests). */
  constructor(listener: Deno.TcpListener, context: tls.SecureContext, native = true) {
    this.#native = native;
    this.#listener = listener;
    this.#context = context;
    this.addr = listener.addr;
  }

  /** A TLS context for `keys`; throws if the certificate or key is unusable or they differ. */
  static context(keys: TlsKeys): tls.SecureContext {
    const context = tls.createSecureContext({ cert: keys.cert, key: keys.key });
    // node:tls here takes a key that does not match the certificate, and every handshake
    // would then fail; rustls checks the pair, so let it, on a throwaway listener.
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...keys }).close();
    return context;
  }

  /** Uses `context` for connections accepted from now on; open ones keep theirs. */
  setContext(context: tls.SecureContext): void {
    this.#context = context;
  }

  /** The next connection; its handshake starts at once and is the caller's to wait for. */
  async accept(): Promise<RelayConn> {
    return new NodeTlsConn(await this.#listener.accept(), this.#context, this.#native);
  }

  /** Stops listening; connections already accepted are not affected. */
  close(): void {
    this.#listener.close();
  }
}
