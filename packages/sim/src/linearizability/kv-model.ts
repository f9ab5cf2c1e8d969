import type { Model, Operation } from './model.js';

/** A map from string keys to strings; a missing key reads as "". */
export interface KvInput {
  readonly op: 'get' | 'put' | 'append';
  readonly key: string;
  readonly value?: string;
}

/** get's result; undefined when unknown. put and append return nothing. */
export type KvOutput = string;

/**
 * The model is per key: the history is split by key first (keys are independent), so the
 * state is one string. This is what makes the large c50 histories checkable.
 */
export const kvModel: Model<string, KvInput, KvOutput> = {
  init: () => '',
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return { ok: output === undefined || output === state, state };
      case 'put':
        return { ok: true, state: input.value ?? '' };
      case 'append':
        return { ok: true, state: state + (input.value ?? '') };
    }
  },
  hash: (state) => state,
  prune: pruneUnobserved,
  partition(history: readonly Operation<KvInput, KvOutput>[]) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      const list = byKey.get(op.input.key) ?? [];
      list.push(op);
      byKey.set(op.input.key, list);
    }
    return [...byKey.values()];
  },
  describe: (input, output) =>
    `${input.op}(${input.key}${input.value === undefined ? '' : `, ${input.value}`}) -> ${output ?? '?'}`,
};

/**
 * Drops the operations of a kv history whose outcome is unknown and cannot matter:
 *
 * - a get whose result is unknown: it changes nothing and constrains nothing;
 * - a put or append that never returned and whose value no read of its key ever shows.
 *
 * The second is sound and complete: if the history without such a write is linearizable, so
 * is the history with it, linearized last (it never returned, so nothing follows it). If the
 * history with it is linearizable, no read of the key lies between it and the next put of
 * the key (that read would show its value), so taking it out changes no read's result. With
 * a few clients whose writes time out under faults, these writes are what make the search
 * try every order of every subset of them.
 */
export function pruneUnobserved(
  history: readonly Operation<KvInput, KvOutput>[],
): Operation<KvInput, KvOutput>[] {
  const seen = new Map<string, string[]>();
  for (const op of history)
    if (op.input.op === 'get' && op.output !== undefined) {
      const outputs = seen.get(op.input.key) ?? [];
      outputs.push(op.output);
      seen.set(op.input.key, outputs);
    }
  return history.filter((op) => {
    if (op.input.op === 'get') return op.output !== undefined;
    if (op.return !== Number.POSITIVE_INFINITY) return true;
    const value = op.input.value ?? '';
    return (seen.get(op.input.key) ?? []).some((output) => output.includes(value));
  });
}

/** The same model without partitioning: one state for all keys (for checking unsplit histories). */
export const kvModelUnsplit: Model<ReadonlyMap<string, string>, KvInput, KvOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    const current = state.get(input.key) ?? '';
    if (input.op === 'get') return { ok: output === undefined || output === current, state };
    const next = new Map(state);
    next.set(input.key, input.op === 'put' ? (input.value ?? '') : current + (input.value ?? ''));
    return { ok: true, state: next };
  },
  prune: pruneUnobserved,
  hash: (state) =>
    JSON.stringify([...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
};
