/**
 * Byte-exact reads and writes over anything with `read` / `write`: a TCP or TLS connection,
 * stdin/stdout, or a test's fake.
 *
 * @module
 */

/** Something bytes can be read from, like `Deno.Conn`. */
export interface Reader {
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Something bytes can be written to, like `Deno.Conn`. */
export interface Writer {
  write(bytes: Uint8Array): Promise<number>;
}

/** Reads exactly `n` bytes, or returns null if the stream ends first. */
export async function readExact(reader: Reader, n: number): Promise<Uint8Array | null> {
  const bytes = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = await reader.read(bytes.subarray(got));
    if (read === null) return null;
    got += read;
  }
  return bytes;
}

/** Closes `resource`, which may be closed already (by the runtime, or the peer's end). */
export function closeQuietly(resource: { close(): void } | undefined): void {
  try {
    resource?.close();
  } catch {
    // Closed already.
  }
}

/** Writes every byte, however many calls the writer needs. */
export async function writeAll(writer: Writer, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await writer.write(bytes.subarray(written));
  }
}
