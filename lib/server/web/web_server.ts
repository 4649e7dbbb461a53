/**
 * The web listener (`--web [HOST:]PORT`): serves the chat page from web/ and upgrades `/ws` to
 * the gateway (gateway.ts), on `Deno.serve` and `Deno.upgradeWebSocket`. HTTPS and WSS with
 * the server's certificate when it has one. Only a fixed list of files is served, read once at
 * start: there is no directory listing and no path to traverse.
 *
 * @module
 */

import type { Logger } from "../../cli/log.ts";
import type { KeyPair } from "../../net/transport.ts";
import { formatAddress, readKeyPair } from "../../net/transport.ts";
import { explainError, UsageError } from "../../cli/user_errors.ts";
import type { Relay } from "../relay.ts";
import { WebGateway } from "./gateway.ts";

/** Where the web listener goes and what it allows. */
export interface WebSpec {
  host: string;
  port: number;
  certFile?: string;
  keyFile?: string;
  /** Origins allowed besides the page's own (`--web-origin`), e.g. "https://chat.example". */
  origins: string[];
  /** Whether a browser connecting afresh gets the messages kept (the relay keeps history). */
  replayToNew?: boolean;
}

/** The files served: URL path to file name in web/ and its type. */
const FILES: Record<string, [string, string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
  "/icon.svg": ["icon.svg", "image/svg+xml"],
};

/** Longest request target accepted. */
const MAX_URL = 2048;
/** Seconds between WebSocket pings; a browser that answers none within it is closed. */
const IDLE_TIMEOUT = 60;

/** Sent with every response. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache",
};

/** The folder the page is served from. */
export const WEB_DIR = new URL("../../../web/", import.meta.url);

/** The web listener of one relay. */
export class WebEndpoint {
  readonly gateway: WebGateway;
  readonly spec: WebSpec;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #files: Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>;
  #log: Logger;
  #limitTimer: ReturnType<typeof setInterval>;
  /** The pair being served, to serve again when a new one will not load. */
  #keys: KeyPair | undefined;

  private constructor(
    spec: WebSpec,
    gateway: WebGateway,
    files: Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>,
    log: Logger,
    keys: KeyPair | undefined,
  ) {
    this.spec = spec;
    this.gateway = gateway;
    this.#files = files;
    this.#log = log;
    this.#server = this.#listen(keys, spec.port);
    this.#keys = keys;
    this.#limitTimer = setInterval(() => gateway.checkLimits(Date.now()), 1000);
  }

  /** Reads the page and the certificate, opens the listener, and joins `relay`'s bus. */
  static async open(spec: WebSpec, relay: Relay, log: Logger): Promise<WebEndpoint> {
    const files = new Map<string, { body: Uint8Array<ArrayBuffer>; type: string }>();
    for (const [path, [name, type]] of Object.entries(FILES)) {
      files.set(path, { body: await Deno.readFile(new URL(name, WEB_DIR)), type });
    }
    const keys = spec.certFile && spec.keyFile
      ? await readKeyPair(spec.certFile, spec.keyFile)
      : undefined;
    const gateway = new WebGateway(relay, log, { replayToNew: spec.replayToNew });
    let endpoint: WebEndpoint;
    try {
      endpoint = new WebEndpoint(spec, gateway, files, log, keys);
    } catch (error) {
      gateway.close();
      throw new UsageError(`The web listener cannot open: ${explainError(error)}`);
    }
    // The same shape as the other listeners' lines (tests and tools read the port from it).
    log.info(`web chat listening on ${endpoint.address}${endpoint.tls ? " (TLS)" : ""}`);
    return endpoint;
  }

  get port(): number {
    return this.#server.addr.port;
  }

  get tls(): boolean {
    return this.spec.certFile !== undefined;
  }

  get address(): string {
    return formatAddress(this.spec.host, this.port);
  }

  /** The page's address. */
  get url(): string {
    return `${this.tls ? "https" : "http"}://${this.address}/`;
  }

  /**
   * Loads the certificate again: the listener closes and opens again on the same port with it
   * (Deno.serve cannot swap a certificate, and sharing the port needs an unstable flag). Its
   * shutdown closes the open WebSockets too: the pages reconnect at once and resume (nothing
   * is missed). A pair that cannot be used (unreadable, or a key that is not the
   * certificate's, which only opening the listener tells) keeps the old one serving. Never
   * throws: the outcome is logged.
   */
  async reload(): Promise<void> {
    if (!this.tls) return;
    let keys: KeyPair;
    try {
      keys = await readKeyPair(this.spec.certFile!, this.spec.keyFile!);
    } catch (error) {
      return this.#notReloaded(error);
    }
    const port = this.port;
    await this.#server.shutdown();
    try {
      this.#server = this.#listen(keys, port);
      this.#keys = keys;
    } catch (error) {
      try {
        this.#server = this.#listen(this.#keys, port);
      } catch (again) {
        return this.#log.error(`web chat stopped: it cannot listen again: ${explainError(again)}`);
      }
      return this.#notReloaded(error);
    }
    this.#log.info(`web chat on ${this.url}: certificate reloaded`);
  }

  #notReloaded(error: unknown): void {
    this.#log.error(
      `web chat: certificate not reloaded, keeping the old one: ${explainError(error)}`,
    );
  }

  async close(): Promise<void> {
    clearInterval(this.#limitTimer);
    this.gateway.close();
    await this.#server.shutdown();
  }

  #listen(keys: KeyPair | undefined, port: number): Deno.HttpServer<Deno.NetAddr> {
    return Deno.serve({
      hostname: this.spec.host,
      port,
      ...(keys ? { cert: keys.cert, key: keys.key } : {}),
      onListen: () => {},
      onError: (error) => {
        this.#log.debug(`web request failed: ${explainError(error)}`);
        return new Response("Internal error\n", { status: 500 });
      },
    }, (request, info) => this.#handle(request, info));
  }

  #handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    if (request.url.length > MAX_URL) return plain(414, "Request target too long");
    if (request.method !== "GET" && request.method !== "HEAD") {
      return plain(405, "Only GET and HEAD are served", { allow: "GET, HEAD" });
    }
    if (request.body !== null || Number(request.headers.get("content-length") ?? 0) > 0) {
      return plain(413, "A GET has no body");
    }
    const url = new URL(request.url);
    if (url.pathname === "/ws") return this.#upgrade(request, info.remoteAddr);
    const file = this.#files.get(url.pathname);
    if (!file) return plain(404, "Not found");
    const headers = { ...SECURITY_HEADERS, "content-type": file.type };
    return new Response(request.method === "HEAD" ? null : file.body, { headers });
  }

  #upgrade(request: Request, remote: Deno.NetAddr): Response {
    const peer = remote.hostname.includes(":")
      ? `[${remote.hostname}]:${remote.port}`
      : `${remote.hostname}:${remote.port}`;
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return plain(426, "This address takes WebSocket connections only", { upgrade: "websocket" });
    }
    const origin = request.headers.get("origin");
    if (origin !== null && !this.#allowed(origin, request)) {
      this.#log.warn(`${peer} refused: Origin ${JSON.stringify(origin)} is not allowed`);
      return plain(403, "This Origin is not allowed");
    }
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: IDLE_TIMEOUT });
    this.gateway.accept(socket, { peer, address: remote.hostname, secure: this.tls });
    return response;
  }

  /**
   * Same origin (the page's scheme and the Host the browser asked for), or one allowed with
   * --web-origin. A browser always sends Origin on a WebSocket; a client without one is not a
   * page another site serves, and is let in.
   */
  #allowed(origin: string, request: Request): boolean {
    const own = `${this.tls ? "https" : "http"}://${request.headers.get("host")}`;
    return origin === own || this.spec.origins.includes(origin);
  }
}

function plain(status: number, text: string, extra: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { ...SECURITY_HEADERS, ...extra, "content-type": "text/plain; charset=utf-8" },
  });
}
