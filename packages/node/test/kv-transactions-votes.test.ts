// The safety argument of an RM's vote at ballot 0 (kv-transactions.ts): every leader of a group
// proposes, for a transaction, the vote its log gave, so the log must never give a second,
// different vote for one transaction, whatever reaches it: requests to prepare again, late
// ones after the outcome, other transactions' writes in between, and the memory bound
// forgetting old transactions. Checked over random histories with fast-check. Shown to catch
// each of the two rules it guards taken out of KvTransactions.prepare by hand: without the
// decided votes it fails in 3 steps (prepare, outcome, prepare), without the floors in 6
// (prepare, outcome, two rounds of forgetting, a write, prepare).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvTransactions, type TxnMeta, type TxnWrite, txidOf } from '../src/kv-transactions.js';

type Step =
  | { kind: 'prepare'; txn: number; key: number; expect: number | null }
  | { kind: 'outcome'; txn: number; commit: boolean }
  | { kind: 'put'; key: number; value: number }
  | { kind: 'forget' };

const TXNS = 3;
const KEYS = 2;

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('prepare' as const),
    txn: fc.integer({ min: 1, max: TXNS }),
    key: fc.integer({ min: 0, max: KEYS - 1 }),
    expect: fc.option(fc.integer({ min: 0, max: 2 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('outcome' as const),
    txn: fc.integer({ min: 1, max: TXNS }),
    commit: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('put' as const),
    key: fc.integer({ min: 0, max: KEYS - 1 }),
    value: fc.integer({ min: 0, max: 2 }),
  }),
  fc.constant({ kind: 'forget' as const }),
);

const meta = (txn: number): TxnMeta => ({
  txid: txidOf('c', txn),
  coordinator: 'c',
  number: txn,
  rms: ['g'],
  acceptors: ['a', 'b', 'c'],
  protocol: 'paxos-commit',
});

describe('an RM group never gives one transaction two different votes', () => {
  it('holds over random histories of prepares, outcomes, writes and forgetting', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        // Remembers 3 decided transactions, so histories forget and meet the floor often.
        const txns = new KvTransactions(3);
        const data = new Map<string, string>();
        let filler = 1_000;
        const writes = new Map<number, TxnWrite[]>();
        const votes = new Map<number, string>();
        for (const s of steps) {
          if (s.kind === 'put') {
            // A plain write: refused while a prepared transaction holds the key.
            if (!txns.held.has(`k${s.key}`)) data.set(`k${s.key}`, `${s.value}`);
          } else if (s.kind === 'forget') {
            // Other coordinators' transactions decided here push the oldest out.
            for (let i = 0; i < 2; i++) {
              const other = { ...meta(++filler), coordinator: 'other', txid: `other.${filler}` };
              txns.prepare(other, [], (k) => data.get(k));
              txns.decide(other.txid, 'aborted');
            }
          } else if (s.kind === 'outcome') {
            // The outcome an RM logs is one its coordinator decided: commit only if it prepared.
            const outcome = s.commit && votes.get(s.txn) === 'prepared' ? 'committed' : 'aborted';
            for (const w of txns.decide(txidOf('c', s.txn), outcome))
              if (w.op === 'delete') data.delete(w.key);
              else data.set(w.key, w.value!);
          } else {
            // A transaction's writes never change: every request to prepare it carries the same.
            const w = writes.get(s.txn) ?? [
              {
                op: 'cas' as const,
                key: `k${s.key}`,
                expect: s.expect === null ? null : `${s.expect}`,
                value: 'x',
              },
            ];
            writes.set(s.txn, w);
            const result = txns.prepare(meta(s.txn), w, (k) => data.get(k)) as {
              vote: string | null;
            };
            if (result.vote === null) continue; // no vote cast: the coordinator decides by phase 1
            const first = votes.get(s.txn);
            if (first === undefined) votes.set(s.txn, result.vote);
            else expect(result.vote, `transaction ${s.txn}`).toBe(first);
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
