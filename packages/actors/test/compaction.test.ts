// Compaction: an acceptor forgets slots that are chosen and in a durable snapshot, and from
// then on refuses anything that reaches them, so no quorum can form without the values it
// held. Plus the guards the review of issue 4 asked for: one ballot, one value.
import { ballot, Membership, type StoreRecord } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  AcceptorState,
  type Effect,
  leaderMachine,
  learnerMachine,
  rulesFor,
} from '../src/index.js';
import { bytes, record } from './helpers.js';

const b = (round: number, node = 'l') => ballot(round, node);

function acceptedThrough(last: number): AcceptorState {
  const s = new AcceptorState();
  s.prepareLog(b(1), 0);
  for (let slot = 0; slot <= last; slot++) s.accept(b(1), slot, bytes(`v${slot}`));
  return s;
}

describe('acceptor compaction', () => {
  it('refuses phase 1 that reaches a compacted slot, saying how far it compacted', () => {
    const s = acceptedThrough(9);
    expect(s.compact(5)).toEqual([{ kind: 'compact', throughSlot: 5 }]);
    const refused = s.prepareLog(b(2, 'm'), 3);
    expect(refused.records).toEqual([]);
    expect(refused.answer).toMatchObject({ ok: false, compactedThrough: 5, accepted: [] });
    expect(s.prepare(b(2, 'm'), 4).answer).toMatchObject({ ok: false, compactedThrough: 5 });
    const granted = s.prepareLog(b(2, 'm'), 6).answer;
    expect(granted.ok).toBe(true);
    expect(granted.accepted.map((e) => e.instance)).toEqual([6, 7, 8, 9]);
  });

  it('refuses phase 2 on a compacted slot and forgets what it held there', () => {
    const s = acceptedThrough(9);
    s.compact(5);
    expect(s.accept(b(3), 5, bytes('other')).answer.ok).toBe(false);
    expect(s.acceptedFor(5)).toBeUndefined();
    expect(s.acceptedFor(6)?.value).toEqual(bytes('v6'));
    expect(s.accept(b(3), 10, bytes('v10')).answer.ok).toBe(true);
  });

  it('compacting to an earlier point again writes nothing; register keys are never compacted', () => {
    const s = acceptedThrough(3);
    s.accept(b(1), 'reg', bytes('r'));
    s.compact(3);
    expect(s.compact(2)).toEqual([]);
    expect(s.compact(3)).toEqual([]);
    expect(s.acceptedFor('reg')?.value).toEqual(bytes('r'));
    expect(s.highestAcceptedSlot).toBe(3);
  });

  it('its live records recover the same state as everything they replace', () => {
    const s = acceptedThrough(9);
    s.prepare(b(4, 'p'), 'reg');
    s.prepare(b(5, 'p'), 8);
    s.compact(5);
    const live = s.liveRecords();
    expect(live[0]).toEqual({ kind: 'compact', throughSlot: 5 });
    expect(
      live.some((r) => 'instance' in r && typeof r.instance === 'number' && r.instance <= 5),
    ).toBe(false);
    const copy = AcceptorState.recover(live);
    for (const instance of [0, 5, 6, 7, 8, 9, 10, 'reg'] as const) {
      expect(copy.promisedFor(instance), String(instance)).toEqual(s.promisedFor(instance));
      expect(copy.acceptedFor(instance), String(instance)).toEqual(s.acceptedFor(instance));
    }
    expect(copy.compactedThrough).toBe(5);
    expect(copy.prepareLog(b(9), 2).answer).toEqual(s.prepareLog(b(9), 2).answer);
  });

  it('records older than a compaction mark are ignored when recovering', () => {
    const records: StoreRecord[] = [
      { kind: 'accept', instance: 2, ballot: b(1), value: bytes('old') },
      { kind: 'compact', throughSlot: 4 },
      { kind: 'accept', instance: 3, ballot: b(1), value: bytes('late') },
    ];
    const s = AcceptorState.recover(records);
    expect(s.acceptedFor(2)).toBeUndefined();
    expect(s.acceptedFor(3)).toBeUndefined();
  });

  it('with the planted compaction-forgets-slots bug, grants phase 1 over compacted slots as if empty', () => {
    const s = AcceptorState.recover([], rulesFor('compaction-forgets-slots'));
    s.accept(b(1), 0, bytes('chosen'));
    s.compact(0);
    const answer = s.prepareLog(b(2, 'm'), 0).answer;
    expect(answer.ok).toBe(true);
    expect(answer.accepted).toEqual([]);
  });
});

describe('prepareLog pages', () => {
  it('cuts an answer by bytes as well as by entries, with at least one entry per page', () => {
    const s = new AcceptorState();
    for (let slot = 0; slot < 4; slot++) s.accept(b(1), slot, new Uint8Array(100));
    const first = s.prepareLog(b(2), 0, 1000, 250).answer;
    expect(first).toMatchObject({ ok: true, more: true, fromSlot: 0 });
    expect(first.accepted.map((e) => e.instance)).toEqual([0, 1]);
    const tiny = s.prepareLog(b(2), 2, 1000, 10).answer;
    expect(tiny.accepted.map((e) => e.instance)).toEqual([2]);
    expect(tiny.more).toBe(true);
    expect(s.prepareLog(b(2), 3, 1000, 10).answer.more).toBe(false);
  });
});

describe('one ballot carries one value', () => {
  it('an acceptor refuses a second value under a ballot it accepted another under', () => {
    const s = new AcceptorState();
    expect(s.accept(b(2), 7, bytes('x')).answer.ok).toBe(true);
    expect(s.accept(b(2), 7, bytes('x')).answer.ok).toBe(true);
    expect(s.accept(b(2), 7, bytes('y')).answer.ok).toBe(false);
    expect(s.acceptedFor(7)?.value).toEqual(bytes('x'));
  });

  it('a learner stops rather than count votes for two values at one ballot together', () => {
    const actor = createActor(learnerMachine, {
      input: { group: 'g', nodeId: 'n', acceptorCount: 3 },
    });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => void errors.push(e) });
    actor.start();
    const vote = (from: string, value: string) =>
      actor.send({
        type: 'message',
        message: {
          type: 'accepted',
          group: 'g',
          from,
          ballot: b(2),
          instance: 0,
          ok: true,
          promised: b(2),
          value: bytes(value),
        },
      });
    vote('a', 'x');
    vote('b', 'y');
    expect(String(errors[0])).toMatch(/two values accepted at ballot/);
  });

  it('a leader reserves above any round another machine of its node reserved meanwhile', () => {
    const actor = createActor(leaderMachine, {
      input: {
        group: 'g',
        nodeId: 'l',
        membership: new Membership(['a', 'b', 'c']),
        minRound: 1,
        firstUnknownSlot: 0,
        seed: 1,
      },
    });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'roundFloor', round: 8 });
    actor.send({ type: 'timer', timer: 'election' });
    const persist = effects.find(
      (e): e is Extract<Effect, { type: 'persist' }> => e.type === 'persist',
    );
    expect(persist?.records).toEqual([{ kind: 'round', round: 9 }]);
  });
});

describe('learner skip (a snapshot was installed)', () => {
  it('resumes delivery after the snapshot, with slots learned past it', () => {
    const actor = createActor(learnerMachine, {
      input: { group: 'g', nodeId: 'n', acceptorCount: 3 },
    });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'known', instance: 7, value: bytes('seven') });
    actor.send({ type: 'known', instance: 2, value: bytes('two') });
    actor.send({ type: 'skip', nextSlot: 7 });
    actor.send({ type: 'known', instance: 8, value: bytes('eight') });
    actor.send({ type: 'known', instance: 3, value: bytes('late') });
    const delivered = effects.flatMap((e) => (e.type === 'deliver' ? [e.slot] : []));
    expect(delivered).toEqual([7, 8]);
  });
});
