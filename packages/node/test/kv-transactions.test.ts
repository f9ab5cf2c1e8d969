import type { Command, PlainData } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import { machineFailure } from '../src/client-answers.js';
import { CommandError, KeyHeldError, KV, ReplicatedState } from '../src/index.js';
import { MAX_DECIDED, type TxnMeta, txidOf } from '../src/kv-transactions.js';

/** A kv replica with a counter for its writes' seq, as one client. */
function replica(state = new ReplicatedState(KV), clientId = 'c') {
  let seq = 0;
  return {
    state,
    write: (command: Command) => state.applyWrite({ clientId, seq: ++seq, command }),
    get: (key: string) => state.read({ op: 'get', key }),
  };
}

const meta = (number: number, coordinator = 'north'): TxnMeta => ({
  txid: txidOf(coordinator, number),
  coordinator,
  number,
  rms: ['north', 'south'],
  acceptors: ['a', 'b', 'c'],
  protocol: 'paxos-commit',
});

const prepare = (m: TxnMeta, writes: PlainData[]): Command => ({
  op: 'txn_prepare',
  meta: { ...m, rms: [...m.rms], acceptors: [...m.acceptors] },
  writes,
});
const outcome = (m: TxnMeta, o: 'committed' | 'aborted'): Command => ({
  op: 'txn_outcome',
  txid: m.txid,
  outcome: o,
});

describe('kv transactions: the vote, held keys and the outcome', () => {
  it('numbers a txn, and a retry of the same (clientId, seq) gets the same number and writes', () => {
    const r = replica();
    const txn = {
      op: 'txn',
      ops: [{ group: 'south', op: 'put', key: 'k', value: 'v' }],
      acceptors: ['a', 'b', 'c'],
      protocol: 'paxos-commit',
    };
    const first = r.state.applyWrite({ clientId: 'x', seq: 1, command: txn });
    expect(first).toMatchObject({ txn: 1, groups: ['south'], acceptors: ['a', 'b', 'c'] });
    const retry = r.state.applyWrite({
      clientId: 'x',
      seq: 1,
      command: { ...txn, ops: [{ group: 'east', op: 'put', key: 'k', value: 'other' }] },
    });
    expect(retry).toBe(first);
    expect(r.state.applyWrite({ clientId: 'x', seq: 2, command: txn })).toMatchObject({ txn: 2 });
  });

  it('refuses a txn that is not one, saying what is wrong', () => {
    const r = replica();
    const base = { op: 'txn', acceptors: ['a'], protocol: 'paxos-commit' };
    const cases: [PlainData, string][] = [
      [[], 'non-empty'],
      [[{ op: 'put', key: 'k', value: 'v' }], '"group"'],
      [[{ group: 'a.b', op: 'put', key: 'k', value: 'v' }], '"group"'],
      [[{ group: 'g', op: 'get', key: 'k' }], 'unknown operation'],
      [[{ group: 'g', op: 'cas', key: 'k', value: 'v', expect: 3 }], 'expect'],
    ];
    for (const [ops, message] of cases) {
      const result = r.write({ ...base, ops } as Command);
      expect(result).toBeInstanceOf(CommandError);
      expect((result as Error).message).toContain(message);
    }
    // Without the acceptors its leader adds, no number is given.
    expect(
      r.write({ op: 'txn', ops: [{ group: 'g', op: 'put', key: 'k', value: 'v' }] }),
    ).toBeInstanceOf(CommandError);
  });

  it('holds the keys of a prepared transaction until its outcome, then applies its writes', () => {
    const r = replica();
    r.write({ op: 'put', key: 'z', value: 'z0' });
    const t = meta(1);
    const vote = r.write(
      prepare(t, [
        { op: 'put', key: 'y', value: 'y1' },
        { op: 'cas', key: 'z', expect: 'z0', value: 'z1' },
      ]),
    );
    expect(vote).toEqual({ vote: 'prepared' });
    // Held: a write fails (and is answered so), a read is told to come back (BUSY).
    const put = r.write({ op: 'put', key: 'z', value: 'other' });
    expect(put).toBeInstanceOf(CommandError);
    expect((put as Error).message).toContain('held by transaction north.1');
    let held: unknown;
    try {
      r.get('y');
    } catch (error) {
      held = error;
    }
    expect(held).toBeInstanceOf(KeyHeldError);
    expect(machineFailure(held)).toMatchObject({ ok: false, error: { code: 'BUSY' } });
    // Another transaction on a held key votes aborted: no waiting, so no deadlock.
    expect(r.write(prepare(meta(2), [{ op: 'put', key: 'y', value: 'y2' }]))).toMatchObject({
      vote: 'aborted',
      reason: expect.stringContaining('held by transaction north.1'),
    });
    expect(r.state.read({ op: 'txn_open' })).toHaveLength(2);
    r.write(outcome(t, 'committed'));
    expect(r.get('y')).toEqual({ found: true, value: 'y1' });
    expect(r.get('z')).toEqual({ found: true, value: 'z1' });
    expect(r.write({ op: 'put', key: 'z', value: 'z2' })).toBeNull();
    // A second outcome of a decided transaction changes nothing.
    r.write(outcome(t, 'committed'));
    expect(r.get('z')).toEqual({ found: true, value: 'z2' });
  });

  it('drops the writes of an aborted transaction and frees its keys', () => {
    const r = replica();
    const t = meta(1);
    r.write(prepare(t, [{ op: 'put', key: 'k', value: 'v' }]));
    r.write(outcome(t, 'aborted'));
    expect(r.get('k')).toEqual({ found: false });
    expect(r.write({ op: 'put', key: 'k', value: 'w' })).toBeNull();
  });

  it('gives the same vote when asked again, even once the state would now vote otherwise', () => {
    const r = replica();
    const t = meta(1);
    const writes = [{ op: 'cas', key: 'k', expect: 'v', value: 'w' }];
    expect(r.write(prepare(t, writes))).toMatchObject({ vote: 'aborted' });
    r.write({ op: 'put', key: 'k', value: 'v' });
    expect(r.write(prepare(t, writes))).toMatchObject({ vote: 'aborted' });
    // Decided, it still remembers its vote; and it cannot commit what it voted against.
    expect(r.write(outcome(t, 'committed'))).toBeInstanceOf(CommandError);
    r.write(outcome(t, 'aborted'));
    expect(r.write(prepare(t, writes))).toEqual({ vote: 'aborted', decided: true });
    expect(r.get('k')).toEqual({ found: true, value: 'v' });
  });

  it('never votes on a transaction at or below the number it forgot, and keeps memory bounded', () => {
    const r = replica();
    for (let n = 1; n <= MAX_DECIDED + 1; n++) {
      const t = meta(n);
      r.write(prepare(t, [{ op: 'put', key: `k${n}`, value: 'v' }]));
      r.write(outcome(t, 'committed'));
    }
    // north.1 was forgotten: asked again, the group casts no vote (a second, different vote
    // at ballot 0 could otherwise be chosen). A transaction this group never saw below the
    // floor gets none either; one above it does.
    expect(r.write(prepare(meta(1), [{ op: 'put', key: 'k1', value: 'again' }]))).toMatchObject({
      vote: null,
    });
    expect(r.get('k1')).toEqual({ found: true, value: 'v' });
    expect(r.write(prepare(meta(2), []))).toEqual({ vote: 'prepared', decided: true });
    expect(r.write(prepare(meta(1, 'east'), []))).toEqual({ vote: 'prepared' });
    expect(r.write(prepare(meta(MAX_DECIDED + 5), []))).toEqual({ vote: 'prepared' });
  });

  it('keeps open transactions, held keys, votes and floors through a snapshot', () => {
    const r = replica();
    for (let n = 1; n <= MAX_DECIDED + 1; n++) {
      r.write(prepare(meta(n), []));
      r.write(outcome(meta(n), 'aborted'));
    }
    const open = meta(MAX_DECIDED + 2);
    r.write(prepare(open, [{ op: 'put', key: 'k', value: 'v' }]));
    const copy = replica(ReplicatedState.restore(KV, r.state.snapshot()), 'after-restore');
    expect(() => copy.get('k')).toThrow(KeyHeldError);
    expect(copy.write(prepare(meta(1), []))).toMatchObject({ vote: null });
    expect(copy.write(prepare(meta(3), []))).toEqual({ vote: 'prepared', decided: true });
    copy.write(outcome(open, 'committed'));
    expect(copy.get('k')).toEqual({ found: true, value: 'v' });
    expect(copy.state.digest()).not.toBe(r.state.digest());
  });

  it('keeps the first outcome a two-phase coordinator logged, through a snapshot', () => {
    const r = replica();
    expect(r.state.read({ op: 'txn_decided', txid: 'north.1' })).toBeNull();
    expect(r.write({ op: 'txn_decided', txid: 'north.1', outcome: 'aborted' })).toEqual({
      outcome: 'aborted',
    });
    // A coordinator that took over logs later: it is told the first outcome, and goes on with it.
    expect(r.write({ op: 'txn_decided', txid: 'north.1', outcome: 'committed' })).toEqual({
      outcome: 'aborted',
    });
    const copy = ReplicatedState.restore(KV, r.state.snapshot());
    expect(copy.read({ op: 'txn_decided', txid: 'north.1' })).toEqual({ outcome: 'aborted' });
  });

  it('restores a snapshot of a kv machine that never saw a transaction (the old format)', () => {
    const r = replica();
    r.write({ op: 'put', key: 'a', value: '1' });
    const bytes = r.state.snapshot();
    const copy = ReplicatedState.restore(KV, bytes);
    expect(copy.read({ op: 'get', key: 'a' })).toEqual({ found: true, value: '1' });
  });
});
