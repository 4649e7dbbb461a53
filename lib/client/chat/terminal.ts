/**
 * The small layer between the chat and a real terminal, over Deno's own APIs: raw mode, the
 * alternate screen, bracketed paste, the size and its changes, and the signals that must
 * still put the terminal back. Everything else about the chat is pure and tested without it.
 *
 * @module
 */

import { type ScreenSize } from "./render.ts";

const CSI = "\x1b[";
/** Alternate screen, autowrap off (a full last row must not scroll), bracketed paste on. */
const ENTER = `${CSI}?1049h${CSI}?7l${CSI}?2004h${CSI}H${CSI}2J`;
/** The reverse, with the cursor visible and attributes reset. */
const LEAVE = `${CSI}0m${CSI}?2004l${CSI}?7h${CSI}?25h${CSI}?1049l`;

/** How often the size is polled where there is no SIGWINCH (Windows). */
const SIZE_POLL_MS = 250;

const encoder = new TextEncoder();

/** Whether both stdin and stdout are terminals, i.e. whether the chat can draw. */
export function isInteractive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}

/** The terminal's size, with a sane fallback when it cannot be asked. */
export function terminalSize(): ScreenSize {
  try {
    const { columns, rows } = Deno.consoleSize();
    if (columns > 0 && rows > 0) return { columns, rows };
  } catch {
    // Not a terminal after all.
  }
  return { columns: 80, rows: 24 };
}

/** Writes all of `text` to stdout, synchronously, so it is out even if the process ends next. */
export function writeOut(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/**
 * The terminal in full-screen mode. {@linkcode FullScreen.restore} puts it back as it was
 * (cooked mode, echo, cursor, main screen) and may be called any number of times, from any
 * exit path.
 */
export class FullScreen {
  #active = false;
  #stopWatching: (() => void) | undefined;

  /** Raw mode and the alternate screen. */
  enter(): void {
    Deno.stdin.setRaw(true);
    this.#active = true;
    writeOut(ENTER);
  }

  /** Puts the terminal back; harmless when not entered or already restored. */
  restore(): void {
    this.#stopWatching?.();
    this.#stopWatching = undefined;
    if (!this.#active) return;
    this.#active = false;
    try {
      writeOut(LEAVE);
    } catch {
      // The terminal is gone; nothing to restore on it.
    }
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Likewise.
    }
  }

  /**
   * Calls `onResize` with the new size whenever it changes: on SIGWINCH where the system has
   * it, by polling otherwise. Stopped by {@linkcode FullScreen.restore}.
   */
  watchSize(onResize: (size: ScreenSize) => void): void {
    let last = terminalSize();
    const check = () => {
      const size = terminalSize();
      if (size.columns === last.columns && size.rows === last.rows) return;
      last = size;
      onResize(size);
    };
    if (Deno.build.os !== "windows") {
      try {
        Deno.addSignalListener("SIGWINCH", check);
        this.#stopWatching = () => Deno.removeSignalListener("SIGWINCH", check);
        return;
      } catch {
        // No SIGWINCH here after all: poll.
      }
    }
    const timer = setInterval(check, SIZE_POLL_MS);
    this.#stopWatching = () => clearInterval(timer);
  }
}

/**
 * Calls `onSignal` on the signals that end a program from outside (SIGTERM, SIGHUP, SIGINT
 * where they exist; SIGINT and SIGBREAK on Windows), so the terminal is restored before it
 * exits. Returns the function that removes the listeners, unless one has fired: then they stay
 * until the process exits (`deno task` passes a signal on a second time, which with no listener
 * left would end the program by the signal instead of its own exit).
 */
export function onTerminate(onSignal: (signal: Deno.Signal) => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  let fired = false;
  const listeners = signals.map((signal) => {
    const listener = () => {
      fired = true;
      onSignal(signal);
    };
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  return () => {
    if (fired) return;
    listeners.forEach(({ signal, listener }) => Deno.removeSignalListener(signal, listener));
  };
}
