/**
 * What the display and keyboard programs share: their connection options, connecting with a
 * plain sentence on failure, and ending cleanly on Ctrl-C.
 *
 * @module
 */

import { type OptionSpec, type OptionValues, portOption, stringOption } from "../cli/args.ts";
import { dial, type DialOptions, formatAddress } from "../net/transport.ts";
import { explainError, UsageError } from "../cli/user_errors.ts";

/** Options every client takes. */
export const CONNECTION_OPTIONS: OptionSpec = {
  host: { type: "string" },
  port: { type: "string" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  "little-endian": { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

/** Help text for {@linkcode CONNECTION_OPTIONS}. */
export const CONNECTION_USAGE = `  --host H          server to connect to (default localhost)
  --port P          server port (default 55200; the TLS full server is 55400)
  --tls             connect with TLS, verifying the server's certificate and host name
  --ca FILE         trust the root CA in FILE (PEM), e.g. certs/root_ca.crt
  --little-endian   speak little-endian integers instead of network byte order`;

/** A client's connection settings. */
export interface ClientConnection extends DialOptions {
  littleEndian: boolean;
}

/** Reads the connection options. */
export function connectionFrom(values: OptionValues): ClientConnection {
  const tls = values.tls === true;
  const caFile = stringOption(values, "ca");
  if (caFile !== undefined && !tls) throw new UsageError("--ca only makes sense with --tls.");
  return {
    host: stringOption(values, "host", "localhost"),
    port: portOption(values, "port", 55200),
    tls,
    caFile,
    littleEndian: values["little-endian"] === true,
  };
}

/** Connects, or throws a UsageError carrying the sentence that explains why not. */
export async function connect(options: ClientConnection): Promise<Deno.Conn> {
  try {
    return await dial(options);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      explainError(error, {
        action: "connect to",
        target: formatAddress(options.host, options.port),
      }),
    );
  }
}

/**
 * Resolves on Ctrl-C (and SIGTERM where it exists); `stop` removes the listeners, unless one
 * has fired: then they stay until the process exits, because `deno task` passes the same Ctrl-C
 * on a second time, and with no listener left that second one would end the program with 130.
 */
export function interrupted(): { signal: Promise<void>; stop: () => void } {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  let fired = false;
  let fire = () => {};
  const signal = new Promise<void>((resolve) => fire = resolve);
  const listener = () => {
    fired = true;
    fire();
  };
  for (const s of signals) Deno.addSignalListener(s, listener);
  return {
    signal,
    stop: () => {
      if (!fired) signals.forEach((s) => Deno.removeSignalListener(s, listener));
    },
  };
}

/** Prints one sentence on stderr. */
export function say(sentence: string): void {
  console.error(sentence);
}
