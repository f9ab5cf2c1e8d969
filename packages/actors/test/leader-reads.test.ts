// The leader's ReadIndex round: confirm leadership with a majority, without a log slot.
import { ballot } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import type { LeaderEffect } from '../src/index.js';
import { bytes } from './helpers.js';
import { setup } from './leader-harness.js';

type Checked = Extract<LeaderEffect, { type: 'leadershipChecked' }>;

function check(t: ReturnType<typeof setup>, id: number): Checked[] {
  t.actor.send({ type: 'checkLeadership', id });
  t.pump();
  return t.effects.filter((e): e is Checked => e.type === 'leadershipChecked' && e.id === id);
}

describe('leader: ReadIndex', () => {
  it('a settled leader confirms with a majority of answers, at the slot it delivered through', () => {
    const t = setup({ firstUnknownSlot: 0 });
    t.elect();
    for (const v of ['one', 'two']) t.actor.send({ type: 'propose', value: bytes(v) });
    t.pump();
    t.actor.send({ type: 'progress', firstUnknownSlot: 2 });
    const sentBefore = t.sent.length;
    expect(check(t, 1)).toEqual([{ type: 'leadershipChecked', id: 1, readIndex: 1 }]);
    // One check to the acceptors, and no accept: a read takes no log slot.
    expect(t.sent.slice(sentBefore).map((m) => m.type)).toEqual(['readIndexCheck']);
  });

  it('does not confirm on a minority of answers, and confirms once a majority answered a resend', () => {
    const t = setup();
    t.elect();
    for (const id of ['b', 'c']) t.answering.delete(id);
    expect(check(t, 7)).toEqual([]);
    t.answering.add('b');
    // The same id asks again and keeps what was answered.
    expect(check(t, 7)).toEqual([{ type: 'leadershipChecked', id: 7, readIndex: -1 }]);
  });

  it('an acceptor that promised a higher ballot deposes the leader, and the read is refused', () => {
    const t = setup({ minRound: 3 });
    t.elect();
    t.acceptors.get('a')!.prepareLog(ballot(9, 'z'), 0);
    t.answering.delete('b');
    expect(check(t, 2)).toEqual([
      { type: 'leadershipChecked', id: 2, refused: 'deposed', leader: undefined },
    ]);
    expect(t.actor.getSnapshot().value).toBe('follower');
  });

  it('a leader whose phase 1 reported a slot it has not delivered yet is unsettled', () => {
    const t = setup({ firstUnknownSlot: 3, minRound: 5 });
    t.acceptors.get('a')!.accept(ballot(1, 'x'), 4, bytes('four'));
    t.acceptors.get('b')!.accept(ballot(1, 'x'), 4, bytes('four'));
    t.elect();
    expect(t.actor.getSnapshot().value).toBe('leading');
    expect(check(t, 1)).toMatchObject([{ refused: 'unsettled' }]);
    t.actor.send({ type: 'progress', firstUnknownSlot: 5 });
    expect(check(t, 2)).toEqual([{ type: 'leadershipChecked', id: 2, readIndex: 4 }]);
  });

  it('a follower refuses at once; stepping down refuses the open round', () => {
    const t = setup();
    expect(check(t, 1)).toMatchObject([{ refused: 'not-leader' }]);
    t.elect();
    t.answering.clear();
    expect(check(t, 2)).toEqual([]);
    t.actor.send({
      type: 'message',
      message: {
        type: 'heartbeat',
        group: 'g',
        from: 'z',
        ballot: ballot(50, 'z'),
        commitIndex: -1,
      },
    });
    expect(t.effects.filter((e) => e.type === 'leadershipChecked' && e.id === 2)).toMatchObject([
      { refused: 'not-leader' },
    ]);
  });

  it('planted deposed-leader-reads: confirms on its own word, with no acceptor answering', () => {
    const t = setup({ plant: 'deposed-leader-reads' });
    t.elect();
    t.answering.clear();
    expect(check(t, 1)).toEqual([{ type: 'leadershipChecked', id: 1, readIndex: -1 }]);
  });
});
