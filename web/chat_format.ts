/**
 * The page's pure rules, apart from the DOM so that they are unit-tested: colours, times,
 * what text is shown, and the reconnect backoff.
 *
 * @module
 */

import type { Timestamp } from "../lib/protocol/frame.ts";
import { neutralizeControls } from "../lib/protocol/sanitize.ts";
import { nameColor } from "../lib/protocol/name_colour.ts";

/**
 * Colours in style.css (.c0 to .c13): the terminal chat's 14 hues in its order, so that the
 * same hash gives a name the same colour in the browser and in the terminal.
 */
export const PALETTE_SIZE = 14;

/** A stable colour for a username, the one the terminal chat gives it. */
export function colourIndex(username: string): number {
  return nameColor(username, PALETTE_SIZE);
}

const two = (n: number) => String(n).padStart(2, "0");

/** "HH:mm" of the sender's time. */
export function shortTime(time: Timestamp): string {
  return `${two(time.hour)}:${two(time.minute)}`;
}

/** The full timestamp shown on hover, "2024-01-02 03:04:05". */
export function fullTime(time: Timestamp): string {
  return `${time.year}-${two(time.month)}-${two(time.day)} ${shortTime(time)}:${two(time.second)}`;
}

/** The day a date separator names, "2024-01-02". */
export function dayOf(time: Timestamp): string {
  return `${time.year}-${two(time.month)}-${two(time.day)}`;
}

/**
 * What a username or text is shown as: control and bidi characters made visible escapes, as
 * the terminal clients show them. It goes into the page as text (textContent), never as HTML.
 */
export function shownText(text: string): string {
  return neutralizeControls(text);
}

/** The first and the longest wait before reconnecting, in ms. */
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 20_000;

/**
 * Milliseconds to wait before reconnect attempt `attempt` (1, 2, ...): full jitter over a cap
 * that doubles from 0.5 s to 20 s, never below 0.5 s. `random` is in [0, 1).
 */
export function backoffMs(attempt: number, random: number): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt - 1));
  return Math.max(BACKOFF_MIN_MS, Math.floor(random * cap));
}

/** One line of what a user typed: the protocol carries no newline in a message. */
export function oneLine(typed: string): string {
  return typed.replace(/[\r\n]+/g, " ").trim();
}
