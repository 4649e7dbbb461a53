/**
 * How many terminal cells text takes: East Asian wide and fullwidth characters and emoji take
 * two, combining marks, joiners and variation selectors none, everything else one. The chat
 * wraps and cuts by cells, so a line of Chinese or emoji never runs past the screen's edge.
 *
 * @module
 */

/** Marks drawn on the previous character, and invisible joiners/selectors: zero cells. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200d\u2060\ufe00-\ufe0f\u{e0100}-\u{e01ef}]$/u;
/** Emoji shown as pictures by default: two cells. */
const EMOJI = /^\p{Emoji_Presentation}$/u;

/** East Asian Wide and Fullwidth ranges (Unicode's EastAsianWidth W and F), inclusive. */
const WIDE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

/** The cells one code point takes: 0, 1 or 2. */
export function codePointWidth(char: string): 0 | 1 | 2 {
  const code = char.codePointAt(0)!;
  if (code < 0x300) return code < 0x20 || (code >= 0x7f && code < 0xa0) ? 0 : 1;
  if (ZERO_WIDTH.test(char)) return 0;
  if (EMOJI.test(char)) return 2;
  for (const [low, high] of WIDE_RANGES) {
    if (code < low) break;
    if (code <= high) return 2;
  }
  return 1;
}

/** The cells `text` takes on one line. */
export function textWidth(text: string): number {
  let cells = 0;
  for (const char of text) cells += codePointWidth(char);
  return cells;
}

/**
 * The longest start of `text` that fits in `cells`, and the cells it takes. Zero-width marks
 * stay with the character before them.
 */
export function fitWidth(text: string, cells: number): { text: string; cells: number } {
  let used = 0;
  let end = 0;
  for (const char of text) {
    const width = codePointWidth(char);
    if (used + width > cells) break;
    used += width;
    end += char.length;
  }
  return { text: text.slice(0, end), cells: used };
}

/**
 * Cuts `text` into lines of at most `width` cells (`restWidth` after the first), at the last space when there is one in
 * the line (the space is dropped), otherwise between characters. Always at least one line.
 */
export function wrapText(text: string, width: number, restWidth: number = width): string[] {
  const lines: string[] = [];
  let rest = text;
  for (;;) {
    const room = Math.max(1, lines.length === 0 ? width : restWidth);
    if (textWidth(rest) <= room) break;
    let { text: head } = fitWidth(rest, room);
    if (head === "") head = [...rest][0]; // a wide character in a one-cell column
    const space = head.lastIndexOf(" ");
    if (rest[head.length] === " ") {
      lines.push(head);
      rest = rest.slice(head.length + 1);
    } else if (space > 0) {
      lines.push(head.slice(0, space));
      rest = rest.slice(space + 1);
    } else {
      lines.push(head);
      rest = rest.slice(head.length);
    }
  }
  if (rest !== "" || lines.length === 0) lines.push(rest);
  return lines;
}
