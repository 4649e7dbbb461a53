/**
 * wirechat server: relays every message from every keyboard client to every display client.
 * `--reference` runs the course's four reference servers in one process.
 *
 * @module
 */

import { versionText } from "./lib/cli/version.ts";
import {
  commandName,
  durationOption,
  numberOption,
  type OptionSpec,
  type OptionValues,
  parseProgramOptions,
  portOption,
  stringOption,
} from "./lib/cli/args.ts";
import { LOG_LEVELS, Logger, type LogLevel } from "./lib/cli/log.ts";
import { checkNativeSockets, setNativeSockets } from "./lib/net/native_socket.ts";
import { DEFAULT_RELAY_OPTIONS, type RelayOptions } from "./lib/server/relay.ts";
import { type RelaySpec, ServerHost } from "./lib/server/host.ts";
import type { WebSpec } from "./lib/server/web/web_server.ts";
import { explainError, UsageError } from "./lib/cli/user_errors.ts";
import type { HistoryStore } from "./lib/server/history/store.ts";
import { RingStore } from "./lib/server/history/ring.ts";
import { type HistorySync, SqliteStore } from "./lib/server/history/sqlite_store.ts";

const d = DEFAULT_RELAY_OPTIONS;
const USAGE = `Usage: ${commandName("server")} [options]

Relays every message from every keyboard client to every display client.

Options:
  --host H               address to listen on (default 0.0.0.0, every interface)
  --port P               port to listen on (default 55200; 0 picks a free one)
  --cert FILE --key FILE serve TLS with this certificate and private key (PEM)
  --web [HOST:]PORT      also serve the chat page and its WebSocket on PORT (HTTPS/WSS
                         with the server's certificate); HOST defaults to --host
  --web-origin ORIGINS   comma-separated Origins allowed besides the page's own,
                         e.g. https://chat.example
  --random-every S       also send a random message to every display every S seconds
  --reference            run the course's four reference servers: random-message on
                         BASE, full on BASE+100, and their TLS twins on BASE+200, BASE+300
  --base-port BASE       first reference port (default 55100)
  --certs DIR            certificates for --reference: DIR/server.crt, DIR/server.key
                         (default certs; create them with: deno task certs)
  --reload-certs S       check the certificate files every S seconds and reload them when
                         they change (SIGHUP also reloads, where the system has it)
  --max-frame BYTES      largest overall_length accepted (default ${d.maxFrame})
  --max-backlog BYTES    drop a display whose unsent backlog passes this (default ${d.maxBacklog})
  --soft-backlog BYTES   ... or stays above this (default ${d.softBacklog})
  --soft-seconds S       ... for this long (default ${d.softSeconds})
  --keyboard-rate N      messages/s a keyboard may sustain before its socket is paused;
                         0 turns flood control off (default ${d.keyboardRate})
  --keyboard-burst N     messages a keyboard may send at once above its rate (default ${d.keyboardBurst})
  --max-connections N    simultaneous connections to the whole process (every listener
                         together), 0 for no limit (default ${d.maxConnections})
  --max-per-address N    simultaneous connections from one address, 0 for no limit (default 0)
  --max-client-memory BYTES
                         bytes all clients may hold together in partly received frames and
                         unsent backlogs; over it, the biggest holders are dropped first,
                         0 for no budget (default ${d.maxClientMemory}, 256 MiB)
  --identify-timeout S   seconds a client has to send its identify code (default ${d.identifyTimeout})
  --frame-timeout S      seconds a started frame has to complete (default ${d.frameTimeout})
  --handshake-timeout S  seconds a TLS client has to finish its handshake (default ${d.handshakeTimeout})
  --history N            send every display that connects the last N messages first, then
                         the live ones (default 0: off; with --history-db, default 100)
  --history-db FILE      keep the history in this SQLite database, across restarts; every
                         message is committed before any display is sent it. The server's
                         deno task may write only under history/ (e.g. history/chat.db)
  --history-sync MODE    normal (default: a commit survives the server being killed, not
                         always a power loss) or full (survives a power loss; slower)
  --history-max-age AGE  prune messages older than AGE, e.g. 7d, 12h (default: keep)
  --history-max-rows N   keep at most N messages in the database (default 0: no limit)
  --no-keepalive         do not enable TCP keepalive on connections
  --no-native-sockets    keep every connection on Deno's own sockets (the slower fallback
                         path; for comparison, or if a Deno release breaks the fast one)
  --log-level LEVEL      error, warn, info or debug (default info)
  --help                 show this help
  --version              show the version
`;

const SPEC: OptionSpec = {
  host: { type: "string" },
  port: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "random-every": { type: "string" },
  web: { type: "string" },
  "web-origin": { type: "string" },
  reference: { type: "boolean" },
  "base-port": { type: "string" },
  certs: { type: "string" },
  "reload-certs": { type: "string" },
  "max-frame": { type: "string" },
  "max-backlog": { type: "string" },
  "soft-backlog": { type: "string" },
  "soft-seconds": { type: "string" },
  "keyboard-rate": { type: "string" },
  "keyboard-burst": { type: "string" },
  "max-connections": { type: "string" },
  "max-per-address": { type: "string" },
  "max-client-memory": { type: "string" },
  "identify-timeout": { type: "string" },
  "frame-timeout": { type: "string" },
  "handshake-timeout": { type: "string" },
  history: { type: "string" },
  "history-db": { type: "string" },
  "history-sync": { type: "string" },
  "history-max-age": { type: "string" },
  "history-max-rows": { type: "string" },
  "no-keepalive": { type: "boolean" },
  "no-native-sockets": { type: "boolean" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
};

/** The server's configuration, parsed from its command line. */
export interface ServerConfig {
  relays: RelaySpec[];
  relayOptions: RelayOptions;
  logLevel: LogLevel;
  reloadEvery: number;
  /** Whether connections may move onto native sockets (lib/net/native_socket.ts). */
  nativeSockets: boolean;
  /** The history to keep, if any (off by default, in --reference mode too). */
  history?: HistoryConfig;
}

/** What --history and its companions asked for. */
export interface HistoryConfig {
  /** Messages replayed to a display that connects. */
  count: number;
  /** The SQLite database; in memory only without it. */
  db?: string;
  sync: HistorySync;
  /** 0: no limit. */
  maxAgeMs: number;
  /** 0: no limit. */
  maxRows: number;
}

/** Reads --history and its companions; undefined when history is off. */
function historyConfig(values: OptionValues): HistoryConfig | undefined {
  const db = stringOption(values, "history-db");
  const count = numberOption(values, "history", db ? 100 : 0, 0, 10_000_000);
  if (!Number.isInteger(count)) throw new UsageError("--history must be a whole number.");
  const sync = stringOption(values, "history-sync", "normal");
  if (sync !== "normal" && sync !== "full") {
    throw new UsageError(`--history-sync must be normal or full, not "${sync}".`);
  }
  for (const name of ["history-sync", "history-max-rows"]) {
    if (values[name] !== undefined && !db) {
      throw new UsageError(`--${name} only goes with --history-db.`);
    }
  }
  if (values["history-max-age"] !== undefined && count === 0 && !db) {
    throw new UsageError("--history-max-age only goes with --history or --history-db.");
  }
  if (count === 0 && !db) return undefined;
  return {
    count,
    db,
    sync,
    maxAgeMs: durationOption(values, "history-max-age", 0),
    maxRows: numberOption(values, "history-max-rows", 0, 0),
  };
}

/** Opens the history store the configuration asks for; throws with one sentence. */
export function openHistory(config: HistoryConfig, log: Logger): HistoryStore {
  if (!config.db) {
    log.info(`history: the last ${config.count} messages, in memory`);
    return new RingStore(config.count, { maxAgeMs: config.maxAgeMs });
  }
  const store = SqliteStore.open(config.db, {
    replayCount: config.count,
    maxAgeMs: config.maxAgeMs,
    maxRows: config.maxRows,
    sync: config.sync,
    log,
  });
  log.info(`history: ${store.description}`);
  return store;
}

/** Parses the command line into a configuration, or throws a UsageError. */
export function parseServerArgs(args: string[]): ServerConfig | "help" {
  const values = parseProgramOptions(args, SPEC);
  if (values === "help") return "help";
  const logLevel = stringOption(values, "log-level", "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}.`);
  }
  const seconds = (name: string, fallback: number) =>
    numberOption(values, name, fallback, 0.001, 86400);
  const count = (name: string, fallback: number) => numberOption(values, name, fallback, 0);
  const relayOptions: RelayOptions = {
    maxFrame: numberOption(values, "max-frame", d.maxFrame, 32, 2 ** 31 - 1),
    maxBacklog: count("max-backlog", d.maxBacklog),
    softBacklog: count("soft-backlog", d.softBacklog),
    softSeconds: seconds("soft-seconds", d.softSeconds),
    keyboardRate: count("keyboard-rate", d.keyboardRate),
    keyboardBurst: numberOption(values, "keyboard-burst", d.keyboardBurst, 1),
    maxConnections: count("max-connections", d.maxConnections),
    maxPerAddress: count("max-per-address", d.maxPerAddress),
    identifyTimeout: seconds("identify-timeout", d.identifyTimeout),
    frameTimeout: seconds("frame-timeout", d.frameTimeout),
    handshakeTimeout: seconds("handshake-timeout", d.handshakeTimeout),
    keepAlive: !values["no-keepalive"],
    maxClientMemory: count("max-client-memory", d.maxClientMemory),
  };
  const host = stringOption(values, "host", "0.0.0.0");
  const randomEvery = numberOption(values, "random-every", 0, 0, 86400);
  const reloadEvery = numberOption(values, "reload-certs", 0, 0, 86400);
  const nativeSockets = !values["no-native-sockets"];
  const web = webOption(values, host);
  const history = historyConfig(values);
  let cert = stringOption(values, "cert");
  let key = stringOption(values, "key");
  if (values.reference) {
    for (const name of ["port", "cert", "key", "random-every"]) {
      if (values[name] !== undefined) {
        throw new UsageError(
          `--${name} does not go with --reference (use --base-port and --certs).`,
        );
      }
    }
    const base = portOption(values, "base-port", 55100);
    if (base + 300 > 65535) throw new UsageError("--base-port must leave room for BASE+300.");
    const dir = stringOption(values, "certs", "certs");
    cert = `${dir}/server.crt`;
    key = `${dir}/server.key`;
    const tls = { certFile: cert, keyFile: key };
    return {
      relayOptions,
      logLevel,
      reloadEvery,
      nativeSockets,
      history,
      relays: [
        {
          randomEvery: numberOption(values, "random-every", 2, 0.001, 86400),
          endpoints: [
            { label: "random-message server", host, port: base },
            { label: "random-message TLS server", host, port: base + 200, ...tls },
          ],
        },
        {
          web: web && { ...web, ...tls },
          // The course's full servers are the chat room; the random messages are not history.
          history: history !== undefined,
          endpoints: [
            { label: "full server", host, port: base + 100 },
            { label: "full TLS server", host, port: base + 300, ...tls },
          ],
        },
      ],
    };
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--cert and --key go together: give both for TLS, or neither.");
  }
  for (const name of ["base-port", "certs"]) {
    if (values[name] !== undefined) throw new UsageError(`--${name} only goes with --reference.`);
  }
  const port = portOption(values, "port", 55200);
  const label = cert ? "full TLS server" : "full server";
  return {
    relayOptions,
    logLevel,
    reloadEvery,
    nativeSockets,
    history,
    relays: [{
      randomEvery,
      web: web && { ...web, certFile: cert, keyFile: key },
      history: history !== undefined,
      endpoints: [{ label, host, port, certFile: cert, keyFile: key }],
    }],
  };
}

/** Reads --web [HOST:]PORT and --web-origin; undefined when the web chat is off. */
function webOption(values: OptionValues, defaultHost: string): WebSpec | undefined {
  const raw = stringOption(values, "web");
  const origins = (stringOption(values, "web-origin") ?? "").split(",").map((o) => o.trim())
    .filter((o) => o !== "");
  if (raw === undefined) {
    if (origins.length > 0) throw new UsageError("--web-origin only goes with --web.");
    return undefined;
  }
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new UsageError(
        `--web-origin takes origins like https://chat.example (scheme and host), not "${origin}".`,
      );
    }
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw) ?? /^()()(\d+)$/.exec(raw);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new UsageError(`--web takes [HOST:]PORT, e.g. 8080 or 127.0.0.1:8080, not "${raw}".`);
  }
  const host = match[1] || match[2] || defaultHost;
  return { host, port, origins };
}

/** Watches the certificate files' modification times and reloads when they change. */
function watchCertificates(host: ServerHost, files: string[], seconds: number): () => void {
  const stamp = async () =>
    (await Promise.all(
      files.map((f) => Deno.stat(f).then((s) => s.mtime?.getTime() ?? 0, () => 0)),
    ))
      .join(",");
  let last: Promise<string> = stamp();
  const timer = setInterval(async () => {
    const before = await last;
    last = stamp();
    if ((await last) !== before) await host.reload();
  }, seconds * 1000);
  return () => clearInterval(timer);
}

/** Runs the server until SIGINT or SIGTERM; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let config: ServerConfig | "help";
  try {
    config = parseServerArgs(args);
  } catch (error) {
    console.error(explainError(error));
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  const log = new Logger(config.logLevel);
  const nativeOff = config.nativeSockets ? await checkNativeSockets() : "--no-native-sockets";
  setNativeSockets(nativeOff === undefined);
  let history: HistoryStore | undefined;
  let host: ServerHost;
  try {
    if (config.history) history = openHistory(config.history, log);
    host = await ServerHost.start(config.relays, config.relayOptions, log, history);
  } catch (error) {
    history?.close();
    console.error(explainError(error));
    return 1;
  }
  // Said once the server runs: a mistake on the command line stays one sentence.
  log.info(versionText());
  log.info(`native sockets: ${nativeOff === undefined ? "on" : `off (${nativeOff})`}`);
  const tlsFiles = [
    ...new Set(
      host.endpoints.filter((e) => e.tls).flatMap((e) => [e.spec.certFile!, e.spec.keyFile!]),
    ),
  ];
  const stopWatching = config.reloadEvery > 0 && tlsFiles.length > 0
    ? watchCertificates(host, tlsFiles, config.reloadEvery)
    : () => {};
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const reload = () => void host.reload();
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGHUP", reload);
  await new Promise<void>((resolve) => {
    for (const signal of signals) Deno.addSignalListener(signal, resolve);
  });
  log.info("shutting down");
  stopWatching();
  await host.close();
  log.info("stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
