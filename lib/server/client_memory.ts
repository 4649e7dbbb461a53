/**
 * The process-wide budget for memory held on behalf of clients: partly received frames and
 * unsent display backlogs. One client's holdings are bounded by its own limits
 * (--max-frame, --max-backlog), but many clients together could still take the process's
 * memory; over the budget, the clients holding the most are dropped first, as Redis 7's
 * `maxmemory-clients` does, until the total is back under it with some room.
 *
 * @module
 */

/** A client that holds memory and can be dropped to free it. */
export interface MemoryHolder {
  /** Bytes this client holds: its partial frame, or its unsent backlog. */
  readonly held: number;
  /** Drops the client, logging `reason`; what it held must be uncounted before it returns. */
  evict(reason: string): void;
}

/** What eviction brings the total down to, as a share of the budget. */
const EVICT_TO = 0.9;

/** Bytes held for clients, counted once each, and the holders to evict when over. */
export class ClientMemory {
  /** The budget in bytes; 0 means no budget. */
  readonly limit: number;
  #used = 0;
  #holders = new Set<MemoryHolder>();
  #checkQueued = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes held now, over all clients. */
  get used(): number {
    return this.#used;
  }

  add(holder: MemoryHolder): void {
    this.#holders.add(holder);
  }

  delete(holder: MemoryHolder): void {
    this.#holders.delete(holder);
  }

  /**
   * Counts `bytes` more (or fewer, when negative). Going over the budget schedules one check
   * in a microtask, so that the caller's work (a fan-out, a read) completes first.
   */
  change(bytes: number): void {
    this.#used += bytes;
    if (this.limit > 0 && this.#used > this.limit && !this.#checkQueued) {
      this.#checkQueued = true;
      queueMicrotask(this.#check);
    }
  }

  /** Drops the biggest holders until the total is under {@linkcode EVICT_TO} of the budget. */
  #check = (): void => {
    this.#checkQueued = false;
    if (this.#used <= this.limit) return;
    const target = this.limit * EVICT_TO;
    const biggest = [...this.#holders].filter((h) => h.held > 0).sort((a, b) => b.held - a.held);
    for (const holder of biggest) {
      if (this.#used <= target) break;
      holder.evict(
        `over the client memory budget: it held ${holder.held} bytes, all clients ${this.#used} of the --max-client-memory ${this.limit}`,
      );
    }
  };
}
