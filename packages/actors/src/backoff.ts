/**
 * Randomized backoff without a random source in the machine: the state of a xorshift32
 * generator travels in the machine's context, seeded by the host, so a simulator seed
 * decides every backoff.
 */
export function nextRandom(state: number): { value: number; state: number } {
  let x = state | 0 || 0x9e3779b9;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return { value: (x >>> 0) / 4294967296, state: x | 0 };
}

export interface BackoffSettings {
  readonly minMs: number;
  readonly maxMs: number;
}

/** A delay uniform in [minMs, maxMs], doubling the window with each failed attempt up to maxMs. */
export function backoffDelay(settings: BackoffSettings, attempt: number, random: number): number {
  const ceiling = Math.min(settings.maxMs, settings.minMs * 2 ** Math.min(attempt, 16));
  return settings.minMs + random * Math.max(0, ceiling - settings.minMs);
}
