/**
 * Puts relays on the network: the single server, or the course's four reference servers in
 * one process, with certificate reload for TLS listeners.
 *
 * @module
 */

import type { Logger } from "../cli/log.ts";
import { startRandomMessages } from "./random_source.ts";
import { PlainListener, type RelayListener } from "../net/relay_conn.ts";
import { ConnectionCount, Relay, type RelayOptions } from "./relay.ts";
import { NodeTlsListener } from "../net/tls_listener.ts";
import { formatAddress, type KeyPair, listen, readKeyPair } from "../net/transport.ts";
import { explainError, UsageError } from "../cli/user_errors.ts";
import { WebEndpoint, type WebSpec } from "./web/web_server.ts";
import type { HistoryStore } from "./history/store.ts";

/** Where one listener goes and what it serves. */
export interface EndpointSpec {
  /** Shown in log lines, e.g. "full server". */
  label: string;
  host: string;
  port: number;
  /** Certificate and key files; plain TCP without them. */
  certFile?: string;
  keyFile?: string;
}

/** One listener of a relay; a TLS one can swap its certificate without dropping anyone. */
export class Endpoint {
  readonly spec: EndpointSpec;
  readonly port: number;
  #listener: RelayListener;
  #log: Logger;

  private constructor(spec: EndpointSpec, listener: RelayListener, port: number, log: Logger) {
    this.spec = spec;
    this.#listener = listener;
    this.port = port;
    this.#log = log;
  }

  /**
   * Reads the certificate and opens the listening socket, without serving yet: a server with
   * several listeners checks them all before it says it listens anywhere.
   */
  static async open(spec: EndpointSpec, log: Logger): Promise<Endpoint> {
    const keys = await Endpoint.#readKeys(spec);
    // TLS goes through node:tls over a socket the server owns, so that a stalled handshake
    // can be cut off (see tls_listener.ts); plain TCP through Deno.listen.
    const context = keys ? tlsContext(spec, keys) : undefined;
    const socket = listen(spec.host, spec.port) as Deno.TcpListener;
    const listener = context ? new NodeTlsListener(socket, context) : new PlainListener(socket);
    return new Endpoint(spec, listener, listener.addr.port, log);
  }

  /** Hands the listener to `relay` and says where it listens (the label says whether TLS). */
  serve(relay: Relay): void {
    relay.serve(this.#listener);
    this.#log.info(`${this.spec.label} listening on ${this.address}`);
  }

  /** Closes a listener that never served (another listener of the server failed to open). */
  discard(): void {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
  }

  static async #readKeys(spec: EndpointSpec): Promise<KeyPair | undefined> {
    if (!spec.certFile || !spec.keyFile) return undefined;
    return await readKeyPair(spec.certFile, spec.keyFile);
  }

  get address(): string {
    return formatAddress(this.spec.host, this.port);
  }

  get tls(): boolean {
    return this.spec.certFile !== undefined;
  }

  /**
   * Loads the certificate and key again for new connections. Connections already open carry
   * on untouched, and the listening socket stays open, so nobody is refused meanwhile. A
   * pair that cannot be used (unreadable, not PEM, key not matching) keeps the old one
   * serving. Never throws: the outcome is logged.
   */
  async reload(): Promise<void> {
    if (!(this.#listener instanceof NodeTlsListener)) return;
    try {
      const keys = (await Endpoint.#readKeys(this.spec))!;
      this.#listener.setContext(tlsContext(this.spec, keys));
    } catch (error) {
      return this.#log.error(
        `${this.spec.label}: certificate not reloaded, keeping the old one: ${explainError(error)}`,
      );
    }
    this.#log.info(`${this.spec.label} on ${this.address}: certificate reloaded`);
  }
}

/** The TLS context for an endpoint's key pair; a pair that cannot serve is a UsageError. */
function tlsContext(spec: EndpointSpec, keys: KeyPair): ReturnType<typeof NodeTlsListener.context> {
  try {
    return NodeTlsListener.context(keys);
  } catch (error) {
    throw new UsageError(keyPairProblem(spec, error));
  }
}

/** One sentence for a certificate and key that cannot serve together. */
function keyPairProblem(spec: EndpointSpec, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/KeyMismatch|not be consistent|does not match/i.test(message)) {
    return `The key ${spec.keyFile} does not belong to the certificate ${spec.certFile} ` +
      "(they come from different pairs: use the key that was made with that certificate).";
  }
  return `The certificate ${spec.certFile} and key ${spec.keyFile} cannot be used: ${
    explainError(error)
  }`;
}

/** A relay and where it listens, with an optional random-message source. */
export interface RelaySpec {
  endpoints: EndpointSpec[];
  /** Seconds between random messages; 0 or absent for none. */
  randomEvery?: number;
  /** The web chat's listener (--web), if asked for. */
  web?: WebSpec;
  /** Whether this relay keeps the process's history (--history); one relay at most. */
  history?: boolean;
}

/** Everything a server process runs. */
export class ServerHost {
  readonly relays: Relay[] = [];
  readonly endpoints: Endpoint[] = [];
  readonly webEndpoints: WebEndpoint[] = [];
  #stops: (() => void)[] = [];
  #reloading = Promise.resolve();
  #history: HistoryStore | undefined;

  /**
   * Starts every relay. Every certificate is read and every port opened before any listener
   * serves or is announced, so a server that cannot start says only why; if any cannot open,
   * those that did are closed and the error is rethrown.
   */
  static async start(
    specs: RelaySpec[],
    options: Partial<RelayOptions>,
    log: Logger,
    history?: HistoryStore,
  ): Promise<ServerHost> {
    const host = new ServerHost();
    host.#history = history;
    const opened: Endpoint[][] = [];
    try {
      for (const spec of specs) {
        const endpoints: Endpoint[] = [];
        opened.push(endpoints);
        for (const endpoint of spec.endpoints) endpoints.push(await Endpoint.open(endpoint, log));
      }
    } catch (error) {
      for (const endpoint of opened.flat()) endpoint.discard();
      throw error;
    }
    // One count for all relays: the limits are the process's.
    const count = new ConnectionCount(options.maxClientMemory);
    specs.forEach((spec, i) => {
      const relay = new Relay(options, log, count, spec.history ? history : undefined);
      host.relays.push(relay);
      for (const endpoint of opened[i]) {
        endpoint.serve(relay);
        host.endpoints.push(endpoint);
      }
      if (spec.randomEvery) {
        host.#stops.push(startRandomMessages(spec.randomEvery, (f) => relay.broadcast(f)));
      }
    });
    // The web listeners join their relays' buses, so they open once the relays exist.
    try {
      for (const [i, spec] of specs.entries()) {
        if (!spec.web) continue;
        // With history, a page opened afresh gets the recent messages too, as a display does.
        const web = { ...spec.web, replayToNew: spec.history === true && history !== undefined };
        host.webEndpoints.push(await WebEndpoint.open(web, host.relays[i], log));
      }
    } catch (error) {
      await host.close();
      throw error;
    }
    return host;
  }

  /** Reloads every TLS endpoint's certificate; reloads asked for meanwhile queue up. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      for (const endpoint of this.endpoints) await endpoint.reload();
      for (const endpoint of this.webEndpoints) await endpoint.reload();
    });
    return this.#reloading;
  }

  async close(): Promise<void> {
    for (const stop of this.#stops) stop();
    await Promise.all(this.webEndpoints.map((endpoint) => endpoint.close()));
    await Promise.all(this.relays.map((relay) => relay.close()));
    this.#history?.close();
  }
}
