import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { appendMachine, catchUpMachine, type Effect, NOOP } from '../src/index.js';
import { bytes, record } from './helpers.js';

describe("pg_paxos's append: while (paxos(i, v) != v) i++", () => {
  it('moves past slots chosen for other values and ends at the slot of its own', () => {
    const actor = createActor(appendMachine, {
      input: { value: bytes('mine'), firstUnknownSlot: 4 },
    });
    const effects = record(actor);
    actor.start();
    expect(effects).toEqual([{ type: 'propose', instance: 4, value: bytes('mine') }]);
    actor.send({ type: 'proposalDone', instance: 4, value: bytes('theirs') });
    actor.send({ type: 'proposalDone', instance: 5, value: bytes('mine') });
    expect(effects.map((e) => (e.type === 'propose' ? e.instance : -1))).toEqual([4, 5]);
    expect(actor.getSnapshot().output).toEqual({ slot: 5 });
  });

  it('ignores outcomes of slots it is not proposing in', () => {
    const actor = createActor(appendMachine, {
      input: { value: bytes('mine'), firstUnknownSlot: 0 },
    });
    actor.start();
    actor.send({ type: 'proposalDone', instance: 3, value: bytes('mine') });
    expect(actor.getSnapshot().status).toBe('active');
  });
});

describe("pg_paxos's strong read: apply through the highest accepted slot of a majority", () => {
  it('asks the acceptors, then proposes the no-op for every slot it has not delivered up to the highest', () => {
    const actor = createActor(catchUpMachine, {
      input: { group: 'g', nodeId: 'n', acceptorCount: 3, deliveredThrough: 1, requestId: 9 },
    });
    const effects: Effect[] = record(actor);
    actor.start();
    expect(effects[0]).toMatchObject({ type: 'send', message: { type: 'highestAcceptedQuery' } });
    expect(effects[0]).toMatchObject({ message: { requestId: 9 } });
    const answer = (from: string, slot: number, requestId = 9): void =>
      actor.send({
        type: 'message',
        message: { type: 'highestAcceptedAnswer', group: 'g', from, requestId, slot },
      });
    answer('c', 99, 8); // an answer to another read's query must not count
    answer('a', 4);
    expect(effects.some((e) => e.type === 'propose')).toBe(false);
    answer('b', 2);
    const proposals = effects.filter((e) => e.type === 'propose');
    expect(proposals.map((e) => (e.type === 'propose' ? e.instance : -1))).toEqual([2, 3, 4]);
    expect(proposals.every((e) => e.type === 'propose' && e.value.length === NOOP.length)).toBe(
      true,
    );
    for (const slot of [2, 3, 4]) actor.send({ type: 'proposalDone', instance: slot, value: NOOP });
    expect(actor.getSnapshot().output).toEqual({ through: 4 });
  });

  it('asks again when no majority answers in time', () => {
    const actor = createActor(catchUpMachine, {
      input: { group: 'g', nodeId: 'n', acceptorCount: 3, deliveredThrough: -1, requestId: 1 },
    });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'timer', timer: 'query' });
    expect(effects.filter((e) => e.type === 'send')).toHaveLength(2);
  });
});
