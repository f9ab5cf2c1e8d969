// Seed 003's distinguished proposer: one phase 1 for all slots from the first unchosen one,
// re-propose what acceptors report, fill holes with no-ops, then phase 2 only.
import { ballot, encodeMembership, Membership, type PeerMessage } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import type { PlantedBug } from '../src/index.js';
import { bytes, text } from './helpers.js';
import { setup } from './leader-harness.js';

describe('distinguished leader', () => {
  it('becomes leader with one prepareLog for every slot from its first unchosen one', () => {
    const t = setup({ firstUnknownSlot: 4 });
    expect(t.actor.getSnapshot().value).toBe('follower');
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('leading');
    const prepares = t.sent.filter((m) => m.type === 'prepareLog');
    expect(prepares).toHaveLength(1);
    expect(prepares[0]).toMatchObject({ fromSlot: 4, ballot: { round: 1, nodeId: 'l' } });
    expect(t.effects).toContainEqual({ type: 'leadership', leader: 'l', ballot: ballot(1, 'l') });
  });

  it('persists its round before the prepareLog leaves', () => {
    const t = setup();
    t.elect();
    const persist = t.effects.findIndex((e) => e.type === 'persist');
    const prepare = t.effects.findIndex(
      (e) => e.type === 'send' && e.message.type === 'prepareLog',
    );
    expect(persist).toBeGreaterThanOrEqual(0);
    expect(persist).toBeLessThan(prepare);
  });

  it('re-proposes the highest-ballot value reported in each slot and fills holes with no-ops', () => {
    const t = setup({ firstUnknownSlot: 3, minRound: 5 });
    t.acceptors.get('a')!.accept(ballot(1, 'x'), 3, bytes('old'));
    t.acceptors.get('b')!.accept(ballot(2, 'y'), 3, bytes('newer'));
    // On a (the first majority to answer is a and b): c alone could not have had it chosen.
    t.acceptors.get('a')!.accept(ballot(1, 'x'), 5, bytes('five'));
    t.elect();
    expect(t.chosen()).toEqual(['3=newer', '4=', '5=five']);
    t.actor.send({ type: 'propose', value: bytes('next') });
    t.pump();
    expect(t.chosen().at(-1)).toBe('6=next');
  });

  it('reads a long phase-1 answer in pages, and re-proposes every value it reported', () => {
    const t = setup({ firstUnknownSlot: 0, minRound: 5, pageEntries: 3 });
    for (let slot = 0; slot < 10; slot++)
      t.acceptors.get('a')!.accept(ballot(1, 'x'), slot, bytes(`s${slot}`));
    t.answering.delete('c');
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('leading');
    const pages = t.sent.filter((m) => m.type === 'prepareLog').map((m) => m.fromSlot);
    expect(pages).toEqual([0, 3, 6, 9]);
    expect(t.chosen()).toEqual(Array.from({ length: 10 }, (_, slot) => `${slot}=s${slot}`));
  });

  it('counts acknowledgements only from the members that govern the slot', () => {
    const t = setup({ others: ['d', 'e'] });
    t.elect();
    for (const id of ['b', 'c']) t.answering.delete(id);
    t.actor.send({ type: 'propose', value: bytes('v') });
    t.pump();
    expect(t.chosen()).toEqual([]); // a, d and e answered: three acceptors, one member
    t.answering.add('b');
    t.beatUntilResent();
    expect(t.chosen()).toEqual(['0=v']);
  });

  it('starts a slot only once the slots a window before it are known chosen', () => {
    const t = setup({ window: 2 });
    t.elect();
    for (const v of ['one', 'two', 'three', 'four'])
      t.actor.send({ type: 'propose', value: bytes(v) });
    t.pump();
    expect(t.chosen()).toEqual(['0=one', '1=two']);
    t.actor.send({ type: 'progress', firstUnknownSlot: 1 });
    t.pump();
    expect(t.chosen()).toEqual(['0=one', '1=two', '2=three']);
  });

  it('waits for the promises of the members of a change phase 1 reports before it starts the slots they decide', () => {
    const change = encodeMembership(['c', 'd', 'e']);
    const t = setup({ window: 2, others: ['d', 'e'], answer: new Set(['a', 'b']), minRound: 5 });
    for (const id of ['a', 'b']) t.acceptors.get(id)!.accept(ballot(1, 'x'), 0, change);
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('leading');
    t.actor.send({
      type: 'progress',
      firstUnknownSlot: 1,
      membership: new Membership(['a', 'b', 'c'], [], 2).withChange(0, ['c', 'd', 'e']),
    });
    for (const v of ['one', 'two']) t.actor.send({ type: 'propose', value: bytes(v) });
    t.pump();
    // Slot 1 is the old members'; slot 2 needs c, d or e to have promised, and none answers.
    expect(t.chosen().slice(1)).toEqual(['1=one']);
    const widening = t.sent.filter((m) => m.type === 'prepareLog').at(-1);
    expect(widening).toMatchObject({ fromSlot: 2, ballot: { round: 5, nodeId: 'l' } });
    t.answering.add('d');
    t.answering.add('e');
    t.actor.send({ type: 'timer', timer: 'heartbeat' });
    t.pump();
    expect(t.chosen().slice(1)).toEqual(['1=one', '2=two']);
  });

  it('does not decide a slot of new members blind: a value they chose at a lower ballot is kept (simulator seed 931669)', () => {
    const run = (plant?: PlantedBug): string[] => {
      // e joins alone. The leader's phase 1 (round 5) reached only a, b and c.
      const t = setup({
        window: 2,
        others: ['e'],
        answer: new Set(['a', 'b', 'c']),
        minRound: 5,
        ...(plant === undefined ? {} : { plant }),
      });
      t.elect();
      t.actor.send({ type: 'propose', value: encodeMembership(['e']) });
      t.pump();
      expect(t.chosen()).toHaveLength(1);
      // Meanwhile a proposer at round 1 (a follower's no-op for a read) had e promise and
      // accept "theirs" in slot 2, which e alone decides: "theirs" is chosen there.
      const e = t.acceptors.get('e')!;
      expect(e.prepare(ballot(1, 'k'), 2).answer.ok).toBe(true);
      expect(e.accept(ballot(1, 'k'), 2, bytes('theirs')).answer.ok).toBe(true);
      t.answering.add('e');
      t.actor.send({
        type: 'progress',
        firstUnknownSlot: 1,
        membership: new Membership(['a', 'b', 'c'], [], 2).withChange(0, ['e']),
      });
      for (const v of ['one', 'two']) t.actor.send({ type: 'propose', value: bytes(v) });
      t.pump();
      return t.chosen().slice(1);
    };
    expect(run()).toEqual(['1=one', '2=theirs']);
    // Started at a ballot e never promised, slot 2 takes "two" over what e had chosen.
    expect(run('unprepared-members')).toEqual(['1=one', '2=two']);
  });

  it('once a change governs a slot, only its members acknowledge it', () => {
    const t = setup({ window: 1, others: ['d', 'e'] });
    t.elect();
    t.actor.send({ type: 'propose', value: encodeMembership(['c', 'd', 'e']) });
    t.pump();
    expect(t.chosen()).toHaveLength(1);
    t.actor.send({
      type: 'progress',
      firstUnknownSlot: 1,
      membership: new Membership(['a', 'b', 'c'], [], 1).withChange(0, ['c', 'd', 'e']),
    });
    for (const id of ['c', 'd', 'e']) t.answering.delete(id);
    t.actor.send({ type: 'propose', value: bytes('after') });
    t.pump();
    expect(t.chosen()).toHaveLength(1); // a and b are no longer members
    t.answering.add('d');
    t.answering.add('e');
    t.actor.send({ type: 'timer', timer: 'heartbeat' });
    t.pump();
    expect(t.chosen().at(-1)).toBe('1=after');
  });

  it('retries the election above a higher ballot it was refused with', () => {
    const t = setup();
    for (const id of ['a', 'b']) t.acceptors.get(id)!.prepareLog(ballot(6, 'z'), 0);
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('follower');
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('leading');
    expect(t.sent.filter((m) => m.type === 'prepareLog').at(-1)).toMatchObject({
      ballot: { round: 7, nodeId: 'l' },
    });
  });

  it('with the planted skip-repropose bug, overwrites slots whose values were reported (the simulator must catch this)', () => {
    const t = setup({ firstUnknownSlot: 3, minRound: 5, plant: 'skip-repropose' });
    for (const id of ['a', 'b'])
      t.acceptors.get(id)!.accept(ballot(1, 'x'), 3, bytes('chosen before'));
    t.elect();
    t.actor.send({ type: 'propose', value: bytes('new') });
    t.pump();
    expect(t.chosen()).toEqual(['3=new']);
  });

  it('after the election, new values need phase 2 only: no further prepare is sent', () => {
    const t = setup();
    t.elect();
    const before = t.sent.filter((m) => m.type === 'prepareLog' || m.type === 'prepare').length;
    for (let i = 0; i < 20; i++) t.actor.send({ type: 'propose', value: bytes(`v${i}`) });
    t.pump();
    expect(t.sent.filter((m) => m.type === 'prepareLog' || m.type === 'prepare').length).toBe(
      before,
    );
    expect(t.chosen()).toHaveLength(20);
    expect(t.chosen()[19]).toBe('19=v19');
  });

  it('keeps at most maxInFlight slots in phase 2, queues the rest, and resends unanswered accepts each beat', () => {
    const t = setup({ maxInFlight: 2 });
    t.elect();
    t.answering.clear();
    for (const v of ['one', 'two', 'three']) t.actor.send({ type: 'propose', value: bytes(v) });
    t.pump();
    const accepts = (): string[] =>
      t.sent.flatMap((m) => (m.type === 'accept' ? [text(m.value)] : []));
    expect(accepts()).toEqual(['one', 'two']);
    for (const id of ['a', 'b', 'c']) t.answering.add(id);
    // Not at the next beat: an accept is sent again only once it is overdue.
    t.actor.send({ type: 'timer', timer: 'heartbeat' });
    t.pump();
    expect(accepts()).toEqual(['one', 'two']);
    t.actor.send({ type: 'timer', timer: 'heartbeat' });
    t.pump();
    expect(accepts()).toEqual(['one', 'two', 'one', 'two', 'three']);
    expect(t.chosen()).toEqual(['0=one', '1=two', '2=three']);
  });

  it('keeps at most maxInFlightBytes of values in phase 2 (one slot always goes)', () => {
    const t = setup({ maxInFlightBytes: 10 });
    t.elect();
    t.answering.clear();
    for (const v of ['six---', 'seven--', 'x', 'a value longer than ten bytes'])
      t.actor.send({ type: 'propose', value: bytes(v) });
    t.pump();
    const accepts = (): string[] =>
      t.sent.flatMap((m) => (m.type === 'accept' ? [text(m.value)] : []));
    // 6 + 7 bytes pass the bound: nothing more starts until one of them is chosen.
    expect(accepts()).toEqual(['six---', 'seven--']);
    for (const id of ['a', 'b', 'c']) t.answering.add(id);
    t.beatUntilResent();
    expect(t.chosen()).toEqual(['0=six---', '1=seven--', '2=x', '3=a value longer than ten bytes']);
  });

  it('steps down when an acceptor reports a higher ballot, handing back what was in flight', () => {
    const t = setup();
    t.elect();
    for (const acceptor of t.acceptors.values()) acceptor.prepareLog(ballot(9, 'z'), 0);
    t.actor.send({ type: 'propose', value: bytes('late') });
    t.pump();
    expect(t.actor.getSnapshot().value).toBe('follower');
    expect(t.chosen()).toEqual([]);
    expect(t.effects).toContainEqual({
      type: 'refused',
      values: [bytes('late')],
      reason: 'not-leader',
      leader: undefined,
    });
    expect(t.effects.at(-1)).toMatchObject({ type: 'setTimer', timer: 'election' });
  });

  it('with the planted deposed-keeps-committing bug, counts refusals and reports a value chosen that was not', () => {
    const t = setup({ plant: 'deposed-keeps-committing' });
    t.elect();
    for (const acceptor of t.acceptors.values()) acceptor.prepareLog(ballot(9, 'z'), 0);
    t.actor.send({ type: 'propose', value: bytes('late') });
    t.pump();
    expect(t.chosen()).toEqual(['0=late']);
  });

  it('forgets a leader that went silent for an election timeout', () => {
    const t = setup({ answer: new Set() });
    t.actor.send({
      type: 'message',
      message: { type: 'heartbeat', group: 'g', from: 'b', ballot: ballot(3, 'b'), commitIndex: 0 },
    });
    t.actor.send({ type: 'timer', timer: 'election' });
    expect(t.effects.filter((e) => e.type === 'leadership').at(-1)).toMatchObject({
      leader: undefined,
    });
    t.actor.send({ type: 'propose', value: bytes('v') });
    expect(t.effects.at(-1)).toMatchObject({ type: 'refused', leader: undefined });
  });

  it('as a follower, follows heartbeats and refuses proposals with the leader as a hint', () => {
    const t = setup();
    const heartbeat: PeerMessage = {
      type: 'heartbeat',
      group: 'g',
      from: 'b',
      ballot: ballot(3, 'b'),
      commitIndex: 10,
    };
    t.actor.send({ type: 'message', message: heartbeat });
    t.actor.send({ type: 'propose', value: bytes('v') });
    expect(t.effects).toContainEqual({ type: 'leadership', leader: 'b', ballot: ballot(3, 'b') });
    expect(t.effects).toContainEqual({
      type: 'refused',
      values: [bytes('v')],
      reason: 'not-leader',
      leader: 'b',
    });
  });
});
