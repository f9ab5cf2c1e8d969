// Seed 001's proposer: phase 1 at a majority, adopt the highest-ballot accepted value,
// phase 2, retry with round = highest seen + 1 after a randomized backoff.
import { ballot, type PeerMessage } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor } from 'xstate';
import { AcceptorState, type Effect, proposerMachine, rulesFor } from '../src/index.js';
import { bytes, record, text } from './helpers.js';

/** Three in-process acceptors; `reachable` says which of them answer. */
function cluster(reachable = new Set(['a', 'b', 'c'])) {
  const acceptors = new Map([
    ['a', new AcceptorState()],
    ['b', new AcceptorState()],
    ['c', new AcceptorState()],
  ]);
  const deliver = (proposer: AnyActorRef, effect: Effect): void => {
    if (effect.type === 'persist') {
      proposer.send({ type: 'persisted', id: effect.id });
      return;
    }
    if (effect.type !== 'send' || effect.to.kind !== 'acceptors') return;
    const m = effect.message;
    for (const [id, acceptor] of acceptors) {
      if (!reachable.has(id)) continue;
      const env = { group: 'g', from: id };
      let reply: PeerMessage | undefined;
      if (m.type === 'prepare')
        reply = {
          type: 'promise',
          ...env,
          ballot: m.ballot,
          instance: m.instance,
          ...acceptor.prepare(m.ballot, m.instance).answer,
        };
      if (m.type === 'accept')
        reply = {
          type: 'accepted',
          ...env,
          ballot: m.ballot,
          instance: m.instance,
          ...acceptor.accept(m.ballot, m.instance, m.value).answer,
        };
      if (reply !== undefined) proposer.send({ type: 'message', message: reply });
    }
  };
  return { acceptors, reachable, deliver };
}

function propose(c: ReturnType<typeof cluster>, value: string, nodeId = 'p', minRound = 1) {
  const actor = createActor(proposerMachine, {
    input: {
      group: 'g',
      nodeId,
      instance: 'leader',
      value: bytes(value),
      acceptorCount: 3,
      minRound,
      seed: 42,
    },
  });
  const effects = record(actor);
  // Execute effects as they come, like a host would (queued so each runs after the transition).
  const queue: Effect[] = [];
  actor.on('*', (effect: Effect) => void queue.push(effect));
  actor.start();
  const pump = (): void => {
    while (queue.length > 0) c.deliver(actor, queue.shift()!);
  };
  pump();
  return { actor, effects, pump };
}

describe('proposer (seed 001)', () => {
  it('chooses its own value when nothing was accepted, and tells the learners', () => {
    const c = cluster();
    const { actor, effects } = propose(c, 'primary = node-a');
    expect(actor.getSnapshot().status).toBe('done');
    expect(text(actor.getSnapshot().output!.value)).toBe('primary = node-a');
    expect(effects.some((e) => e.type === 'send' && e.message.type === 'decide')).toBe(true);
  });

  it('1b: adopts the value accepted at the highest ballot among the responders', () => {
    const c = cluster();
    c.acceptors.get('a')!.accept(ballot(1, 'x'), 'leader', bytes('old'));
    c.acceptors.get('b')!.accept(ballot(2, 'y'), 'leader', bytes('newer'));
    const { actor } = propose(c, 'mine', 'p', 5);
    expect(text(actor.getSnapshot().output!.value)).toBe('newer');
  });

  it('every caller for the key gets the same value (paxos(k, v) is decided once)', () => {
    const c = cluster();
    const first = propose(c, 'v1', 'p');
    const second = propose(c, 'v2', 'q', 10);
    expect(text(first.actor.getSnapshot().output!.value)).toBe('v1');
    expect(text(second.actor.getSnapshot().output!.value)).toBe('v1');
  });

  it('persists each round before sending its prepare', () => {
    const c = cluster();
    const { effects } = propose(c, 'v');
    const firstPersist = effects.findIndex((e) => e.type === 'persist');
    const firstPrepare = effects.findIndex(
      (e) => e.type === 'send' && e.message.type === 'prepare',
    );
    expect(firstPersist).toBeGreaterThanOrEqual(0);
    expect(firstPersist).toBeLessThan(firstPrepare);
    expect(effects[firstPersist]).toMatchObject({ records: [{ kind: 'round', round: 1 }] });
  });

  it('on rejection, backs off and retries with round = highest seen + 1', () => {
    const c = cluster();
    for (const acceptor of c.acceptors.values()) acceptor.prepare(ballot(7, 'z'), 'leader');
    const { actor, effects, pump } = propose(c, 'v');
    expect(actor.getSnapshot().value).toBe('backoff');
    const backoff = effects.find((e) => e.type === 'setTimer' && e.timer === 'backoff');
    expect(backoff).toBeDefined();
    actor.send({ type: 'timer', timer: 'backoff' });
    pump();
    expect(effects.filter((e) => e.type === 'persist').at(-1)).toMatchObject({
      records: [{ kind: 'round', round: 8 }],
    });
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('without a majority, waits for the phase timer, then backs off (no hang, no false choice)', () => {
    const c = cluster(new Set(['a']));
    const { actor, effects } = propose(c, 'v');
    expect(actor.getSnapshot().value).toBe('preparing');
    expect(effects.some((e) => e.type === 'setTimer' && e.timer === 'phase')).toBe(true);
    actor.send({ type: 'timer', timer: 'phase' });
    expect(actor.getSnapshot().value).toBe('backoff');
    expect(effects.some((e) => e.type === 'chosen')).toBe(false);
  });

  it('with the planted ignore-accepted bug, proposes its own value over an accepted one (the simulator must catch this)', () => {
    const c = cluster();
    c.acceptors.get('a')!.accept(ballot(1, 'x'), 'leader', bytes('accepted'));
    const actor = createActor(proposerMachine, {
      input: {
        group: 'g',
        nodeId: 'p',
        instance: 'leader',
        value: bytes('mine'),
        acceptorCount: 3,
        minRound: 5,
        seed: 1,
        rules: rulesFor('ignore-accepted'),
      },
    });
    const queue: Effect[] = [];
    actor.on('*', (e: Effect) => void queue.push(e));
    actor.start();
    while (queue.length > 0) c.deliver(actor, queue.shift()!);
    expect(text(actor.getSnapshot().output!.value)).toBe('mine');
  });
});
