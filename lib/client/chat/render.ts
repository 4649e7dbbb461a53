/**
 * The chat's screen as a pure function of its state: {@linkcode layoutScreen} gives every row
 * (conversation, status bar, input line) as styled spans cut to the width, and where the
 * cursor goes; {@linkcode paintScreen} turns that into the ANSI text that draws it. Tests
 * check both without a terminal.
 *
 * @module
 */

import { neutralizeControls } from "../../protocol/sanitize.ts";
import type { ChatState, ScreenLine, Span } from "./state.ts";
import { fitWidth, textWidth } from "./width.ts";

/**
 * Name colours (xterm 256-colour numbers) of middling brightness, readable on dark and
 * light backgrounds alike, and far enough apart to tell names apart.
 */
export const PALETTE: readonly number[] = [
  160, // red
  166, // orange
  136, // ochre
  70, // green
  29, // sea green
  37, // teal
  32, // blue
  67, // steel blue
  62, // slate blue
  98, // purple
  133, // magenta
  168, // pink
  130, // brown
  100, // olive
];

/** A terminal's size in cells. */
export interface ScreenSize {
  columns: number;
  rows: number;
}

/** A laid-out screen: one line per row, and the cursor's row and column (0-based). */
export interface Screen {
  lines: ScreenLine[];
  cursor: { row: number; column: number };
}

/** Rows that are not conversation: the status bar and the input line. */
export const CHROME_ROWS = 2;

/** The conversation's height on a screen of `rows`. */
export function conversationHeight(rows: number): number {
  return Math.max(0, rows - CHROME_ROWS);
}

/** Cuts spans to `columns` cells. */
function cut(line: ScreenLine, columns: number): ScreenLine {
  const out: ScreenLine = [];
  let room = columns;
  for (const span of line) {
    if (room <= 0) break;
    const fit = fitWidth(span.text, room);
    if (fit.text !== "") out.push({ ...span, text: fit.text });
    room -= fit.cells;
    if (fit.text.length < span.text.length) break;
  }
  return out;
}

/** The status bar's text: server, TLS, connection, messages, and scrolling. */
export function statusText(state: ChatState): string {
  // A notice first: it answers the key just pressed.
  const parts: string[] = state.notice ? [state.notice] : [];
  const status = state.status;
  if (status.state === "connected") parts.push("connected");
  else if (status.state === "connecting") parts.push("connecting");
  else {
    parts.push(
      `reconnecting (attempt ${status.attempt ?? 1})${status.reason ? `: ${status.reason}` : ""}`,
    );
  }
  parts.push(`${state.received} message${state.received === 1 ? "" : "s"}`);
  if (state.scroll > 0) parts.push(`scrolled up, ${state.unread} unread, End: live`);
  parts.push(`${state.server}${state.tls ? " TLS" : " plain"}`);
  return ` ${parts.join(" | ")} `;
}

/** The input row: prompt and text, scrolled sideways so the cursor stays on screen. */
function inputLine(state: ChatState, columns: number): { line: ScreenLine; column: number } {
  let prompt: string;
  if (state.mode === "confirm") {
    prompt = `Send ${state.confirmingLines} pasted lines? (y/n) `;
    return { line: cut([{ text: prompt, style: "prompt" }], columns), column: 0 };
  }
  prompt = state.mode === "username" ? "Username: " : `${neutralizeControls(state.username!)}> `;
  const editor = state.editor;
  let before = neutralizeControls(editor.text.slice(0, editor.cursor));
  const after = neutralizeControls(editor.text.slice(editor.cursor));
  const promptWidth = Math.min(textWidth(prompt), Math.max(0, columns - 2));
  const room = Math.max(1, columns - promptWidth - 1);
  // Drop characters off the front until the cursor fits.
  while (textWidth(before) > room) {
    before = before.slice(String.fromCodePoint(before.codePointAt(0)!).length);
  }
  const column = promptWidth + textWidth(before);
  const line = cut([
    { text: prompt, style: "prompt" },
    { text: before + after },
  ], columns);
  if (promptWidth < textWidth(prompt)) {
    line[0] = { ...line[0], text: fitWidth(prompt, promptWidth).text };
  }
  return { line: cut(line, columns), column };
}

/** Lays out the whole screen for `size`. */
export function layoutScreen(state: ChatState, size: ScreenSize): Screen {
  const columns = Math.max(1, size.columns);
  const rows = Math.max(1, size.rows);
  state.setWidth(columns);
  const height = conversationHeight(rows);
  const conversation = state.visibleLines(height).map((line) => cut(line, columns));
  while (conversation.length < height) conversation.unshift([]);
  const status = statusText(state);
  const bar = fitWidth(status, columns);
  const statusLine: ScreenLine = [{
    text: bar.text + " ".repeat(columns - bar.cells),
    style: "status",
  }];
  const input = inputLine(state, columns);
  const lines = [...conversation, statusLine, input.line].slice(-rows);
  return { lines, cursor: { row: lines.length - 1, column: Math.min(input.column, columns - 1) } };
}

/** Options for {@linkcode paintScreen}. */
export interface PaintOptions {
  /** false draws without colours (NO_COLOR, --no-color): bold, dim and reverse only. */
  color: boolean;
}

const CSI = "\x1b[";

function styleCodes(span: Span, color: boolean): string {
  switch (span.style) {
    case "time":
    case "separator":
      return "2";
    case "status":
      return "7";
    case "prompt":
      return "1";
    case "notice":
      return "1";
    case "own":
      return color ? `1;4;38;5;${PALETTE[span.color ?? 0]}` : "1;4";
    case "user":
      return color ? `38;5;${PALETTE[span.color ?? 0]}` : "";
    default:
      return "";
  }
}

/**
 * The ANSI text that draws `screen` over the whole terminal: each row from its first column,
 * cleared to its end, then the cursor put where the input is. The cursor is hidden while
 * drawing so it does not flicker across the screen.
 */
export function paintScreen(screen: Screen, options: PaintOptions): string {
  let out = `${CSI}?25l`;
  screen.lines.forEach((line, row) => {
    out += `${CSI}${row + 1};1H`;
    for (const span of line) {
      const codes = styleCodes(span, options.color);
      out += codes === "" ? span.text : `${CSI}${codes}m${span.text}${CSI}0m`;
    }
    out += `${CSI}K`;
  });
  out += `${CSI}${screen.cursor.row + 1};${screen.cursor.column + 1}H${CSI}?25h`;
  return out;
}

/** A screen line as plain text, for tests and line mode. */
export function plainText(line: ScreenLine): string {
  return line.map((span) => span.text).join("");
}
