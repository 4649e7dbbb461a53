/**
 * Local timestamps as the wire carries them, and the display's `YYYY-MM-DD HH:mm:ss`.
 *
 * @module
 */

import type { Timestamp } from "./frame.ts";

/** The current local wall-clock time, which is what a keyboard stamps on each message. */
export function localTimestamp(date: Date = new Date()): Timestamp {
  return {
    year: date.getFullYear(),
    month: date.getMonth() + 1,
    day: date.getDate(),
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds(),
  };
}

function pad(value: number, width = 2): string {
  const sign = value < 0 ? "-" : "";
  return sign + String(Math.abs(value)).padStart(width, "0");
}

/**
 * Formats a timestamp as `YYYY-MM-DD HH:mm:ss`, zero-padded.
 *
 * @example
 * ```ts
 * import { formatTimestamp } from "./time.ts";
 * const text = formatTimestamp({ year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5 });
 * if (text !== "2024-01-02 03:04:05") throw new Error(text);
 * ```
 */
export function formatTimestamp(time: Timestamp): string {
  return `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)} ${pad(time.hour)}:${
    pad(time.minute)
  }:${pad(time.second)}`;
}
