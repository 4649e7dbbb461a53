/**
 * Waiting without sleeping: every wait in the end-to-end tests is for an event (a line, a
 * message, an exit), and every wait has a deadline whose failure says what was seen so far.
 *
 * @module
 */

/** How long any single wait may take before the test fails; only a hang should reach it. */
export const WAIT_MS = 10_000;

/** Settles with `work`, or rejects with `what` and the time limit if `ms` pass first. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A test body bounded in time, for `Deno.test(name, bounded(30_000, async (t) => ...))`. The
 * waits inside have their own, shorter deadlines; this one catches whatever they do not.
 */
export function bounded(
  ms: number,
  body: (t: Deno.TestContext) => Promise<void>,
): (t: Deno.TestContext) => Promise<void> {
  return (t) => within(ms, `the test "${t.name}"`, body(t));
}

/** What a {@linkcode Watch} waiter needs: a check, and what to show when it fails. */
interface Waiter {
  what: string;
  check: () => boolean;
  settle: (error?: Error) => void;
}

/**
 * Something that changes over time (lines arriving, a stream ending) that tests can wait
 * on. The owner calls {@linkcode Watch.changed} after each change and {@linkcode Watch.end}
 * once nothing more can change.
 */
export class Watch {
  readonly label: string;
  #waiters = new Set<Waiter>();
  #ended: string | undefined;
  #describe: () => string;

  /** `describe` renders what has been seen so far, for failure messages. */
  constructor(label: string, describe: () => string) {
    this.label = label;
    this.#describe = describe;
  }

  /** Why nothing more can arrive, once {@linkcode Watch.end} was called. */
  get ended(): string | undefined {
    return this.#ended;
  }

  /** Resolves once `check()` holds; rejects after `ms`, or if the source ends first. */
  until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.#ended !== undefined) return Promise.reject(this.#failure(what, this.#ended));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        what,
        check,
        settle: (error) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          if (error) reject(error);
          else resolve();
        },
      };
      const timer = setTimeout(
        () => waiter.settle(this.#failure(what, `nothing matched within ${ms} ms`)),
        ms,
      );
      this.#waiters.add(waiter);
    });
  }

  /** Re-checks every waiter. */
  changed(): void {
    for (const waiter of [...this.#waiters]) {
      let held: boolean;
      try {
        held = waiter.check();
      } catch (error) {
        waiter.settle(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (held) waiter.settle();
    }
  }

  /** Nothing more will change; waiters still unsatisfied fail now. */
  end(reason: string): void {
    if (this.#ended !== undefined) return;
    this.changed();
    this.#ended = reason;
    for (const waiter of [...this.#waiters]) {
      waiter.settle(this.#failure(waiter.what, reason));
    }
  }

  #failure(what: string, why: string): Error {
    return new Error(
      `${this.label}: waiting for ${what}: ${why}. Seen so far:\n${
        this.#describe() || "(nothing)"
      }`,
    );
  }
}
