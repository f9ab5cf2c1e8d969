/**
 * A sequential specification to check histories against. `output` is `undefined` when the
 * operation's result is unknown (it never returned, or timed out): step must then accept
 * any result, which is how an operation that may or may not have taken effect is modelled.
 */
export interface Model<State, Input, Output> {
  init(): State;
  /** Whether `input` giving `output` is legal from `state`, and the state after it. */
  step(
    state: State,
    input: Input,
    output: Output | undefined,
  ): { readonly ok: boolean; readonly state: State };
  /** A canonical key: equal states must give equal keys, different states different keys. */
  hash(state: State): string;
  /**
   * Drop operations that cannot change the verdict, before the search (default: none). Only
   * operations whose outcome is unknown may go: e.g. a write that never returned and whose
   * effect no read shows. Such operations are what makes the search exponential.
   */
  prune?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[];
  /** Split a history into independent sub-histories (e.g. by key); default: one. */
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  describe?(input: Input, output: Output | undefined): string;
}

/**
 * One client operation. `call` and `return` are times (any consistent clock or event index);
 * an operation that never returned has `return: Infinity` and an unknown (`undefined`) output.
 */
export interface Operation<Input, Output> {
  readonly clientId: number | string;
  readonly input: Input;
  readonly call: number;
  readonly output: Output | undefined;
  readonly return: number;
}

export type CheckResult =
  | { readonly verdict: 'linearizable' }
  | {
      readonly verdict: 'not-linearizable';
      /** Index of the first partition found not linearizable. */
      readonly partition: number;
      /** The operations of that partition (for a report). */
      readonly operations: number;
      /** The most operations any attempt managed to linearize in order. */
      readonly longestPrefix: number;
    }
  | { readonly verdict: 'unknown'; readonly reason: 'timeout' };
