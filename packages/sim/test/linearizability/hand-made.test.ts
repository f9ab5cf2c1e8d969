import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkOperations,
  type KvInput,
  kvModel,
  kvModelUnsplit,
  type Operation,
  registerModel,
} from '../../src/index.js';

type KvOp = Operation<KvInput, string>;
const INF = Number.POSITIVE_INFINITY;
const put = (clientId: number, key: string, value: string, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: 'put', key, value },
  call,
  output: '',
  return: ret,
});
const get = (
  clientId: number,
  key: string,
  output: string | undefined,
  call: number,
  ret: number,
): KvOp => ({ clientId, input: { op: 'get', key }, call, output, return: ret });
const verdict = (history: KvOp[]) => checkOperations(kvModel, history).verdict;

describe('linearizability checker on hand-made histories', () => {
  it('accepts a sequential history that follows the model', () => {
    expect(
      verdict([
        put(0, 'x', 'a', 0, 1),
        get(1, 'x', 'a', 2, 3),
        put(0, 'x', 'b', 4, 5),
        get(1, 'x', 'b', 6, 7),
      ]),
    ).toBe('linearizable');
  });

  it('accepts concurrent operations that fit in some order, and only that one', () => {
    // The read overlaps both writes: it may see 'b' (put b last) but then a later read must too.
    expect(
      verdict([
        put(0, 'x', 'a', 0, 10),
        put(1, 'x', 'b', 1, 9),
        get(2, 'x', 'a', 2, 8),
        get(2, 'x', 'a', 11, 12),
      ]),
    ).toBe('linearizable');
    expect(
      verdict([
        put(0, 'x', 'a', 0, 10),
        put(1, 'x', 'b', 1, 9),
        get(2, 'x', 'a', 2, 8),
        get(2, 'x', 'b', 11, 12),
        get(3, 'x', 'a', 13, 14),
      ]),
    ).toBe('not-linearizable');
  });

  it('rejects a stale read after a completed write', () => {
    expect(verdict([put(0, 'x', 'a', 0, 1), put(0, 'x', 'b', 2, 3), get(1, 'x', 'a', 4, 5)])).toBe(
      'not-linearizable',
    );
  });

  it('rejects a read of a value nobody wrote', () => {
    expect(verdict([put(0, 'x', 'a', 0, 1), get(1, 'x', 'zzz', 2, 3)])).toBe('not-linearizable');
  });

  it('takes an operation that never returned as having happened when a later read saw it', () => {
    expect(verdict([put(0, 'x', 'a', 0, INF), get(1, 'x', 'a', 5, 6)])).toBe('linearizable');
  });

  it('takes an operation that never returned as not having happened when nobody saw it', () => {
    expect(verdict([put(0, 'x', 'a', 0, INF), get(1, 'x', '', 5, 6), get(1, 'x', '', 7, 8)])).toBe(
      'linearizable',
    );
  });

  it('does not let a pending write explain a read that finished before the write began', () => {
    expect(verdict([get(1, 'x', 'a', 0, 1), put(0, 'x', 'a', 2, INF)])).toBe('not-linearizable');
  });

  it('accepts any result for a read whose result is unknown (timed out)', () => {
    expect(verdict([put(0, 'x', 'a', 0, 1), get(1, 'x', undefined, 2, 3)])).toBe('linearizable');
  });

  it('splits by key: each key alone is linearizable, so the history is', () => {
    const history = [
      put(0, 'x', 'a', 0, 1),
      put(1, 'y', 'b', 0, 1),
      get(2, 'x', 'a', 2, 3),
      get(3, 'y', 'b', 2, 3),
    ];
    expect(verdict(history)).toBe('linearizable');
    expect(checkOperations(kvModelUnsplit, history).verdict).toBe('linearizable');
    const partitions = kvModel.partition!(history);
    expect(partitions.map((p) => p.map((op) => op.input.key)[0]).sort()).toEqual(['x', 'y']);
  });

  it('reports which partition failed', () => {
    const result = checkOperations(kvModel, [
      put(0, 'x', 'a', 0, 1),
      get(1, 'x', 'a', 2, 3),
      put(0, 'y', 'b', 0, 1),
      get(1, 'y', 'c', 2, 3),
    ]);
    expect(result).toMatchObject({ verdict: 'not-linearizable', partition: 1, operations: 2 });
  });

  it('checks a compare-and-set register: a failed cas did not swap', () => {
    const ops = [
      { clientId: 0, input: { op: 'write', value: 1 } as const, call: 0, output: null, return: 1 },
      {
        clientId: 1,
        input: { op: 'cas', expect: 2, value: 3 } as const,
        call: 2,
        output: { ok: false },
        return: 3,
      },
      { clientId: 2, input: { op: 'read' } as const, call: 4, output: { value: 1 }, return: 5 },
    ];
    expect(checkOperations(registerModel, ops).verdict).toBe('linearizable');
    expect(
      checkOperations(registerModel, [...ops.slice(0, 2), { ...ops[2]!, output: { value: 3 } }])
        .verdict,
    ).toBe('not-linearizable');
  });

  it('answers unknown instead of running past its time limit', () => {
    // 18 concurrent appends and a read that fits no order: the search must try every subset.
    const history: KvOp[] = Array.from({ length: 18 }, (_, i) => ({
      clientId: i,
      input: { op: 'append', key: 'x', value: String.fromCharCode(97 + i) },
      call: 0,
      output: '',
      return: 100,
    }));
    history.push(get(99, 'x', 'impossible', 101, 102));
    const started = performance.now();
    expect(checkOperations(kvModel, history, { timeoutMs: 50 }).verdict).toBe('unknown');
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

/** A random history run sequentially through the model: always linearizable. */
const sequentialHistory = fc
  .array(
    fc.tuple(
      fc.constantFrom('get', 'put', 'append'),
      fc.constantFrom('x', 'y'),
      fc.constantFrom('a', 'b', 'c'),
      fc.nat(3),
    ),
    { minLength: 1, maxLength: 30 },
  )
  .map((steps) => {
    const state = new Map<string, string>();
    return steps.map(([op, key, value, client], i): KvOp => {
      const current = state.get(key) ?? '';
      if (op === 'get') return get(client, key, current, 2 * i, 2 * i + 1);
      state.set(key, op === 'put' ? value : current + value);
      return {
        clientId: client,
        input: { op, key, value },
        call: 2 * i,
        output: '',
        return: 2 * i + 1,
      };
    });
  });

describe('linearizability checker properties', () => {
  it('finds every history produced by running the model sequentially linearizable', () => {
    fc.assert(
      fc.property(sequentialHistory, (history) => verdict(history) === 'linearizable'),
      { numRuns: 500 },
    );
  });

  it('never finds one linearizable after a read is corrupted to a value no one wrote', () => {
    fc.assert(
      fc.property(sequentialHistory, fc.nat(), (history, pick) => {
        const reads = history
          .map((op, i) => (op.input.op === 'get' ? i : -1))
          .filter((i) => i >= 0);
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        const corrupted = history.map((op, j) =>
          j === i ? { ...op, output: 'never-written' } : op,
        );
        return verdict(corrupted) === 'not-linearizable';
      }),
      { numRuns: 500 },
    );
  });
});
