/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32), so that
 * every fuzz and soak run can be replayed exactly from the seed it prints.
 *
 * @module
 */

/** A reproducible stream of random numbers. */
export class Prng {
  #s = new Uint32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads any seed, 0 included, over the whole state.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The next 32 random bits, as an unsigned integer. */
  next(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [min, max], both included. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const words = new Uint32Array((n + 3) >> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    return new Uint8Array(words.buffer, 0, n);
  }

  /** A new generator whose stream depends on this one's, for an independent task. */
  fork(): Prng {
    return new Prng(this.next());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seed from the clock, for runs that were not given one (it is printed, so it can be replayed). */
export function freshSeed(): number {
  return (Date.now() ^ (performance.now() * 1000)) >>> 0;
}
