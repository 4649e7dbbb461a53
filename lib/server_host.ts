/**
 * Puts relays on the network: the single server, or the course's four reference servers in
 * one process, with certificate reload for TLS listeners.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import { startRandomMessages } from "./random_source.ts";
import { Relay, type RelayOptions } from "./relay_server.ts";
import { formatAddress, type KeyPair, listen, readKeyPair } from "./transport.ts";
import { explainError } from "./user_errors.ts";

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
  #relay: Relay;
  #listener: Deno.Listener;
  #log: Logger;

  private constructor(spec: EndpointSpec, relay: Relay, listener: Deno.Listener, log: Logger) {
    this.spec = spec;
    this.#relay = relay;
    this.#listener = listener;
    this.#log = log;
  }

  /** Opens the listener (reading the certificate first) and starts serving. */
  static async open(spec: EndpointSpec, relay: Relay, log: Logger): Promise<Endpoint> {
    const keys = await Endpoint.#readKeys(spec);
    const listener = listen(spec.host, spec.port, keys);
    const endpoint = new Endpoint(spec, relay, listener, log);
    relay.serve(listener, keys !== undefined);
    log.info(`${spec.label} listening on ${endpoint.address}${keys ? " (TLS)" : ""}`);
    return endpoint;
  }

  static async #readKeys(spec: EndpointSpec): Promise<KeyPair | undefined> {
    if (!spec.certFile || !spec.keyFile) return undefined;
    return await readKeyPair(spec.certFile, spec.keyFile);
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  get address(): string {
    return formatAddress(this.spec.host, this.port);
  }

  get tls(): boolean {
    return this.spec.certFile !== undefined;
  }

  /**
   * Loads the certificate and key again for new connections. Connections already open carry
   * on untouched: only the listener is replaced. A bad new pair keeps the old one serving.
   */
  async reload(): Promise<void> {
    if (!this.tls) return;
    let keys: KeyPair | undefined;
    try {
      keys = await Endpoint.#readKeys(this.spec);
    } catch (error) {
      return this.#log.error(
        `${this.spec.label}: certificate not reloaded, keeping the old one: ${explainError(error)}`,
      );
    }
    const port = this.port;
    this.#relay.unserve(this.#listener);
    try {
      this.#listener = listen(this.spec.host, port, keys);
    } catch (error) {
      this.#log.error(
        `${this.spec.label}: certificate not reloaded, keeping the old one: ${explainError(error)}`,
      );
      const old = await Endpoint.#readKeys(this.spec).catch(() => undefined);
      this.#listener = listen(this.spec.host, port, old);
    }
    this.#relay.serve(this.#listener, true);
    this.#log.info(`${this.spec.label} on ${this.address}: certificate reloaded`);
  }
}

/** A relay and where it listens, with an optional random-message source. */
export interface RelaySpec {
  endpoints: EndpointSpec[];
  /** Seconds between random messages; 0 or absent for none. */
  randomEvery?: number;
}

/** Everything a server process runs. */
export class ServerHost {
  readonly relays: Relay[] = [];
  readonly endpoints: Endpoint[] = [];
  #stops: (() => void)[] = [];

  /** Starts every relay; if any listener cannot open, closes what did and rethrows. */
  static async start(
    specs: RelaySpec[],
    options: Partial<RelayOptions>,
    log: Logger,
  ): Promise<ServerHost> {
    const host = new ServerHost();
    try {
      for (const spec of specs) {
        const relay = new Relay(options, log);
        host.relays.push(relay);
        for (const endpoint of spec.endpoints) {
          host.endpoints.push(await Endpoint.open(endpoint, relay, log));
        }
        if (spec.randomEvery) {
          host.#stops.push(startRandomMessages(spec.randomEvery, (f) => relay.broadcast(f)));
        }
      }
    } catch (error) {
      await host.close();
      throw error;
    }
    return host;
  }

  /** Reloads every TLS endpoint's certificate. */
  async reload(): Promise<void> {
    for (const endpoint of this.endpoints) await endpoint.reload();
  }

  async close(): Promise<void> {
    for (const stop of this.#stops) stop();
    await Promise.all(this.relays.map((relay) => relay.close()));
  }
}
