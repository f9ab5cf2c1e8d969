import { majorityOf } from '@synod/protocol';

/** The smallest majority of `n` acceptors. Any two majorities share an acceptor. */
export function majority(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`acceptor count must be a positive integer, got ${n}`);
  return majorityOf(n);
}

/** True once so many acceptors refused that a majority can no longer agree. */
export function quorumImpossible(refusals: number, acceptors: number): boolean {
  return refusals > acceptors - majority(acceptors);
}
