import { type AcceptedEntry, compareBallots, type PeerMessage } from '@synod/protocol';

/**
 * The answers to one prepareLog at one ballot: each acceptor's promise, gathered from its
 * pages (a long answer comes in several), and the acceptors that refused.
 */
export interface PromiseRound {
  /** The first slot the prepareLog asked about: every answer covers it and all after it. */
  readonly fromSlot: number;
  /** Complete answers, by acceptor: what each had accepted at or after fromSlot. */
  readonly promises: Map<string, readonly AcceptedEntry[]>;
  /** Answers still arriving in pages, by acceptor: what came, and where the next page starts. */
  readonly pages: Map<string, { entries: AcceptedEntry[]; next: number }>;
  readonly refusals: Set<string>;
}

export function promiseRound(fromSlot: number): PromiseRound {
  return { fromSlot, promises: new Map(), pages: new Map(), refusals: new Set() };
}

/** What one promise message did to a round. */
export type PromiseOutcome =
  | { readonly kind: 'complete'; readonly entries: readonly AcceptedEntry[] }
  /** A page arrived; ask this acceptor for the next one, from `from`. */
  | { readonly kind: 'next'; readonly from: number }
  | { readonly kind: 'refused' }
  /** A duplicate, a page of another round, or an acceptor already counted. */
  | { readonly kind: 'ignored' };

/** Counts one promise (or refusal) of the round's ballot; the caller checks the ballot. */
export function addPromise(round: PromiseRound, m: PeerMessage): PromiseOutcome {
  if (m.type !== 'promise') return { kind: 'ignored' };
  if (!m.ok) {
    round.pages.delete(m.from);
    round.refusals.add(m.from);
    return { kind: 'refused' };
  }
  if (round.promises.has(m.from)) return { kind: 'ignored' };
  const from = m.fromSlot ?? round.fromSlot;
  const partial = round.pages.get(m.from);
  let entries: AcceptedEntry[];
  if (partial === undefined && from === round.fromSlot) entries = [...m.accepted];
  else if (partial !== undefined && from === partial.next)
    entries = partial.entries.concat(m.accepted);
  else return { kind: 'ignored' };
  const last = m.accepted.at(-1)?.instance;
  if (!m.more || typeof last !== 'number') {
    round.pages.delete(m.from);
    round.promises.set(m.from, entries);
    return { kind: 'complete', entries };
  }
  round.pages.set(m.from, { entries, next: last + 1 });
  return { kind: 'next', from: last + 1 };
}

/**
 * Adds what one acceptor reported to `best`: per slot at or after `fromSlot`, the value
 * accepted at the highest ballot any promiser reported (seed 003's rule for phase 1).
 */
export function mergeReported(
  best: Map<number, AcceptedEntry>,
  entries: readonly AcceptedEntry[],
  fromSlot: number,
): void {
  for (const entry of entries) {
    if (typeof entry.instance !== 'number' || entry.instance < fromSlot) continue;
    const current = best.get(entry.instance);
    if (current === undefined || compareBallots(entry.ballot, current.ballot) > 0)
      best.set(entry.instance, entry);
  }
}
