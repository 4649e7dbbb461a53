/**
 * The checker's two outputs: a line per check for a person (`PASS name`, `FAIL name` with
 * expected, got, an annotated hex dump and a hint, `SKIP name (why)`), or one JSON record per
 * check and a summary record for a grader's script.
 *
 * @module
 */

/** How a check ended. */
export type Status = "PASS" | "FAIL" | "SKIP";

/** One check's result, as printed and as written to JSON. */
export interface CheckRecord {
  group: string;
  name: string;
  status: Status;
  /** What the protocol asks for (failures). */
  expected?: string;
  /** What the implementation did (failures). */
  got?: string;
  /** A likely cause and its fix; on a PASS, a warning worth reading. */
  hint?: string;
  /** Why the check was skipped. */
  reason?: string;
  /** An annotated hex dump of the offending bytes, one string per line. */
  dump?: string[];
  durationMs: number;
}

/** The last JSON record: the counts, and whether everything selected passed. */
export interface SummaryRecord {
  type: "summary";
  mode: string;
  passed: number;
  failed: number;
  skipped: number;
  total: number;
  ok: boolean;
  notes: string[];
  durationMs: number;
}

/** Options for {@linkcode Reporter}. */
export interface ReporterOptions {
  /** JSON lines instead of text. */
  json?: boolean;
  /** Where lines go; stdout by default. */
  write?: (line: string) => void;
}

/** Collects check records and prints each as soon as it is final. */
export class Reporter {
  readonly records: CheckRecord[] = [];
  readonly notes: string[] = [];
  #json: boolean;
  #write: (line: string) => void;
  #started = Date.now();
  #mode: string;

  constructor(mode: string, options: ReporterOptions = {}) {
    this.#mode = mode;
    this.#json = options.json ?? false;
    this.#write = options.write ?? ((line) => console.log(line));
  }

  /** Records and prints one check's result. */
  add(record: CheckRecord): void {
    this.records.push(record);
    if (this.#json) {
      this.#write(JSON.stringify({ type: "check", ...record }));
    } else {
      for (const line of formatRecord(record)) this.#write(line);
    }
  }

  /** A remark about the run as a whole, e.g. that the server stopped answering. */
  note(text: string): void {
    this.notes.push(text);
    if (!this.#json) this.#write(`NOTE ${text}`);
  }

  /** Prints the summary and returns it. */
  finish(): SummaryRecord {
    const count = (status: Status) => this.records.filter((r) => r.status === status).length;
    const summary: SummaryRecord = {
      type: "summary",
      mode: this.#mode,
      passed: count("PASS"),
      failed: count("FAIL"),
      skipped: count("SKIP"),
      total: this.records.length,
      ok: this.records.length > 0 && this.records.every((r) => r.status === "PASS"),
      notes: this.notes,
      durationMs: Date.now() - this.#started,
    };
    if (this.#json) {
      this.#write(JSON.stringify(summary));
    } else {
      const verdict = summary.ok ? "all passed" : "NOT all passed";
      this.#write(
        `\n${summary.total} check${summary.total === 1 ? "" : "s"}: ${summary.passed} passed, ` +
          `${summary.failed} failed, ` +
          `${summary.skipped} skipped (${verdict})`,
      );
    }
    return summary;
  }

  /** 0 when every check passed, 1 otherwise. */
  exitCode(): number {
    return this.records.length > 0 && this.records.every((r) => r.status === "PASS") ? 0 : 1;
  }
}

/** The text lines of one record. */
export function formatRecord(record: CheckRecord): string[] {
  if (record.status === "SKIP") {
    return [`SKIP ${record.name}${record.reason ? ` (${record.reason})` : ""}`];
  }
  const lines = [`${record.status} ${record.name}`];
  if (record.status === "PASS") {
    if (record.hint) lines.push(...labelled("warning:", record.hint));
    return lines;
  }
  if (record.expected !== undefined) lines.push(...labelled("expected:", record.expected));
  if (record.got !== undefined) lines.push(...labelled("got:     ", record.got));
  if (record.dump && record.dump.length > 0) lines.push(...record.dump.map((l) => `    ${l}`));
  if (record.hint) lines.push(...labelled("hint:", record.hint));
  return lines;
}

function labelled(label: string, text: string): string[] {
  const pad = " ".repeat(label.length + 3);
  return text.split("\n").map((line, i) => i === 0 ? `  ${label} ${line}` : `${pad}${line}`);
}
