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
  hash: (state) =>
    JSON.stringify([...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
};
