/**
 * The one connection type the relay holds, and the one listener type it accepts from: plain
 * TCP, TLS (tls_listener.ts) and native sockets (native_socket.ts) implement them, as a
 * WebSocket will. The relay never asks which kind it has.
 *
 * @module
 */

import { NativeConn } from "./native_socket.ts";

/** A client connection as the relay uses it. Errors are `Deno.errors.*` classes, or TlsError. */
export interface RelayConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  /** Whether the bytes are encrypted (TLS); the log says so. */
  readonly secure: boolean;
  /** Resolves once the connection's own handshake is done (TLS); at once where it has none. */
  handshake(): Promise<void>;
  /** Reads into `buffer`; null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes`; resolves with how many the connection took. */
  write(bytes: Uint8Array): Promise<number>;
  /**
   * Where the connection can: writes all of `chunks`, in order, in as few system calls as
   * it can, without joining them; resolves with their total length.
   */
  readonly writev?: (chunks: readonly Uint8Array[]) => Promise<number>;
  /** Ends the sending side in order (for TLS, a close_notify first), reading on. */
  closeWrite(): Promise<void>;
  /** Closes at once; throws BadResource if it is closed already. */
  close(): void;
  setKeepAlive(on: boolean): void;
  setNoDelay(on: boolean): void;
  /**
   * The connection a display's stream is written on: this one, or a faster equivalent (a plain
   * TCP connection moves onto a native socket). Called once, before the first write; the
   * connection returned replaces this one.
   */
  forDisplay(): RelayConn;
}

/** A listener as the relay uses it. */
export interface RelayListener {
  readonly addr: Deno.NetAddr;
  /** The next connection; rejects as `Deno.Listener.accept()` does (EMFILE, BadResource). */
  accept(): Promise<RelayConn>;
  close(): void;
}

/** A plain TCP connection from `Deno.listen`. */
export class PlainConn implements RelayConn {
  readonly secure = false;
  readonly #tcp: Deno.TcpConn;

  constructor(tcp: Deno.TcpConn) {
    this.#tcp = tcp;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#tcp.remoteAddr;
  }

  get localAddr(): Deno.NetAddr {
    return this.#tcp.localAddr;
  }

  handshake(): Promise<void> {
    return Promise.resolve();
  }

  read(buffer: Uint8Array): Promise<number | null> {
    return this.#tcp.read(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#tcp.write(bytes);
  }

  closeWrite(): Promise<void> {
    return this.#tcp.closeWrite();
  }

  close(): void {
    this.#tcp.close();
  }

  setKeepAlive(on: boolean): void {
    this.#tcp.setKeepAlive(on);
  }

  setNoDelay(on: boolean): void {
    this.#tcp.setNoDelay(on);
  }

  /**
   * A native socket where one can be made: its writes are made in the call rather than when
   * the event loop next polls an op (with 1000 displays, about a quarter of the p99 latency).
   */
  forDisplay(): RelayConn {
    return NativeConn.adopt(this.#tcp) ?? this;
  }
}

/** Plain TCP connections from a `Deno.listen` listener. */
export class PlainListener implements RelayListener {
  readonly #listener: Deno.TcpListener;

  constructor(listener: Deno.TcpListener) {
    this.#listener = listener;
  }

  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  async accept(): Promise<RelayConn> {
    return new PlainConn(await this.#listener.accept());
  }

  close(): void {
    this.#listener.close();
  }
}
