import { ballot, type PeerMessage } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { learnerMachine, rulesFor } from '../src/index.js';
import { bytes, record, text } from './helpers.js';

const accepted = (
  from: string,
  round: number,
  instance: number | string,
  value: string,
): PeerMessage => ({
  type: 'accepted',
  group: 'g',
  from,
  ballot: ballot(round, 'p'),
  instance,
  ok: true,
  promised: ballot(round, 'p'),
  value: bytes(value),
});

function learner(plant?: 'mixed-ballot-quorum') {
  const actor = createActor(learnerMachine, {
    input: { group: 'g', nodeId: 'n', acceptorCount: 3, rules: rulesFor(plant) },
  });
  const effects = record(actor);
  actor.start();
  return {
    actor,
    effects,
    delivered: () =>
      effects
        .filter((e) => e.type === 'deliver')
        .map((e) => (e.type === 'deliver' ? `${e.slot}=${text(e.value)}` : '')),
  };
}

describe('learner', () => {
  it('learns a value once a majority accepted it at one ballot', () => {
    const { actor, delivered } = learner();
    actor.send({ type: 'message', message: accepted('a', 1, 0, 'x') });
    expect(delivered()).toEqual([]);
    actor.send({ type: 'message', message: accepted('a', 1, 0, 'x') });
    expect(delivered()).toEqual([]);
    actor.send({ type: 'message', message: accepted('b', 1, 0, 'x') });
    expect(delivered()).toEqual(['0=x']);
  });

  it('does not add up votes of different ballots', () => {
    const { actor, effects } = learner();
    actor.send({ type: 'message', message: accepted('a', 1, 0, 'x') });
    actor.send({ type: 'message', message: accepted('b', 2, 0, 'y') });
    expect(effects).toEqual([]);
  });

  it('with the planted mixed-ballot-quorum bug, does add them up (the simulator must catch this)', () => {
    const { actor, delivered } = learner('mixed-ballot-quorum');
    actor.send({ type: 'message', message: accepted('a', 1, 0, 'x') });
    actor.send({ type: 'message', message: accepted('b', 2, 0, 'y') });
    expect(delivered()).toEqual(['0=y']);
  });

  it('delivers slots strictly in order, each exactly once', () => {
    const { actor, delivered } = learner();
    const decide = (slot: number, v: string): void =>
      actor.send({
        type: 'message',
        message: {
          type: 'decide',
          group: 'g',
          from: 'p',
          instance: slot,
          ballot: ballot(1, 'p'),
          value: bytes(v),
        },
      });
    decide(2, 'c');
    decide(0, 'a');
    expect(delivered()).toEqual(['0=a']);
    decide(1, 'b');
    decide(1, 'b');
    decide(0, 'a');
    expect(delivered()).toEqual(['0=a', '1=b', '2=c']);
  });

  it('reports register keys as learned, once', () => {
    const { actor, effects } = learner();
    actor.send({ type: 'known', instance: 'leader', value: bytes('primary = node-a') });
    actor.send({ type: 'known', instance: 'leader', value: bytes('primary = node-a') });
    expect(effects.filter((e) => e.type === 'learned')).toHaveLength(1);
  });

  it('stops loudly when told two different values for one instance', () => {
    const { actor } = learner();
    const errors: unknown[] = [];
    actor.subscribe({ error: (error) => void errors.push(error) });
    actor.send({ type: 'known', instance: 'k', value: bytes('one') });
    actor.send({ type: 'known', instance: 'k', value: bytes('two') });
    expect(actor.getSnapshot().status).toBe('error');
    expect(String(errors[0])).toMatch(/learned two different values/);
  });
});
