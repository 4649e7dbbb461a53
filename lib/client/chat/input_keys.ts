/**
 * Terminal input bytes to keys: UTF-8 text, control characters and the escape sequences
 * xterm, tmux, the Linux console and Windows Terminal send for arrows, Home/End, PageUp/Down,
 * Delete, modifiers and bracketed paste. Pure: the chat feeds it what stdin reads, in any
 * split, and a lone ESC is only decided once {@linkcode KeyDecoder.flush} says no more came.
 *
 * @module
 */

/** The keys the chat acts on. */
export type KeyName =
  | "enter"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  | "home"
  | "end"
  | "pageup"
  | "pagedown"
  | "escape"
  | "tab"
  | "word-left"
  | "word-right";

/** One key press, or a run of typed or pasted text. */
export type Key =
  | { type: "text"; text: string }
  | { type: "paste"; text: string }
  | { type: "key"; name: KeyName; shift?: boolean; ctrl?: boolean; alt?: boolean }
  /** Ctrl + a letter (lower case), e.g. "a" for Ctrl+A. */
  | { type: "ctrl"; letter: string }
  | { type: "unknown"; sequence: string };

const ESC = "\x1b";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/** The final byte of a CSI sequence without a number: ESC [ A, ESC [ 1;5 A. */
const CSI_LETTERS: Record<string, KeyName> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
};

/** The number of an ESC [ n ~ sequence. */
const CSI_TILDE: Record<string, KeyName> = {
  "1": "home",
  "7": "home",
  "4": "end",
  "8": "end",
  "3": "delete",
  "5": "pageup",
  "6": "pagedown",
};

/** Incremental decoder from terminal bytes to {@linkcode Key}s. */
export class KeyDecoder {
  #text = new TextDecoder();
  #pending = "";
  #paste: string | undefined;

  /** Decodes `bytes`; an incomplete escape sequence or UTF-8 character waits for more. */
  push(bytes: Uint8Array): Key[] {
    this.#pending += this.#text.decode(bytes, { stream: true });
    return this.#drain(false);
  }

  /** Whether a lone ESC (or a sequence's start) is waiting to be decided. */
  get pending(): boolean {
    return this.#pending !== "" && this.#paste === undefined;
  }

  /** Decides what is pending as it is: a lone ESC is the Escape key. */
  flush(): Key[] {
    return this.#drain(true);
  }

  #drain(final: boolean): Key[] {
    const keys: Key[] = [];
    let text = "";
    const flushText = () => {
      if (text !== "") keys.push({ type: "text", text });
      text = "";
    };
    let s = this.#pending;
    while (s !== "") {
      if (this.#paste !== undefined) {
        const end = s.indexOf(PASTE_END);
        if (end < 0) {
          // Keep a possible start of the end marker back.
          const keep = partialSuffix(s, PASTE_END);
          this.#paste += s.slice(0, s.length - keep);
          s = s.slice(s.length - keep);
          break;
        }
        keys.push({ type: "paste", text: this.#paste + s.slice(0, end) });
        this.#paste = undefined;
        s = s.slice(end + PASTE_END.length);
        continue;
      }
      const c = s[0];
      if (c === ESC) {
        const parsed = parseEscape(s, final);
        if (parsed === undefined) break; // wait for the rest
        flushText();
        s = s.slice(parsed.length);
        if (parsed.key === "paste-start") this.#paste = "";
        else keys.push(parsed.key);
        continue;
      }
      const code = c.charCodeAt(0);
      if (code < 0x20 || code === 0x7f) {
        flushText();
        keys.push(controlKey(code));
        // CR LF (a pasted Windows line end, or a terminal in a strange mode) is one Enter.
        s = s.slice(c === "\r" && s[1] === "\n" ? 2 : 1);
        continue;
      }
      const char = String.fromCodePoint(s.codePointAt(0)!);
      text += char;
      s = s.slice(char.length);
    }
    flushText();
    this.#pending = s;
    return keys;
  }
}

/** How many characters at the end of `s` could begin `marker`. */
function partialSuffix(s: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, s.length); n > 0; n--) {
    if (marker.startsWith(s.slice(-n))) return n;
  }
  return 0;
}

function controlKey(code: number): Key {
  switch (code) {
    case 0x0d:
    case 0x0a:
      return { type: "key", name: "enter" };
    case 0x7f:
    case 0x08:
      return { type: "key", name: "backspace" };
    case 0x09:
      return { type: "key", name: "tab" };
    case 0x00:
      return { type: "unknown", sequence: "\x00" };
    default:
      if (code <= 0x1a) return { type: "ctrl", letter: String.fromCharCode(0x60 + code) };
      return { type: "unknown", sequence: String.fromCharCode(code) };
  }
}

/** Reads the modifier parameter of `ESC [ 1 ; m X` (xterm: 1 + shift(1) + alt(2) + ctrl(4)). */
function modifiers(param: string | undefined): { shift?: boolean; alt?: boolean; ctrl?: boolean } {
  const m = Number(param ?? "1") - 1;
  if (!(m > 0)) return {};
  const out: { shift?: boolean; alt?: boolean; ctrl?: boolean } = {};
  if (m & 1) out.shift = true;
  if (m & 2) out.alt = true;
  if (m & 4) out.ctrl = true;
  return out;
}

/**
 * One escape sequence at the start of `s` (which starts with ESC): the key and how many
 * characters it took, or undefined when more input may complete it (unless `final`).
 */
function parseEscape(
  s: string,
  final: boolean,
): { key: Key | "paste-start"; length: number } | undefined {
  if (s.length === 1) {
    return final ? { key: { type: "key", name: "escape" }, length: 1 } : undefined;
  }
  const second = s[1];
  if (second === "[") {
    // CSI: parameters 0x30-0x3f, intermediates 0x20-0x2f, final 0x40-0x7e.
    // Matched after the ESC, which is s[0].
    const match = /^\[([0-9;?<>=:]*)([ -/]*)([@-~])/.exec(s.slice(1));
    if (!match) {
      if (/^\[[0-9;?<>=: -/]*$/.test(s.slice(1)) && !final) return undefined;
      return { key: { type: "key", name: "escape" }, length: 1 };
    }
    const [body, params, , last] = match;
    const sequence = ESC + body;
    if (sequence === PASTE_START) return { key: "paste-start", length: sequence.length };
    const parts = params.split(";");
    const name = last === "~" ? CSI_TILDE[parts[0]] : CSI_LETTERS[last];
    if (name === undefined) return { key: { type: "unknown", sequence }, length: sequence.length };
    return {
      key: { type: "key", name, ...modifiers(parts[1]) },
      length: sequence.length,
    };
  }
  if (second === "O") {
    // SS3: the application-mode arrows and Home/End.
    if (s.length < 3) {
      return final ? { key: { type: "key", name: "escape" }, length: 1 } : undefined;
    }
    const name = CSI_LETTERS[s[2]];
    return {
      key: name ? { type: "key", name } : { type: "unknown", sequence: s.slice(0, 3) },
      length: 3,
    };
  }
  if (second === ESC) return { key: { type: "key", name: "escape" }, length: 1 };
  // Alt + a key: ESC then the key.
  const char = String.fromCodePoint(s.codePointAt(1)!);
  const length = 1 + char.length;
  if (char === "b" || char === "B") return { key: { type: "key", name: "word-left" }, length };
  if (char === "f" || char === "F") return { key: { type: "key", name: "word-right" }, length };
  if (char === "\x7f" || char === "\x08") {
    return { key: { type: "key", name: "backspace", alt: true }, length };
  }
  return { key: { type: "unknown", sequence: s.slice(0, length) }, length };
}
