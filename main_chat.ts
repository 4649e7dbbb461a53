/**
 * wirechat chat: display and keyboard in one terminal. It opens two connections, one
 * identified as DISPLAY and one as KEYBOARD, and draws the conversation, a status bar and an
 * input line full-screen; with stdin or stdout not a terminal it works line by line instead.
 *
 * @module
 */

import { commandName, parseProgramOptions } from "./lib/cli/args.ts";
import { explainError, UsageError } from "./lib/cli/user_errors.ts";
import { formatLine } from "./lib/client/display.ts";
import { LineReader } from "./lib/client/keyboard.ts";
import {
  type ClientConnection,
  CONNECTION_OPTIONS,
  CONNECTION_USAGE,
  connectionFrom,
  say,
} from "./lib/client/options.ts";
import { KeyDecoder } from "./lib/client/chat/input_keys.ts";
import {
  conversationHeight,
  layoutScreen,
  paintScreen,
  PALETTE,
} from "./lib/client/chat/render.ts";
import { ChatSession } from "./lib/client/chat/session.ts";
import { ChatState, usernameProblem } from "./lib/client/chat/state.ts";
import {
  FullScreen,
  isInteractive,
  onTerminate,
  terminalSize,
  writeOut,
} from "./lib/client/chat/terminal.ts";
import type { Message } from "./lib/protocol/frame.ts";
import { formatAddress } from "./lib/net/transport.ts";

const USAGE = `Usage: ${commandName("chat")} [options]

A chat in one terminal: everyone's messages above, a status bar, and a line to type in.
It connects twice (as DISPLAY and as KEYBOARD), so it works with any wirechat server.

Options:
${CONNECTION_USAGE}
  --user NAME       the username to send as (asked for in the input line when absent)
  --reconnect       reconnect when the server goes away (the default)
  --no-reconnect    exit with a sentence instead when the server goes away
  --no-color        names without colours (so does the NO_COLOR environment variable)
  --brief-format    show messages as "<username> YYYY-MM-DD HH:mm:ss <text>"
  --help            show this help
  --version         show the version

Keys:
  Enter                      send the line (a paste of more than 5 lines asks first: y/n)
  Left, Right                move the cursor by a character (Ctrl+B, Ctrl+F too)
  Alt+B, Alt+F               move by a word (Ctrl+Left, Ctrl+Right too)
  Home, Ctrl+A / End, Ctrl+E go to the start / end of the line (End also returns to live)
  Backspace, Delete          delete the character before / under the cursor
  Ctrl+K / Ctrl+U            delete to the end / the start of the line
  Ctrl+W, Alt+Backspace      delete the word before the cursor
  Up, Down                   walk through the last 100 lines sent
  PageUp, PageDown           scroll the conversation by a page
  Shift+Up/Down, Ctrl+Up/Down  scroll by a line
  End                        back to the newest messages (live)
  Ctrl+L                     redraw the screen
  Ctrl+C, or Ctrl+D on an empty line   quit

When stdin or stdout is not a terminal it does not draw: it reads lines (the first is the
username when --user is absent) and prints "<username> YYYY-MM-DD HH:mm:ss <text>" lines,
and exits once its input has ended and its own messages have come back.`;

/** How long a lone ESC waits for the rest of a sequence before it counts as the Escape key. */
const ESCAPE_MS = 50;
/** Draws are coalesced: a burst of messages costs one redraw. */
const DRAW_MS = 10;
/** How long line mode waits, after its input ended, for its own messages to come back. */
const ECHO_WAIT_MS = 5_000;

interface ChatOptions {
  connection: ClientConnection;
  user: string | undefined;
  reconnect: boolean;
  color: boolean;
  briefFormat: boolean;
}

function parse(args: string[]): ChatOptions | "help" {
  const values = parseProgramOptions(args, {
    ...CONNECTION_OPTIONS,
    user: { type: "string" },
    reconnect: { type: "boolean" },
    "no-reconnect": { type: "boolean" },
    "no-color": { type: "boolean" },
    "brief-format": { type: "boolean" },
  });
  if (values === "help") return "help";
  if (values.reconnect && values["no-reconnect"]) {
    throw new UsageError("--reconnect and --no-reconnect contradict each other.");
  }
  const user = typeof values.user === "string" ? values.user.trim() : undefined;
  if (user !== undefined) {
    const problem = usernameProblem(user);
    if (problem) throw new UsageError(problem.replace("The username", "--user"));
  }
  return {
    connection: connectionFrom(values),
    user,
    reconnect: values["no-reconnect"] !== true,
    color: values["no-color"] !== true && !Deno.noColor,
    briefFormat: values["brief-format"] === true,
  };
}

/** Runs the chat; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: ChatOptions;
  try {
    const parsed = parse(args);
    if (parsed === "help") {
      console.log(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    say(explainError(error));
    return 2;
  }
  return isInteractive() ? await fullScreen(options) : await lineMode(options);
}

/** The full-screen chat. */
async function fullScreen(options: ChatOptions): Promise<number> {
  const { connection } = options;
  const state = new ChatState({
    server: formatAddress(connection.host, connection.port),
    tls: connection.tls ?? false,
    username: options.user,
    briefFormat: options.briefFormat,
    paletteSize: PALETTE.length,
  });
  let size = terminalSize();
  let drawTimer: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    drawTimer = undefined;
    writeOut(paintScreen(layoutScreen(state, size), { color: options.color }));
  };
  const scheduleDraw = () => drawTimer ??= setTimeout(draw, DRAW_MS);
  const session = new ChatSession({ ...connection, reconnect: options.reconnect }, {
    onMessages: (messages) => {
      state.add(messages);
      scheduleDraw();
    },
    onStatus: (status) => {
      state.status = status;
      scheduleDraw();
    },
  });
  // The first connection is made before the screen is taken, so a mistake (refused,
  // untrusted certificate) is one sentence on the ordinary screen.
  try {
    await session.open();
  } catch (error) {
    say(explainError(error));
    return 1;
  }
  const screen = new FullScreen();
  let finish: (outcome: { code: number; sentence?: string }) => void = () => {};
  const finished = new Promise<{ code: number; sentence?: string }>((r) => finish = r);
  const stopSignals = onTerminate(() => finish({ code: 0 }));
  const onError = (event: Event) => {
    event.preventDefault();
    const error = (event as ErrorEvent).error ?? (event as PromiseRejectionEvent).reason;
    finish({ code: 1, sentence: explainError(error) });
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onError);
  try {
    screen.enter();
    screen.watchSize((next) => {
      size = next;
      writeOut("\x1b[2J");
      draw();
    });
    draw();
    session.ended.then((sentence) => finish({ code: 1, sentence }));
    void readKeys(state, {
      height: () => conversationHeight(size.rows),
      draw: scheduleDraw,
      redraw: () => {
        writeOut("\x1b[2J");
        draw();
      },
      send: (lines) => session.send(state.username!, lines),
      quit: () => finish({ code: 0 }),
    }).catch((error) => finish({ code: 1, sentence: explainError(error) }));
    const outcome = await finished;
    screen.restore();
    if (outcome.sentence) say(outcome.sentence);
    return outcome.code;
  } finally {
    clearTimeout(drawTimer);
    screen.restore();
    session.close();
    stopSignals();
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onError);
  }
}

interface KeyHandlers {
  height: () => number;
  draw: () => void;
  redraw: () => void;
  send: (lines: string[]) => void;
  quit: () => void;
}

/** Reads the keyboard until it ends (then quits) or a key says to quit. */
async function readKeys(state: ChatState, handlers: KeyHandlers): Promise<void> {
  const decoder = new KeyDecoder();
  const buffer = new Uint8Array(4096);
  let escapeTimer: ReturnType<typeof setTimeout> | undefined;
  const handle = (keys: ReturnType<KeyDecoder["push"]>): boolean => {
    for (const key of keys) {
      const action = state.press(key, handlers.height());
      if (action.type === "quit") {
        handlers.quit();
        return false;
      }
      if (action.type === "send") handlers.send(action.lines);
      if (action.type === "redraw") handlers.redraw();
    }
    handlers.draw();
    return true;
  };
  for (;;) {
    const n = await Deno.stdin.read(buffer);
    clearTimeout(escapeTimer);
    if (n === null) {
      handlers.quit();
      return;
    }
    if (!handle(decoder.push(buffer.subarray(0, n)))) return;
    if (decoder.pending) escapeTimer = setTimeout(() => handle(decoder.flush()), ESCAPE_MS);
  }
}

/** Display and keyboard in line mode, for scripts: lines in, display lines out. */
async function lineMode(options: ChatOptions): Promise<number> {
  const encoder = new TextEncoder();
  let username = options.user;
  let ownPending = 0;
  let echoed: () => void = () => {};
  let outputClosed = false;
  let printing = Promise.resolve();
  const print = (messages: Message[]) => {
    const text = messages.map((m) => formatLine(m) + "\n").join("");
    for (const message of messages) {
      if (message.username === username && ownPending > 0 && --ownPending === 0) echoed();
    }
    printing = printing.then(() => Deno.stdout.write(encoder.encode(text)).then(() => {}))
      .catch(() => {
        outputClosed = true;
      });
  };
  let connected: () => void = () => {};
  let whenConnected = Promise.resolve();
  const session = new ChatSession({ ...options.connection, reconnect: options.reconnect }, {
    onMessages: print,
    onStatus: (status) => {
      if (status.state === "connected") connected();
      else if (status.state === "reconnecting") {
        whenConnected = new Promise((r) => connected = r);
        say(`${status.reason}; reconnecting (attempt ${status.attempt}).`);
      }
    },
  });
  let interrupted: () => void = () => {};
  const signal = new Promise<void>((r) => interrupted = r);
  const stopSignals = onTerminate(() => interrupted());
  try {
    await Promise.race([session.open(), signal]);
    const lines = new LineReader(Deno.stdin);
    const work = async (): Promise<number> => {
      if (username === undefined) {
        const first = await lines.nextLine();
        if (first === null) throw new UsageError("No username given (input ended first).");
        const problem = usernameProblem(first.trim());
        if (problem) throw new UsageError(problem.replace("The username", "The first line"));
        username = first.trim();
      }
      for (let batch = await lines.nextLines(); batch !== null; batch = await lines.nextLines()) {
        await whenConnected;
        if (session.send(username, batch)) ownPending += batch.length;
        if (outputClosed) return 0;
      }
      // Input over: wait (briefly) for what was sent to come back, then end.
      if (ownPending > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          echoed = resolve;
          timer = setTimeout(resolve, ECHO_WAIT_MS);
        });
        clearTimeout(timer);
      }
      await printing;
      return 0;
    };
    const outcome = await Promise.race([
      work(),
      signal.then(() => 0),
      session.ended.then((sentence) => {
        say(sentence);
        return 1;
      }),
    ]);
    await printing;
    return outcome;
  } catch (error) {
    say(explainError(error));
    return 1;
  } finally {
    session.close();
    stopSignals();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
