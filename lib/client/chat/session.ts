/**
 * The chat's two connections to the server, as the protocol wants them: one identified as
 * DISPLAY (the conversation, in the server's one global order, own messages included) and
 * one as KEYBOARD (what the user sends). When either is lost, both are closed and, with
 * reconnecting on, opened again after a backoff with full jitter.
 *
 * @module
 */

import { ProtocolError } from "../../protocol/errors.ts";
import type { Message } from "../../protocol/frame.ts";
import { encodeIdentify } from "../../protocol/identify.ts";
import { describeIoError } from "../../net/io_errors.ts";
import { formatAddress, looksLikeTlsRecord } from "../../net/transport.ts";
import { closeQuietly, writeAll } from "../../net/wire_io.ts";
import { explainError } from "../../cli/user_errors.ts";
import { receiveMessages } from "../display.ts";
import { encodeLines } from "../keyboard.ts";
import { type ClientConnection, connect } from "../options.ts";
import type { ConnectionStatus } from "./state.ts";

/** The first and shortest wait before reconnecting, in seconds. */
export const BACKOFF_MIN_S = 0.5;
/** The longest wait before reconnecting, in seconds. */
export const BACKOFF_MAX_S = 20;

/**
 * The wait before reconnection attempt `attempt` (1, 2, ...): "full jitter", a random time up
 * to a cap that doubles with each attempt, so that many chats whose server restarted do not
 * all come back at the same instant; never under {@linkcode BACKOFF_MIN_S} nor over
 * {@linkcode BACKOFF_MAX_S}.
 */
export function backoffSeconds(attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** Math.max(1, attempt));
  return Math.max(BACKOFF_MIN_S, Math.min(cap, random() * cap));
}

/** Options for {@linkcode ChatSession}. */
export interface ChatSessionOptions extends ClientConnection {
  /** Reconnect when the server goes away (default true). */
  reconnect?: boolean;
  /** For tests of the backoff: a source of numbers in [0, 1). */
  random?: () => number;
}

/** What the session tells the chat. */
export interface ChatSessionEvents {
  /** A batch of messages, as the server relayed them. */
  onMessages(messages: Message[]): void;
  /** The connection's state changed. */
  onStatus(status: ConnectionStatus): void;
}

/** One DISPLAY and one KEYBOARD connection, opened together. */
interface Pair {
  display: Deno.Conn;
  keyboard: Deno.Conn;
  /** The keyboard's writes, one after another; send() never waits on it. */
  writing: Promise<void>;
}

const TLS_ANSWER = "The server answered with TLS: connect with --tls (and --ca).";

/** Why a pair ended, and whether trying again could help. */
interface Loss {
  reason: string;
  fatal: boolean;
}

/** The chat's connections; see the module comment. */
export class ChatSession {
  readonly #options: ChatSessionOptions;
  readonly #events: ChatSessionEvents;
  readonly #server: string;
  #pair: Pair | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #end: (reason: string) => void = () => {};
  /** Resolves with the sentence that says why, once the session is over without being closed. */
  readonly ended: Promise<string>;

  constructor(options: ChatSessionOptions, events: ChatSessionEvents) {
    this.#options = options;
    this.#events = events;
    this.#server = formatAddress(options.host, options.port);
    this.ended = new Promise((resolve) => this.#end = resolve);
  }

  /** Whether both connections are open, so that what is sent now reaches the server. */
  get connected(): boolean {
    return this.#pair !== undefined;
  }

  /**
   * Opens the first pair. A failure (refused, untrusted certificate, ...) throws the
   * UsageError whose message is the sentence for the user: a mistake, not a lost connection.
   */
  async open(): Promise<void> {
    const pair = await this.#connectPair();
    void this.#run(pair);
  }

  /** Sends `lines` as `username`, each batch stamped with the local time; false if offline. */
  send(username: string, lines: readonly string[]): boolean {
    const pair = this.#pair;
    if (!pair) return false;
    const bytes = encodeLines(username, lines, { littleEndian: this.#options.littleEndian });
    pair.writing = pair.writing.then(() => writeAll(pair.keyboard, bytes)).catch(() => {
      // The reader side notices the loss and says why.
      closeQuietly(pair.keyboard);
    });
    return true;
  }

  /** Closes both connections and stops reconnecting. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
    if (this.#pair) this.#closePair(this.#pair);
    this.#pair = undefined;
  }

  async #connectPair(): Promise<Pair> {
    const display = await connect(this.#options);
    try {
      const keyboard = await connect(this.#options);
      try {
        await writeAll(keyboard, encodeIdentify("keyboard", this.#options.littleEndian));
      } catch (error) {
        closeQuietly(keyboard);
        throw error;
      }
      return { display, keyboard, writing: Promise.resolve() };
    } catch (error) {
      closeQuietly(display);
      throw error;
    }
  }

  #closePair(pair: Pair): void {
    closeQuietly(pair.display);
    closeQuietly(pair.keyboard);
  }

  /** Serves pairs until the session is closed or ends. */
  async #run(first: Pair): Promise<void> {
    let pair: Pair | undefined = first;
    for (;;) {
      const loss = await this.#serve(pair);
      if (this.#closed) return;
      if (loss.fatal || this.#options.reconnect === false) {
        this.#end(loss.reason);
        return;
      }
      pair = undefined;
      let reason = loss.reason;
      for (let attempt = 1; pair === undefined; attempt++) {
        this.#events.onStatus({ state: "reconnecting", attempt, reason: shorten(reason) });
        await this.#pause(backoffSeconds(attempt, this.#options.random));
        if (this.#closed) return;
        try {
          pair = await this.#connectPair();
        } catch (error) {
          reason = explainError(error);
        }
        if (this.#closed) {
          if (pair) this.#closePair(pair);
          return;
        }
      }
    }
  }

  /** Runs one pair until either connection ends; both are closed then. */
  async #serve(pair: Pair): Promise<Loss> {
    this.#pair = pair;
    const display = receiveMessages(pair.display, (messages) => this.#events.onMessages(messages), {
      littleEndian: this.#options.littleEndian,
      onIdentified: () => this.#events.onStatus({ state: "connected" }),
    }).then(() => this.#closedLoss(), (error) => this.#lossOf(error));
    const keyboard = watchKeyboard(pair.keyboard).then(
      (tls): Loss => tls ? { reason: TLS_ANSWER, fatal: true } : this.#closedLoss(),
      (error) => this.#lossOf(error),
    );
    const loss = await Promise.race([display, keyboard]);
    if (this.#pair === pair) this.#pair = undefined;
    this.#closePair(pair);
    await Promise.allSettled([display, keyboard, pair.writing]);
    return loss;
  }

  #closedLoss(): Loss {
    return { reason: "The server closed the connection.", fatal: false };
  }

  #lossOf(error: unknown): Loss {
    if (error instanceof ProtocolError) {
      return error.message.includes("TLS")
        ? { reason: TLS_ANSWER, fatal: true }
        : { reason: `The server sent a malformed frame (${error.message}).`, fatal: false };
    }
    return {
      reason: `The connection to ${this.#server} was lost: ${describeIoError(error)}.`,
      fatal: false,
    };
  }

  /** Waits `seconds`, or less if the session is closed meanwhile. */
  async #pause(seconds: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, seconds * 1000);
    });
    clearTimeout(timer);
    this.#wake = undefined;
  }
}

/**
 * The status bar's form of a sentence: no full stop, first letter small, without the
 * address (the bar shows it) or the hint in brackets.
 */
function shorten(sentence: string): string {
  const text = sentence.replace(/\.$/, "").replace(/ \([^)]*\)$/, "").replace(
    /^Cannot connect to \S+: /,
    "",
  ).replace(/^The connection to \S+ was lost: /, "connection lost: ");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * Waits for the server to close the keyboard connection (a keyboard is sent nothing);
 * true if what came first was a TLS record, i.e. the port speaks TLS.
 */
async function watchKeyboard(conn: Deno.Conn): Promise<boolean> {
  const buffer = new Uint8Array(1024);
  for (let first = true;; first = false) {
    const n = await conn.read(buffer);
    if (n === null) return false;
    if (first && looksLikeTlsRecord(buffer.subarray(0, n))) return true;
  }
}
