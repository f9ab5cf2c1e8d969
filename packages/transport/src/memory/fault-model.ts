import type { Rng } from '../rng.js';

/** Network faults between distinct nodes. Every probability is per message and per recipient. */
export interface FaultOptions {
  /** Chance that a message is lost. */
  readonly dropRate?: number;
  /** Chance that a message is delivered twice (each copy gets its own delay). */
  readonly duplicateRate?: number;
  /** Each delivery waits a uniform delay in [minDelayMs, maxDelayMs]; unequal delays reorder. */
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Chance that a message is held back an extra delay of up to reorderDelayMs. */
  readonly reorderRate?: number;
  readonly reorderDelayMs?: number;
}

export interface Fate {
  /** One delay per copy delivered; empty when the message is lost. */
  readonly delaysMs: readonly number[];
  readonly reason: 'delivered' | 'dropped' | 'partitioned';
}

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1))
    throw new RangeError(`${name} must be in [0, 1], got ${p}`);
}

/**
 * Decides each message's fate from a seeded Rng. Partitions are named sets of nodes: two
 * nodes can talk when they are in the same set; a node in no set can talk only to other
 * nodes in no set. heal() removes every partition.
 */
export class FaultModel {
  readonly #rng: Rng;
  #options: Required<FaultOptions> = {
    dropRate: 0,
    duplicateRate: 0,
    minDelayMs: 0,
    maxDelayMs: 0,
    reorderRate: 0,
    reorderDelayMs: 0,
  };
  #sideOf = new Map<string, number>();

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  configure(options: FaultOptions): void {
    checkProbability('dropRate', options.dropRate);
    checkProbability('duplicateRate', options.duplicateRate);
    checkProbability('reorderRate', options.reorderRate);
    const next = { ...this.#options, ...options };
    if (next.minDelayMs < 0 || next.maxDelayMs < next.minDelayMs || next.reorderDelayMs < 0) {
      throw new RangeError(
        'delays must satisfy 0 <= minDelayMs <= maxDelayMs and reorderDelayMs >= 0',
      );
    }
    this.#options = next;
  }

  get options(): Required<FaultOptions> {
    return this.#options;
  }

  partition(sets: readonly (readonly string[])[]): void {
    const sideOf = new Map<string, number>();
    sets.forEach((set, side) => {
      for (const node of set) {
        if (sideOf.has(node)) throw new RangeError(`node ${node} is in two partition sets`);
        sideOf.set(node, side);
      }
    });
    this.#sideOf = sideOf;
  }

  heal(): void {
    this.#sideOf = new Map();
  }

  canTalk(from: string, to: string): boolean {
    return from === to || this.#sideOf.get(from) === this.#sideOf.get(to);
  }

  fate(from: string, to: string): Fate {
    if (!this.canTalk(from, to)) return { delaysMs: [], reason: 'partitioned' };
    if (from === to) return { delaysMs: [0], reason: 'delivered' };
    const o = this.#options;
    if (this.#rng.chance(o.dropRate)) return { delaysMs: [], reason: 'dropped' };
    const copies = this.#rng.chance(o.duplicateRate) ? 2 : 1;
    const delaysMs: number[] = [];
    for (let i = 0; i < copies; i++) {
      let delay =
        o.maxDelayMs > o.minDelayMs
          ? o.minDelayMs + this.#rng.next() * (o.maxDelayMs - o.minDelayMs)
          : o.minDelayMs;
      if (this.#rng.chance(o.reorderRate)) delay += this.#rng.next() * o.reorderDelayMs;
      delaysMs.push(delay);
    }
    return { delaysMs, reason: 'delivered' };
  }
}
