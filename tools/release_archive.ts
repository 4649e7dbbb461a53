/**
 * Release archives, written without any archiver installed: a gzipped ustar `.tar.gz` for
 * Linux and macOS (executables keep their mode), a `.zip` for Windows (stored, CRC-32 checked
 * by every unzip), and a `SHA256SUMS` file in the format `sha256sum --check` reads. Used by
 * `deno task compile`, which the release workflow runs, so a maintainer gets the same
 * artefacts as CI.
 *
 * @module
 */

/** One file of an archive. */
export interface ArchiveEntry {
  /** The path inside the archive, with `/` separators. */
  path: string;
  bytes: Uint8Array;
  /** Unix mode; 0o644 unless given (executables: 0o755). */
  mode?: number;
}

const encoder = new TextEncoder();

/** A ustar header field: `value` as octal digits, NUL-terminated, in `width` bytes. */
function octal(header: Uint8Array, at: number, width: number, value: number): void {
  header.set(encoder.encode(value.toString(8).padStart(width - 1, "0") + "\0"), at);
}

/** The 512-byte ustar header of `entry`, dated `mtime` (seconds). */
function tarHeader(entry: ArchiveEntry, mtime: number): Uint8Array {
  const header = new Uint8Array(512);
  const name = encoder.encode(entry.path);
  if (name.length > 100) throw new RangeError(`archive path too long for ustar: ${entry.path}`);
  header.set(name, 0);
  octal(header, 100, 8, entry.mode ?? 0o644);
  octal(header, 108, 8, 0); // uid
  octal(header, 116, 8, 0); // gid
  octal(header, 124, 12, entry.bytes.length);
  octal(header, 136, 12, mtime);
  header.fill(0x20, 148, 156); // the checksum field counts as spaces while summing
  header[156] = 0x30; // a regular file
  header.set(encoder.encode("ustar\u000000"), 257);
  const sum = header.reduce((a, b) => a + b, 0);
  header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return header;
}

/** Concatenates byte arrays. */
function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A `.tar.gz` of `entries`. */
export async function tarGz(
  entries: ArchiveEntry[],
  mtime = Date.now() / 1000,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry, Math.floor(mtime)), entry.bytes);
    const pad = (512 - (entry.bytes.length % 512)) % 512;
    parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024)); // two empty blocks end the archive
  const gzipped = new Blob([concat(parts)]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gzipped).arrayBuffer());
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (the zip and gzip one). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A `.zip` of `entries`, stored (executables barely compress, and every unzip reads it). */
export function zip(entries: ArchiveEntry[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.path);
    const crc = crc32(entry.bytes);
    const size = entry.bytes.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true); // version needed: 2.0
    local.setUint16(8, 0, true); // stored
    local.setUint32(14, crc, true);
    local.setUint32(18, size, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    locals.push(new Uint8Array(local.buffer), name, entry.bytes);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true);
    central.setUint16(4, (3 << 8) | 20, true); // made by Unix, so the mode below counts
    central.setUint16(6, 20, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, size, true);
    central.setUint32(24, size, true);
    central.setUint16(28, name.length, true);
    central.setUint32(38, ((0o100000 | (entry.mode ?? 0o644)) << 16) >>> 0, true);
    central.setUint32(42, offset, true);
    centrals.push(new Uint8Array(central.buffer), name);
    offset += 30 + name.length + size;
  }
  const directory = concat(centrals);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, directory.length, true);
  end.setUint32(16, offset, true);
  return concat([...locals, directory, new Uint8Array(end.buffer)]);
}

/** The hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `SHA256SUMS` text for `files` (name -> bytes), as `sha256sum` writes and checks it. */
export async function sha256Sums(files: Map<string, Uint8Array>): Promise<string> {
  const lines: string[] = [];
  for (const [name, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${await sha256Hex(bytes)}  ${name}`);
  }
  return lines.join("\n") + "\n";
}
