// Paxos Commit's RM and coordinator, and two-phase commit's coordinator, one event at a time.
import { ballot, type PeerMessage } from '@synod/protocol';
import { describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor } from 'xstate';
import {
  type CommitEffect,
  type CommitMessage,
  commitRulesFor,
  coordinatorMachine,
  decodeVote,
  encodeVote,
  instanceOf,
  type RmInput,
  rmBallot,
  rmMachine,
  Tally,
  twoPhaseCoordinatorMachine,
  type Vote,
} from '../src/index.js';

const TX = 'tx';
const RMS = ['r1', 'r2'];

function record(actor: AnyActorRef): CommitEffect[] {
  const effects: CommitEffect[] = [];
  actor.on('*', (e: CommitEffect) => void effects.push(e));
  return effects;
}

const sent = (effects: CommitEffect[]): CommitMessage[] =>
  effects.flatMap((e) => (e.type === 'send' ? [e.message] : []));

/** An acceptor's phase 2b copy of `rm`'s vote at `b`. */
const accepted = (acceptor: string, rm: string, vote: Vote, b = rmBallot(rm)): PeerMessage => ({
  type: 'accepted',
  group: TX,
  from: acceptor,
  ballot: b,
  instance: instanceOf(TX, rm),
  ok: true,
  promised: b,
  value: encodeVote(vote),
});

/** An acceptor's answer to `rm`'s own phase 2a (no value: the reply, not the copy). */
const answered = (acceptor: string, rm: string): PeerMessage => {
  const { value: _copy, ...reply } = accepted(acceptor, rm, 'prepared') as PeerMessage & {
    value?: Uint8Array;
  };
  return reply as PeerMessage;
};

/** An RM of `r1`'s defaults with `input` over them, started, and the effects it emits. */
function startRm(input: Partial<RmInput> = {}) {
  const rm = createActor(rmMachine, {
    input: {
      txid: TX,
      rm: 'r1',
      rms: RMS,
      vote: 'prepared',
      protocol: 'paxos-commit',
      acceptorCount: 3,
      ...input,
    },
  });
  const effects = record(rm);
  rm.start();
  return { rm, effects };
}

describe('resource manager', () => {
  it('makes its vote durable before it proposes it at ballot 0, and waits for the outcome', () => {
    const { rm, effects } = startRm();
    rm.send({ type: 'message', message: { type: 'voteRequest', txid: TX, from: 'c1' } });
    expect(effects.filter((e) => e.type === 'persist')).toEqual([
      { type: 'persist', id: 1, record: { kind: 'vote', vote: 'prepared' } },
    ]);
    expect(sent(effects).filter((m) => m.type === 'accept')).toEqual([]);
    rm.send({ type: 'persisted', id: 1 });
    expect(sent(effects).filter((m) => m.type === 'accept')).toEqual([
      {
        type: 'accept',
        group: TX,
        from: 'r1',
        ballot: rmBallot('r1'),
        instance: instanceOf(TX, 'r1'),
        value: encodeVote('prepared'),
      },
    ]);
    // Its own vote accepted by a majority is not the outcome: another RM may abort.
    for (const a of ['a1', 'a2', 'a3']) rm.send({ type: 'message', message: answered(a, 'r1') });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([]);
    rm.send({
      type: 'message',
      message: { type: 'outcome', txid: TX, from: 'c1', outcome: 'committed' },
    });
    rm.send({ type: 'persisted', id: 2 });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([
      { type: 'decided', outcome: 'committed' },
    ]);
  });

  it('planted rm-commits-on-own-vote: commits once its own vote is accepted by a majority', () => {
    const { rm, effects } = startRm({ rules: commitRulesFor('rm-commits-on-own-vote') });
    rm.send({ type: 'message', message: { type: 'voteRequest', txid: TX, from: 'c1' } });
    rm.send({ type: 'persisted', id: 1 });
    for (const a of ['a1', 'a2']) rm.send({ type: 'message', message: answered(a, 'r1') });
    expect(effects.filter((e) => e.type === 'persist').at(-1)).toMatchObject({
      record: { kind: 'outcome', outcome: 'committed' },
    });
  });

  it('an RM that votes aborted rolls back at once; in Faster Paxos Commit RMs learn from the acceptors', () => {
    const { rm: aborting, effects } = startRm({ rm: 'r2', vote: 'aborted' });
    aborting.send({ type: 'message', message: { type: 'voteRequest', txid: TX, from: 'c1' } });
    aborting.send({ type: 'persisted', id: 1 });
    aborting.send({ type: 'persisted', id: 2 });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([
      { type: 'decided', outcome: 'aborted' },
    ]);

    const { rm: faster, effects: seen } = startRm({ protocol: 'faster-paxos-commit' });
    for (const rm of RMS)
      for (const a of ['a1', 'a3'])
        faster.send({ type: 'message', message: accepted(a, rm, 'prepared') });
    expect(seen.filter((e) => e.type === 'persist')).toEqual([
      { type: 'persist', id: 1, record: { kind: 'outcome', outcome: 'committed' } },
    ]);
  });
});

describe('Paxos Commit coordinator', () => {
  const start = (
    plant?: 'coordinator-proposes-prepared',
    rounds: { minRound?: number; maxRound?: number } = {},
  ) => {
    const c = createActor(coordinatorMachine, {
      input: {
        txid: TX,
        nodeId: 'c1',
        rms: RMS,
        acceptorCount: 3,
        initial: true,
        phaseTimeoutMs: 100,
        rules: commitRulesFor(plant),
        ...rounds,
      },
    });
    const effects = record(c);
    c.start();
    return { c, effects };
  };

  it('commits once every instance chose prepared at a majority, and tells the RMs', () => {
    const { c, effects } = start();
    expect(sent(effects)).toContainEqual({ type: 'voteRequest', txid: TX, from: 'c1' });
    c.send({ type: 'message', message: accepted('a1', 'r1', 'prepared') });
    c.send({ type: 'message', message: accepted('a2', 'r1', 'prepared') });
    c.send({ type: 'message', message: accepted('a1', 'r2', 'prepared') });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([]);
    c.send({ type: 'message', message: accepted('a3', 'r2', 'prepared') });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([
      { type: 'decided', outcome: 'committed' },
    ]);
    expect(sent(effects).at(-1)).toEqual({
      type: 'outcome',
      txid: TX,
      from: 'c1',
      outcome: 'committed',
    });
  });

  it('takes over only at rounds within its range, and stops at its end', () => {
    const { c, effects } = start(undefined, { minRound: 7, maxRound: 8 });
    const rounds = () =>
      sent(effects).flatMap((m) => (m.type === 'prepare' ? [m.ballot.round] : []));
    c.send({ type: 'timer', timer: 'phase' });
    // A higher ballot holds at an acceptor: the next round would be past the range.
    c.send({
      type: 'message',
      message: {
        type: 'promise',
        group: TX,
        from: 'a1',
        ballot: ballot(7, 'c1'),
        instance: instanceOf(TX, 'r1'),
        ok: false,
        promised: ballot(50, 'c9'),
        accepted: [],
        more: false,
      },
    });
    c.send({ type: 'timer', timer: 'phase' });
    c.send({ type: 'timer', timer: 'phase' });
    expect(new Set(rounds())).toEqual(new Set([7]));
  });

  it('aborts as soon as one instance chose aborted', () => {
    const { c, effects } = start();
    c.send({ type: 'message', message: accepted('a1', 'r2', 'aborted') });
    c.send({ type: 'message', message: accepted('a2', 'r2', 'aborted') });
    expect(effects.filter((e) => e.type === 'decided')).toEqual([
      { type: 'decided', outcome: 'aborted' },
    ]);
  });

  it('at the timeout runs phase 1 for the silent RMs: a vote found is proposed again, none found is aborted', () => {
    for (const plant of [undefined, 'coordinator-proposes-prepared'] as const) {
      const { c, effects } = start(plant);
      c.send({ type: 'timer', timer: 'phase' });
      const prepares = sent(effects).filter((m) => m.type === 'prepare');
      expect(prepares.map((m) => (m.type === 'prepare' ? m.instance : ''))).toEqual(
        RMS.map((rm) => instanceOf(TX, rm)),
      );
      const b = ballot(1, 'c1');
      const promise = (from: string, rm: string, vote?: Vote): PeerMessage => ({
        type: 'promise',
        group: TX,
        from,
        ballot: b,
        instance: instanceOf(TX, rm),
        ok: true,
        promised: b,
        accepted:
          vote === undefined
            ? []
            : [{ instance: instanceOf(TX, rm), ballot: rmBallot(rm), value: encodeVote(vote) }],
        more: false,
      });
      // r1's vote reached one acceptor of the majority that promised; r2's reached none.
      c.send({ type: 'message', message: promise('a1', 'r1', 'prepared') });
      c.send({ type: 'message', message: promise('a2', 'r1') });
      c.send({ type: 'message', message: promise('a2', 'r2') });
      c.send({ type: 'message', message: promise('a3', 'r2') });
      const proposed = sent(effects).flatMap((m) =>
        m.type === 'accept' ? [[m.instance, decodeVote(m.value)]] : [],
      );
      expect(proposed).toEqual([
        [instanceOf(TX, 'r1'), 'prepared'],
        [instanceOf(TX, 'r2'), plant === undefined ? 'aborted' : 'prepared'],
      ]);
    }
  });
});

describe('two-phase commit coordinator', () => {
  it('logs the outcome before it tells anyone, and aborts when a vote does not come', () => {
    const tm = createActor(twoPhaseCoordinatorMachine, {
      input: { txid: TX, nodeId: 'c1', rms: RMS, voteTimeoutMs: 300 },
    });
    const effects = record(tm);
    tm.start();
    tm.send({ type: 'message', message: { type: 'vote', txid: TX, from: 'r1', vote: 'prepared' } });
    tm.send({ type: 'timer', timer: 'votes' });
    expect(effects.filter((e) => e.type === 'persist')).toEqual([
      { type: 'persist', id: 1, record: { kind: 'outcome', outcome: 'aborted' } },
    ]);
    expect(sent(effects).filter((m) => m.type === 'outcome')).toEqual([]);
    tm.send({ type: 'persisted', id: 1 });
    expect(sent(effects).filter((m) => m.type === 'outcome')).toHaveLength(1);
  });
});

describe('tally', () => {
  it('chooses a vote at a majority of one ballot, and ignores other transactions and garbage', () => {
    const t = new Tally(TX, RMS, 3);
    t.add('a1', instanceOf(TX, 'r1'), rmBallot('r1'), encodeVote('prepared'));
    t.add('a2', instanceOf(TX, 'r1'), ballot(1, 'c1'), encodeVote('prepared'));
    expect(t.chosen('r1')).toBeUndefined(); // two ballots, one acceptor each
    t.add('a3', instanceOf('other', 'r1'), rmBallot('r1'), encodeVote('prepared'));
    t.add('a3', instanceOf(TX, 'r1'), rmBallot('r1'), Uint8Array.of(7));
    expect(t.chosen('r1')).toBeUndefined();
    t.add('a3', instanceOf(TX, 'r1'), rmBallot('r1'), encodeVote('prepared'));
    expect(t.chosen('r1')).toBe('prepared');
    expect(t.undecided()).toEqual(['r2']);
    expect(t.outcome()).toBeUndefined();
  });
});
