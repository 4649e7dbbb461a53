/**
 * Everything the chat screen shows, as plain data with the rules that change it: the
 * conversation and its scroll position, the connection's status, the input line and the mode
 * (asking the username, chatting, confirming a long paste). Keys go in, actions come out
 * (send these lines, quit); nothing here touches a terminal or a socket.
 *
 * @module
 */

import type { Message } from "../../protocol/frame.ts";
import { neutralizeControls } from "../../protocol/sanitize.ts";
import { formatTimestamp } from "../../protocol/time.ts";
import { nameColor } from "../../protocol/name_colour.ts";
import type { Key } from "./input_keys.ts";
import { LineEditor } from "./line_editor.ts";
import { textWidth, wrapText } from "./width.ts";

/** At least this many messages are kept for scrolling back (each is one line or more). */
export const SCROLLBACK_MESSAGES = 10_000;
/** A paste of more lines than this asks before sending. */
export const PASTE_CONFIRM_LINES = 5;

/** How the connection pair to the server stands. */
export interface ConnectionStatus {
  state: "connecting" | "connected" | "reconnecting";
  /** The reconnection attempt under way (1 for the first), when reconnecting. */
  attempt?: number;
  /** Why the last connection ended, when reconnecting. */
  reason?: string;
}

/** A piece of a screen line with one look. */
export interface Span {
  text: string;
  style?: "time" | "user" | "own" | "separator" | "status" | "prompt" | "notice";
  /** For "user": the palette index of the name's colour. */
  color?: number;
}

/** One screen line of the conversation. */
export type ScreenLine = Span[];

/** What a key asked the program to do. */
export type ChatAction =
  | { type: "none" }
  | { type: "send"; lines: string[] }
  | { type: "username"; name: string }
  | { type: "quit" }
  | { type: "redraw" };

/** Options for {@linkcode ChatState}. */
export interface ChatStateOptions {
  /** `host:port` for the status bar. */
  server: string;
  tls: boolean;
  /** The username, or undefined to ask for it in the input line. */
  username?: string;
  /** Messages as `<username> YYYY-MM-DD HH:mm:ss <text>` instead of `HH:mm:ss username text`. */
  briefFormat?: boolean;
  /** How many colours the palette has (render.ts's); names hash onto them. */
  paletteSize?: number;
}

/** The longest username accepted, in UTF-8 bytes: a frame must still have room for text. */
export const MAX_USERNAME_BYTES = 1024;

/** Why `name` cannot be a username, or undefined if it can. */
export function usernameProblem(name: string): string | undefined {
  if (name.trim() === "") return "The username must not be empty.";
  if (new TextEncoder().encode(name).length > MAX_USERNAME_BYTES) {
    return `The username is too long (at most ${MAX_USERNAME_BYTES} bytes).`;
  }
  return undefined;
}

function sameDate(a: Message, b: Message): boolean {
  return a.time.year === b.time.year && a.time.month === b.time.month &&
    a.time.day === b.time.day;
}

function dateOf(message: Message): string {
  return formatTimestamp(message.time).slice(0, -9);
}

/** The chat's state; see the module comment. */
export class ChatState {
  readonly server: string;
  readonly tls: boolean;
  readonly briefFormat: boolean;
  readonly paletteSize: number;
  readonly editor: LineEditor = new LineEditor();
  #status: ConnectionStatus = { state: "connecting" };
  /** A one-line notice shown in the status bar until the next key. */
  notice: string | undefined;
  #username: string | undefined;
  #messages: Message[] = [];
  /** Messages received in all (the scrollback may have let old ones go). */
  #received = 0;
  /** Screen lines between the bottom of the view and the newest line; 0 is live. */
  #scroll = 0;
  #unread = 0;
  /** Lines of a long paste waiting for y/n. */
  #confirming: string[] | undefined;
  #width = 80;
  #layout = new WeakMap<Message, { width: number; lines: ScreenLine[] }>();

  constructor(options: ChatStateOptions) {
    this.server = options.server;
    this.tls = options.tls;
    this.#username = options.username;
    this.briefFormat = options.briefFormat ?? false;
    this.paletteSize = options.paletteSize ?? 12;
  }

  get status(): ConnectionStatus {
    return this.#status;
  }
  /** A new connection state replaces any notice: the bar then shows what changed. */
  set status(status: ConnectionStatus) {
    this.#status = status;
    this.notice = undefined;
  }

  get username(): string | undefined {
    return this.#username;
  }
  get mode(): "username" | "chat" | "confirm" {
    if (this.#username === undefined) return "username";
    return this.#confirming ? "confirm" : "chat";
  }
  /** How many lines a pending paste would send. */
  get confirmingLines(): number {
    return this.#confirming?.length ?? 0;
  }
  get messages(): readonly Message[] {
    return this.#messages;
  }
  get received(): number {
    return this.#received;
  }
  get scroll(): number {
    return this.#scroll;
  }
  get unread(): number {
    return this.#unread;
  }
  get width(): number {
    return this.#width;
  }

  /** Sets the width the conversation is laid out at; the scroll position stays on its line. */
  setWidth(width: number): void {
    if (width === this.#width) return;
    if (this.#scroll > 0) {
      // Keep the newest line in view the same message: count whole messages below it.
      const below = this.#messagesBelow(this.#scroll);
      this.#width = width;
      this.#scroll = this.#linesOf(this.#messages.length - below, this.#messages.length);
    } else {
      this.#width = width;
    }
  }

  /** Adds messages as the server relayed them; a scrolled-up view stays where it is. */
  add(messages: readonly Message[]): void {
    const from = this.#messages.length;
    this.#messages.push(...messages);
    this.#received += messages.length;
    if (this.#scroll > 0) {
      this.#scroll += this.#linesOf(from, this.#messages.length);
      this.#unread += messages.length;
    }
    const over = this.#messages.length - SCROLLBACK_MESSAGES;
    if (over > 0) this.#messages.splice(0, over);
  }

  /** Scrolls by `lines` (positive is back in time), within the conversation of `height` lines. */
  scrollBy(lines: number, height: number): void {
    const top = Math.max(0, this.totalLines() - height);
    this.#scroll = Math.max(0, Math.min(this.#scroll + lines, top));
    if (this.#scroll === 0) this.#unread = 0;
  }

  /** Back to the newest line. */
  live(): void {
    this.#scroll = 0;
    this.#unread = 0;
  }

  /** Screen lines of the whole conversation at the current width. */
  totalLines(): number {
    return this.#linesOf(0, this.#messages.length);
  }

  /** The `height` conversation lines in view, top first (fewer when there are fewer). */
  visibleLines(height: number): ScreenLine[] {
    this.scrollBy(0, height); // clamp after a resize or a dropped scrollback
    const out: ScreenLine[] = [];
    let skip = this.#scroll;
    for (let i = this.#messages.length - 1; i >= 0 && out.length < height; i--) {
      const lines = this.messageLines(i);
      for (let j = lines.length - 1; j >= 0 && out.length < height; j--) {
        if (skip > 0) skip--;
        else out.push(lines[j]);
      }
    }
    return out.reverse();
  }

  /**
   * The screen lines of message `index`: a date line first when its date differs from the
   * message before, then `HH:mm:ss username text` wrapped with a hanging indent.
   */
  messageLines(index: number): ScreenLine[] {
    const message = this.#messages[index];
    const cached = this.#layout.get(message);
    const previous = this.#messages[index - 1];
    const separator = !this.briefFormat && (previous === undefined || !sameDate(previous, message));
    if (cached && cached.width === this.#width) {
      return this.#withDate(cached.lines, separator, message);
    }
    const lines = this.#lay(message);
    this.#layout.set(message, { width: this.#width, lines });
    return this.#withDate(lines, separator, message);
  }

  #withDate(lines: ScreenLine[], separator: boolean, message: Message): ScreenLine[] {
    if (!separator) return lines;
    return [[{ text: `-- ${dateOf(message)} --`, style: "separator" }], ...lines];
  }

  #lay(message: Message): ScreenLine[] {
    const user = neutralizeControls(message.username);
    const text = neutralizeControls(message.text);
    const stamp = formatTimestamp(message.time);
    const userSpan: Span = user === this.#username
      ? { text: user, style: "own", color: nameColor(user, this.paletteSize) }
      : { text: user, style: "user", color: nameColor(user, this.paletteSize) };
    const head: Span[] = this.briefFormat
      ? [userSpan, { text: ` ${stamp} `, style: "time" }]
      : [{ text: stamp.slice(11), style: "time" }, { text: " " }, userSpan, { text: " " }];
    const headWidth = head.reduce((sum, span) => sum + textWidth(span.text), 0);
    // A hanging indent under the text, unless the name is so long the text would starve.
    const indent = headWidth <= this.#width / 2 ? headWidth : Math.min(9, this.#width - 1);
    if (headWidth + textWidth(text) <= this.#width) return [[...head, { text }]];
    const pad: Span = { text: " ".repeat(indent) };
    if (headWidth >= this.#width - 1) {
      // A name as wide as the screen: it goes alone on the first line.
      const below = wrapText(text, Math.max(1, this.#width - indent));
      return [head, ...below.map((line) => [pad, { text: line }])];
    }
    const [first, ...rest] = wrapText(text, this.#width - headWidth, this.#width - indent);
    return [[...head, { text: first }], ...rest.map((line) => [pad, { text: line }])];
  }

  /** Screen lines of messages [from, to). */
  #linesOf(from: number, to: number): number {
    let lines = 0;
    for (let i = Math.max(0, from); i < to; i++) lines += this.messageLines(i).length;
    return lines;
  }

  /** How many whole messages lie below a view scrolled up by `scroll` lines. */
  #messagesBelow(scroll: number): number {
    let lines = 0;
    let count = 0;
    for (let i = this.#messages.length - 1; i >= 0; i--) {
      lines += this.messageLines(i).length;
      if (lines > scroll) break;
      count++;
    }
    return count;
  }

  /** Applies a key; `height` is the conversation's height, for paging. */
  press(key: Key, height: number): ChatAction {
    this.notice = undefined;
    if (this.mode === "confirm") return this.#confirm(key);
    if (
      key.type === "key" && (key.shift || key.ctrl) && (key.name === "up" || key.name === "down")
    ) {
      this.scrollBy(key.name === "up" ? 1 : -1, height);
      return { type: "none" };
    }
    if (key.type === "key" && (key.name === "pageup" || key.name === "pagedown")) {
      const page = Math.max(1, height - 1);
      this.scrollBy(key.name === "pageup" ? page : -page, height);
      return { type: "none" };
    }
    if (key.type === "ctrl" && key.letter === "l") return { type: "redraw" };
    if (
      this.mode === "username" && key.type === "key" && (key.name === "up" || key.name === "down")
    ) {
      return { type: "none" };
    }
    const result = this.editor.apply(key);
    switch (result.type) {
      case "quit":
        return { type: "quit" };
      case "unhandled":
        if (result.key.type === "key" && result.key.name === "end") this.live();
        return { type: "none" };
      case "submit":
        return this.#submit(result.lines);
      default:
        return { type: "none" };
    }
  }

  #submit(lines: string[]): ChatAction {
    if (this.mode === "username") {
      const name = lines.join(" ").trim();
      if (name === "") {
        this.notice = "Type a username and press Enter.";
        return { type: "none" };
      }
      const problem = usernameProblem(name);
      if (problem) {
        this.notice = problem;
        this.editor.setText(name);
        return { type: "none" };
      }
      this.#username = name;
      this.#layout = new WeakMap(); // the own name is highlighted from now on
      return { type: "username", name };
    }
    const toSend = lines.length === 1 && lines[0] === "" ? [] : lines;
    if (toSend.length === 0) return { type: "none" };
    if (this.status.state !== "connected") {
      // Keep what was typed: it goes once the connection is back.
      const rest = this.editor.text;
      this.editor.setText(toSend.join(" ") + (rest === "" ? "" : ` ${rest}`));
      this.notice = "Not connected: the line is kept; press Enter again once connected.";
      return { type: "none" };
    }
    if (toSend.length > PASTE_CONFIRM_LINES) {
      this.#confirming = toSend;
      return { type: "none" };
    }
    return this.#send(toSend);
  }

  #send(lines: string[]): ChatAction {
    for (const line of lines) this.editor.remember(line);
    this.live();
    return { type: "send", lines };
  }

  #confirm(key: Key): ChatAction {
    const lines = this.#confirming!;
    const answer = key.type === "text" ? key.text.trim().toLowerCase() : "";
    if (answer === "y" || (key.type === "key" && key.name === "enter")) {
      this.#confirming = undefined;
      if (this.status.state !== "connected") {
        this.notice = `Not connected: the ${lines.length} pasted lines were not sent.`;
        return { type: "none" };
      }
      return this.#send(lines);
    }
    if (answer === "n" || key.type === "ctrl" || (key.type === "key" && key.name === "escape")) {
      this.#confirming = undefined;
      this.notice = `The ${lines.length} pasted lines were not sent.`;
      if (key.type === "ctrl" && key.letter === "c") return { type: "quit" };
    }
    return { type: "none" };
  }
}
