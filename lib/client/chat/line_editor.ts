/**
 * The input line: text, cursor and the history of sent lines, edited by keys the way
 * readline edits a shell's line. Pure: keys in, what to do out; the chat decides the rest.
 *
 * @module
 */

import type { Key } from "./input_keys.ts";
import { codePointWidth } from "./width.ts";

/** How many sent lines Up/Down can bring back. */
export const HISTORY_SIZE = 100;

/** What a key asked for beyond editing the line. */
export type EditResult =
  | { type: "none" }
  /** Enter: these lines are to be sent (one, or several from a paste). */
  | { type: "submit"; lines: string[] }
  /** Ctrl+C, or Ctrl+D on an empty line. */
  | { type: "quit" }
  /** A key the editor does not use (scrolling, redraw), for the chat to handle. */
  | { type: "unhandled"; key: Key };

/** A line being typed, with its cursor (in UTF-16 units, always between characters). */
export class LineEditor {
  #text = "";
  #cursor = 0;
  #history: string[] = [];
  /** Index into the history while browsing it; history.length when not. */
  #browsing = 0;
  /** What was typed before browsing started, restored when Down passes the newest entry. */
  #draft = "";

  get text(): string {
    return this.#text;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** The sent lines Up can bring back, oldest first. */
  get history(): readonly string[] {
    return this.#history;
  }

  /** Replaces the line, cursor at its end. */
  setText(text: string): void {
    this.#text = text;
    this.#cursor = text.length;
  }

  /** Records a sent line for Up/Down (not an empty one, nor a repeat of the last). */
  remember(line: string): void {
    if (line !== "" && this.#history.at(-1) !== line) this.#history.push(line);
    if (this.#history.length > HISTORY_SIZE) this.#history.shift();
    this.#browsing = this.#history.length;
  }

  /** Applies one key. */
  apply(key: Key): EditResult {
    switch (key.type) {
      case "text":
        this.#insert(key.text);
        return { type: "none" };
      case "paste":
        return this.#paste(key.text);
      case "ctrl":
        return this.#control(key);
      case "unknown":
        return { type: "none" };
      case "key":
        if (key.shift || key.ctrl) {
          if (key.name === "left" && key.ctrl) return this.#move(this.#wordLeft());
          if (key.name === "right" && key.ctrl) return this.#move(this.#wordRight());
          return { type: "unhandled", key };
        }
        switch (key.name) {
          case "enter":
            return this.#submit();
          case "backspace":
            if (key.alt) this.#cut(this.#wordLeft(), this.#cursor);
            else this.#cut(this.#previous(this.#cursor), this.#cursor);
            return { type: "none" };
          case "delete":
            this.#cut(this.#cursor, this.#next(this.#cursor));
            return { type: "none" };
          case "left":
            return this.#move(this.#previous(this.#cursor));
          case "right":
            return this.#move(this.#next(this.#cursor));
          case "home":
            return this.#move(0);
          case "end":
            this.#cursor = this.#text.length;
            // End also returns a scrolled-up view to live: the chat sees it too.
            return { type: "unhandled", key };
          case "word-left":
            return this.#move(this.#wordLeft());
          case "word-right":
            return this.#move(this.#wordRight());
          case "up":
            this.#recall(-1);
            return { type: "none" };
          case "down":
            this.#recall(1);
            return { type: "none" };
          default:
            return { type: "unhandled", key };
        }
    }
  }

  #control(key: Key & { type: "ctrl" }): EditResult {
    switch (key.letter) {
      case "a":
        return this.#move(0);
      case "e":
        return this.#move(this.#text.length);
      case "b":
        return this.#move(this.#previous(this.#cursor));
      case "f":
        return this.#move(this.#next(this.#cursor));
      case "k":
        this.#cut(this.#cursor, this.#text.length);
        return { type: "none" };
      case "u":
        this.#cut(0, this.#cursor);
        return { type: "none" };
      case "w":
        this.#cut(this.#wordLeft(), this.#cursor);
        return { type: "none" };
      case "h":
        this.#cut(this.#previous(this.#cursor), this.#cursor);
        return { type: "none" };
      case "c":
        return { type: "quit" };
      case "d":
        if (this.#text === "") return { type: "quit" };
        this.#cut(this.#cursor, this.#next(this.#cursor));
        return { type: "none" };
      case "m":
      case "j":
        return this.#submit();
      default:
        return { type: "unhandled", key };
    }
  }

  #submit(): EditResult {
    const line = this.#text;
    this.#text = "";
    this.#cursor = 0;
    this.#draft = "";
    this.#browsing = this.#history.length;
    return { type: "submit", lines: [line] };
  }

  /**
   * Pasted text goes in at the cursor; every complete line of the result is to be sent, and
   * what follows the last line break stays in the input.
   */
  #paste(text: string): EditResult {
    this.#insert(text.replace(/\r\n?/g, "\n").replace(/\t/g, " "));
    const parts = this.#text.split("\n");
    if (parts.length === 1) return { type: "none" };
    const rest = parts.pop()!;
    const tail = this.#text.length - this.#cursor;
    this.#text = rest;
    this.#cursor = Math.max(0, rest.length - tail);
    this.#browsing = this.#history.length;
    return { type: "submit", lines: parts };
  }

  #insert(text: string): void {
    this.#text = this.#text.slice(0, this.#cursor) + text + this.#text.slice(this.#cursor);
    this.#cursor += text.length;
  }

  #cut(from: number, to: number): void {
    if (to <= from) return;
    this.#text = this.#text.slice(0, from) + this.#text.slice(to);
    this.#cursor = from;
  }

  #move(to: number): EditResult {
    this.#cursor = Math.max(0, Math.min(to, this.#text.length));
    return { type: "none" };
  }

  /** The start of the character before `at`, with any zero-width marks on it. */
  #previous(at: number): number {
    let i = at;
    while (i > 0) {
      i -= isLowSurrogateAt(this.#text, i - 1) && i >= 2 ? 2 : 1;
      if (codePointWidth(String.fromCodePoint(this.#text.codePointAt(i)!)) !== 0) break;
    }
    return i;
  }

  /** The end of the character at `at`, with any zero-width marks after it. */
  #next(at: number): number {
    if (at >= this.#text.length) return at;
    let i = at + String.fromCodePoint(this.#text.codePointAt(at)!).length;
    while (i < this.#text.length) {
      const char = String.fromCodePoint(this.#text.codePointAt(i)!);
      if (codePointWidth(char) !== 0) break;
      i += char.length;
    }
    return i;
  }

  /** Where the word before the cursor starts (spaces before it skipped). */
  #wordLeft(): number {
    let i = this.#cursor;
    while (i > 0 && this.#text[i - 1] === " ") i--;
    while (i > 0 && this.#text[i - 1] !== " ") i--;
    return i;
  }

  /** Where the word after the cursor ends (spaces before it skipped). */
  #wordRight(): number {
    let i = this.#cursor;
    while (i < this.#text.length && this.#text[i] === " ") i++;
    while (i < this.#text.length && this.#text[i] !== " ") i++;
    return i;
  }

  #recall(step: -1 | 1): void {
    const target = this.#browsing + step;
    if (target < 0 || target > this.#history.length) return;
    if (this.#browsing === this.#history.length) this.#draft = this.#text;
    this.#browsing = target;
    this.setText(target === this.#history.length ? this.#draft : this.#history[target]);
  }
}

function isLowSurrogateAt(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  return code >= 0xdc00 && code <= 0xdfff;
}
