/**
 * The colour a username gets, as an index into a client's palette: not part of the wire
 * format, a convention the terminal chat and the page share so that one person has one colour
 * everywhere. Pure, for the page too.
 *
 * @module
 */

/**
 * A name's palette index: FNV-1a over its UTF-16 code units, modulo `paletteSize`.
 *
 * @example
 * ```ts
 * import { nameColor } from "./name_colour.ts";
 * if (nameColor("alice", 14) !== nameColor("alice", 14)) throw new Error();
 * ```
 */
export function nameColor(name: string, paletteSize: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  }
  return (hash >>> 0) % paletteSize;
}
