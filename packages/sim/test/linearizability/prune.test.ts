// Pruning writes whose outcome is unknown and unobserved must never change a verdict, and must
// decide the histories that made the search give up (leaderless seed 903585 of the simulator).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkOperations,
  type KvInput,
  kvModel,
  type Operation,
  pruneUnobserved,
} from '../../src/index.js';

type KvOp = Operation<KvInput, string>;
const INF = Number.POSITIVE_INFINITY;
const { prune: _prune, ...unpruned } = kvModel;

/** Small kv histories over two keys, with writes that never return and reads that time out. */
const histories = fc
  .array(
    fc.record({
      client: fc.integer({ min: 0, max: 3 }),
      op: fc.constantFrom<'get' | 'put' | 'append'>('get', 'put', 'append'),
      key: fc.constantFrom('x', 'y'),
      call: fc.integer({ min: 0, max: 40 }),
      length: fc.integer({ min: 0, max: 10 }),
      pending: fc.boolean(),
      /** Which of the values written so far a read claims to see (or none, or unknown). */
      seen: fc.integer({ min: -2, max: 8 }),
    }),
    { maxLength: 9 },
  )
  .map((events) => {
    const written: string[] = [];
    return events.map((e, i): KvOp => {
      const ret = e.pending ? INF : e.call + e.length;
      if (e.op === 'get') {
        const pick = e.seen >= 0 ? written.slice(0, e.seen + 1).join('') : '';
        return {
          clientId: e.client,
          input: { op: 'get', key: e.key },
          call: e.call,
          output: e.seen === -2 || e.pending ? undefined : pick,
          return: ret,
        };
      }
      const value = `v${i};`;
      written.push(value);
      return {
        clientId: e.client,
        input: { op: e.op, key: e.key, value },
        call: e.call,
        output: undefined,
        return: ret,
      };
    });
  });

describe('pruning unobserved operations of unknown outcome', () => {
  it('never changes the verdict', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(checkOperations(kvModel, history).verdict).toBe(
          checkOperations(unpruned, history).verdict,
        );
      }),
    );
  });

  it('keeps every write that returned, and every pending write some read shows', () => {
    const history: KvOp[] = [
      {
        clientId: 0,
        input: { op: 'append', key: 'x', value: 'a;' },
        call: 0,
        output: undefined,
        return: INF,
      },
      {
        clientId: 1,
        input: { op: 'append', key: 'x', value: 'b;' },
        call: 0,
        output: undefined,
        return: INF,
      },
      {
        clientId: 2,
        input: { op: 'put', key: 'x', value: 'c;' },
        call: 0,
        output: undefined,
        return: 3,
      },
      { clientId: 3, input: { op: 'get', key: 'x' }, call: 4, output: 'c;b;', return: 5 },
      { clientId: 3, input: { op: 'get', key: 'x' }, call: 6, output: undefined, return: INF },
    ];
    expect(pruneUnobserved(history).map((op) => op.input.value ?? 'get')).toEqual([
      'b;',
      'c;',
      'get',
    ]);
  });

  it('decides at once a history of many writes that timed out, which the search alone gives up on', () => {
    // The shape of the simulator's leaderless seed 903585: nine writes never returned under
    // faults, and no later read shows any of them.
    const pending = (i: number, op: 'put' | 'append'): KvOp => ({
      clientId: `p${i}`,
      input: { op, key: 'k0', value: `p${i};` },
      call: i,
      output: undefined,
      return: INF,
    });
    const history: KvOp[] = [
      ...Array.from({ length: 9 }, (_, i) => pending(i, i === 4 ? 'put' : 'append')),
      {
        clientId: 'w',
        input: { op: 'append', key: 'k0', value: 'w;' },
        call: 20,
        output: undefined,
        return: 21,
      },
      { clientId: 'r', input: { op: 'get', key: 'k0' }, call: 22, output: 'w;', return: 23 },
    ];
    expect(checkOperations(unpruned, history, { maxSteps: 1_000_000 }).verdict).toBe('unknown');
    expect(checkOperations(kvModel, history, { maxSteps: 1_000 }).verdict).toBe('linearizable');
    // With the read showing pending writes, they stay, and the verdict is still right.
    const reading = (output: string): KvOp[] => [
      ...history.slice(0, -1),
      { ...history.at(-1)!, output },
    ];
    expect(checkOperations(kvModel, reading('p3;w;'), { maxSteps: 1_000_000 }).verdict).toBe(
      'linearizable',
    );
    // w returned before the read began: a read without it is wrong whatever the pending did.
    expect(checkOperations(kvModel, reading('p3;'), { maxSteps: 1_000_000 }).verdict).toBe(
      'not-linearizable',
    );
  });
});
