/**
 * Database files for the history tests, under the repository's history/ directory: the only
 * place the server's deno task may write (deno.json), which the tests do not widen.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { concatBytes } from "../../lib/protocol/bytes.ts";
import { frameParts, framesOf } from "../../lib/server/history/schema.ts";
import { REPO_ROOT } from "./processes.ts";
import { frameOf } from "./raw_client.ts";

/** A fresh directory under history/, removed with everything in it on dispose. */
export class HistoryDir implements AsyncDisposable {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<HistoryDir> {
    const root = join(REPO_ROOT, "history");
    await Deno.mkdir(root, { recursive: true });
    return new HistoryDir(await Deno.makeTempDir({ dir: root, prefix: "test_" }));
  }

  /** A database path in it, relative to the repository (as a user would give it). */
  file(name = "chat.db"): string {
    return join(this.dir, name).slice(REPO_ROOT.length);
  }

  /** The texts of every message in `name`, in the one global order, read read-only. */
  texts(name = "chat.db"): string[] {
    const db = new DatabaseSync(join(this.dir, name), { readOnly: true });
    try {
      return db.prepare("SELECT little_endian, frames FROM runs ORDER BY first").all()
        .flatMap((row) => {
          const littleEndian = row.little_endian === 1;
          return framesOf(row.frames as Uint8Array, littleEndian)
            .map((frame) => frameParts(frame, littleEndian)[1]);
        });
    } finally {
      db.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Frames from `user` saying `from`, `from + 1`, ... as one buffer. */
export function numberedFrames(
  user: string,
  from: number,
  count: number,
  littleEndian = false,
): Uint8Array {
  return concatBytes(
    Array.from({ length: count }, (_, i) => frameOf(user, String(from + i), littleEndian)),
  );
}

/** Whether `texts` are consecutive numbers; else the first place they are not. */
export function firstBreak(texts: string[]): string | undefined {
  for (let i = 1; i < texts.length; i++) {
    if (Number(texts[i]) !== Number(texts[i - 1]) + 1) {
      return `${texts[i - 1]} is followed by ${texts[i]} (at ${i} of ${texts.length})`;
    }
  }
  return undefined;
}
