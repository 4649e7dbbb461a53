/**
 * Deadlines as absolute `Date.now()` milliseconds, so that one check's many waits share one
 * budget and no wait of the checker can outlive it.
 *
 * @module
 */

/** Milliseconds left before `deadline` (never negative). */
export function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The outcome of {@linkcode before}: the value, or `undefined` with `timedOut` set. */
export type Settled<T> = { timedOut: false; value: T } | { timedOut: true };

/**
 * Waits for `promise` until `deadline`. A rejection is passed on; on time-out the promise is
 * left running, so callers close whatever it waits on (which settles it) and it must not
 * reject unobserved: a handler is attached here.
 */
export async function before<T>(promise: Promise<T>, deadline: number): Promise<Settled<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  promise.catch(() => {});
  const timeout = new Promise<Settled<T>>((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), remaining(deadline));
  });
  try {
    return await Promise.race([
      promise.then((value): Settled<T> => ({ timedOut: false, value })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds for a message: `5 s`, `0.5 s`. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
