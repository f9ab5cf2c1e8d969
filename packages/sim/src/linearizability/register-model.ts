import type { Model } from './model.js';

/** Jepsen's compare-and-set register: starts as null. */
export type RegisterInput =
  | { readonly op: 'read' }
  | { readonly op: 'write'; readonly value: number }
  | { readonly op: 'cas'; readonly expect: number; readonly value: number };

/** read: the value seen; write: nothing; cas: whether it swapped. */
export type RegisterOutput = { readonly value: number | null } | { readonly ok: boolean } | null;

export const registerModel: Model<number | null, RegisterInput, RegisterOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case 'read':
        return {
          ok:
            output === undefined ||
            (output !== null && 'value' in output && output.value === state),
          state,
        };
      case 'write':
        return { ok: true, state: input.value };
      case 'cas': {
        const swaps = state === input.expect;
        const ok =
          output === undefined || (output !== null && 'ok' in output && output.ok === swaps);
        return { ok, state: swaps ? input.value : state };
      }
    }
  },
  hash: (state) => String(state),
  describe: (input, output) => `${JSON.stringify(input)} -> ${JSON.stringify(output)}`,
};
