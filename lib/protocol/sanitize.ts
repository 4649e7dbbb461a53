/**
 * Neutralises control characters before untrusted text reaches a terminal, so that no user
 * can move another user's cursor, retitle their window or ring their bell.
 *
 * @module
 */

// C0 controls (tab included: it can misalign the fixed format), DEL, C1 controls, and the
// Unicode line/paragraph separators and bidi overrides that reorder what a reader sees.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Replaces each control character by a visible escape: `\x1b`, `\u202e`.
 *
 * @example
 * ```ts
 * import { neutralizeControls } from "./sanitize.ts";
 * if (neutralizeControls("a\x1b[2Jb") !== "a\\x1b[2Jb") throw new Error();
 * ```
 */
export function neutralizeControls(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
