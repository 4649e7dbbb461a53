/**
 * Lines of text arriving on a pipe (a child's stdout or stderr), kept for assertions and
 * waited on as they come: the one log reader of the tests, the soak, the fuzzers and the bench.
 *
 * @module
 */

import { Watch } from "./wait.ts";

/** How many trailing lines a failure message shows. */
const SHOWN_LINES = 40;
/** How many lines {@linkcode Lines.tail} keeps. */
const TAIL_LINES = 200;

/** A line cut to a length a failure message can show. */
function shorten(line: string): string {
  return line.length > 200 ? `${line.slice(0, 200)}... (${line.length} characters)` : line;
}

/** Options for {@linkcode Lines}. */
export interface LinesOptions {
  /**
   * Keep every line and byte (default true: tests assert on them). A long run (the soak) keeps
   * only the {@linkcode Lines.tail} and counts; {@linkcode Lines.next} and
   * {@linkcode Lines.collect} still see every line as it comes.
   */
  keepAll?: boolean;
  /** Also append every byte to this file, which is closed when the pipe ends. */
  file?: Deno.FsFile;
}

/** Lines of text arriving on a pipe, kept for assertions and waited on as they come. */
export class Lines {
  /** Every complete line so far (and, once the pipe ends, an unterminated last one). */
  readonly all: string[] = [];
  /** The last lines, for failure messages. */
  readonly tail: string[] = [];
  /** How many lines have arrived. */
  count = 0;
  /** Resolves when the pipe has ended and been read to the end. */
  readonly done: Promise<void>;
  #chunks: Uint8Array[] = [];
  #partial = "";
  #watch: Watch;
  #keepAll: boolean;
  #file: Deno.FsFile | undefined;
  #listeners: ((line: string) => void)[] = [];

  constructor(label: string, stream: ReadableStream<Uint8Array>, options: LinesOptions = {}) {
    this.#keepAll = options.keepAll ?? true;
    this.#file = options.file;
    this.#watch = new Watch(label, () => this.tail.slice(-SHOWN_LINES).map(shorten).join("\n"));
    this.done = this.#pump(stream);
  }

  /** Every byte received, exactly as it came. */
  get bytes(): Uint8Array {
    const out = new Uint8Array(this.#chunks.reduce((sum, c) => sum + c.length, 0));
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /** Everything received, as text. */
  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }

  /** The kept lines matching `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.all.filter((line) => pattern.test(line));
  }

  /** The first kept line at index `from` or later that matches `pattern`, once it arrives. */
  async waitFor(pattern: RegExp, options: { from?: number; ms?: number } = {}): Promise<string> {
    const from = options.from ?? 0;
    const find = () => this.all.findIndex((line, i) => i >= from && pattern.test(line));
    await this.#watch.until(() => find() >= 0, `a line matching ${pattern}`, options.ms);
    return this.all[find()];
  }

  /** The first `count` kept lines matching `pattern`, once that many have arrived. */
  async waitForCount(pattern: RegExp, count: number, ms?: number): Promise<string[]> {
    await this.#watch.until(
      () => this.matching(pattern).length >= count,
      `${count} lines matching ${pattern}`,
      ms,
    );
    return this.matching(pattern).slice(0, count);
  }

  /** The first line from now on that matches `pattern`, once it arrives. */
  async next(pattern: RegExp, ms?: number): Promise<string> {
    let found: string | undefined;
    const stop = this.onLine((line) => {
      if (found === undefined && pattern.test(line)) found = line;
    });
    try {
      await this.#watch.until(() => found !== undefined, `a new line matching ${pattern}`, ms);
      return found!;
    } finally {
      stop();
    }
  }

  /** Keeps every later line for which `filter` is true; returns them as they come. */
  collect(filter: (line: string) => boolean): string[] {
    const kept: string[] = [];
    this.onLine((line) => {
      if (filter(line)) kept.push(line);
    });
    return kept;
  }

  /** Calls `listener` with every later line; returns a function that stops it. */
  onLine(listener: (line: string) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        if (this.#keepAll) this.#chunks.push(chunk);
        if (this.#file) await this.#file.write(chunk);
        this.#add(decoder.decode(chunk, { stream: true }));
      }
      this.#add(decoder.decode());
    } finally {
      if (this.#partial !== "") this.#line(this.#partial);
      this.#partial = "";
      this.#file?.close();
      this.#watch.end("the pipe ended (the process exited)");
    }
  }

  #add(text: string): void {
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    if (parts.length === 0) return;
    for (const line of parts) this.#line(line);
    this.#watch.changed();
  }

  #line(line: string): void {
    this.count++;
    if (this.#keepAll) this.all.push(line);
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    for (const listener of [...this.#listeners]) listener(line);
  }
}
