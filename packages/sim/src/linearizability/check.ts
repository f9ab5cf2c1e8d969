import { Bitset } from './bitset.js';
import type { CheckResult, Model, Operation } from './model.js';

/** A call or a return in the doubly linked list the search lifts operations out of. */
interface Entry<I, O> {
  readonly id: number;
  readonly time: number;
  readonly isCall: boolean;
  readonly input: I | undefined;
  readonly output: O | undefined;
  /** For a call: its return entry. */
  match: Entry<I, O> | undefined;
  prev: Entry<I, O> | undefined;
  next: Entry<I, O> | undefined;
}

export interface CheckOptions {
  /** Give up after this long and answer 'unknown'. Default: no limit. */
  readonly timeoutMs?: number;
  /**
   * Give up after this many search steps and answer 'unknown': unlike a time limit, the same
   * history gets the same verdict on any machine (what a replayable simulation needs).
   */
  readonly maxSteps?: number;
}

class Timeout extends Error {}

function buildList<I, O>(history: readonly Operation<I, O>[]): Entry<I, O> {
  const entries: Entry<I, O>[] = [];
  history.forEach((op, id) => {
    const ret: Entry<I, O> = {
      id,
      time: op.return,
      isCall: false,
      input: undefined,
      output: op.output,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    entries.push(
      {
        id,
        time: op.call,
        isCall: true,
        input: op.input,
        output: undefined,
        match: ret,
        prev: undefined,
        next: undefined,
      },
      ret,
    );
  });
  // By time; at equal times calls come first, so touching operations count as concurrent.
  entries.sort((a, b) =>
    a.time !== b.time ? a.time - b.time : a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1,
  );
  const head: Entry<I, O> = {
    id: -1,
    time: Number.NEGATIVE_INFINITY,
    isCall: false,
    input: undefined,
    output: undefined,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const entry of entries) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Takes a call and its return out of the list. */
function lift<I, O>(call: Entry<I, O>): void {
  call.prev!.next = call.next;
  if (call.next !== undefined) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== undefined) ret.next.prev = ret.prev;
}

/** Puts them back, in the reverse order of lift. */
function unlift<I, O>(call: Entry<I, O>): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== undefined) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== undefined) call.next.prev = call;
}

/**
 * Wing & Gong's search with Lowe's memoization: try to linearize the earliest pending call
 * whose step is legal; a return reached with its call not yet linearized means backtrack.
 * A (linearized set, state) pair seen before cannot lead anywhere new and is skipped.
 */
function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  limits: { readonly deadline: number; stepsLeft: number },
): { ok: boolean; longest: number } {
  const head = buildList(history);
  const seen = new Set<string>();
  const stack: { call: Entry<I, O>; state: S }[] = [];
  let linearized = new Bitset(history.length);
  let state = model.init();
  let entry = head.next;
  let longest = 0;
  let steps = 0;
  while (head.next !== undefined) {
    if (--limits.stepsLeft < 0) throw new Timeout();
    if ((++steps & 0x3ff) === 0 && performance.now() > limits.deadline) throw new Timeout();
    if (entry === undefined)
      throw new Error('linearizability search ran off the end of the history');
    if (entry.isCall) {
      const { ok, state: next } = model.step(state, entry.input as I, entry.match!.output);
      if (ok) {
        const candidate = linearized.with(entry.id);
        const key = `${candidate.key()}|${model.hash(next)}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          state = next;
          linearized = candidate;
          longest = Math.max(longest, stack.length);
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
      continue;
    }
    const top = stack.pop();
    if (top === undefined) return { ok: false, longest };
    state = top.state;
    linearized.clear(top.call.id);
    unlift(top.call);
    entry = top.call.next;
  }
  return { ok: true, longest };
}

/**
 * Checks that a history is linearizable with respect to `model` (Porcupine's algorithm:
 * P-compositional partitions, each searched with memoization).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  const limits = {
    deadline: performance.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY),
    stepsLeft: options.maxSteps ?? Number.POSITIVE_INFINITY,
  };
  const pruned = model.prune?.(history) ?? history;
  const partitions = model.partition?.(pruned) ?? [pruned.slice()];
  try {
    for (const [index, partition] of partitions.entries()) {
      const { ok, longest } = checkPartition(model, partition, limits);
      if (!ok)
        return {
          verdict: 'not-linearizable',
          partition: index,
          operations: partition.length,
          longestPrefix: longest,
        };
    }
  } catch (error) {
    if (error instanceof Timeout) return { verdict: 'unknown', reason: 'timeout' };
    throw error;
  }
  return { verdict: 'linearizable' };
}
