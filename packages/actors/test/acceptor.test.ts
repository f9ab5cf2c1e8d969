// Seed 001's acceptor rules, sentence by sentence, and "persistence comes before the reply".
import { ballot, type PeerMessage, ZERO_BALLOT } from '@synod/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { AcceptorState, acceptorMachine, rulesFor } from '../src/index.js';
import { bytes, record } from './helpers.js';

const b = (round: number, node = 'a') => ballot(round, node);
const env = { group: 'g', from: 'p' } as const;

describe('acceptor rules (seed 001)', () => {
  it('1a: promises a ballot higher than any promised, and then rejects lower ones, reporting the promise', () => {
    const s = new AcceptorState();
    expect(s.prepare(b(2), 'k').answer.ok).toBe(true);
    const lower = s.prepare(b(1), 'k').answer;
    expect(lower.ok).toBe(false);
    expect(lower.promised).toEqual(b(2));
  });

  it('1a: on an equal round the higher node id wins ("or equal with lower node id")', () => {
    const s = new AcceptorState();
    expect(s.prepare(b(3, 'b'), 'k').answer.ok).toBe(true);
    expect(s.prepare(b(3, 'a'), 'k').answer.ok).toBe(false);
    expect(s.prepare(b(3, 'c'), 'k').answer.ok).toBe(true);
  });

  it('1b: returns the previously accepted value and its ballot', () => {
    const s = new AcceptorState();
    s.accept(b(1), 'k', bytes('v1'));
    const answer = s.prepare(b(2, 'b'), 'k').answer;
    expect(answer.accepted).toEqual([{ instance: 'k', ballot: b(1), value: bytes('v1') }]);
  });

  it('2: accepts only at a ballot at least as high as its promise', () => {
    const s = new AcceptorState();
    s.prepare(b(5), 7);
    expect(s.accept(b(4), 7, bytes('x')).answer).toEqual({ ok: false, promised: b(5) });
    expect(s.accept(b(5), 7, bytes('x')).answer.ok).toBe(true);
    expect(s.acceptedFor(7)?.value).toEqual(bytes('x'));
  });

  it('keeps instances apart: a promise for one key does not block another', () => {
    const s = new AcceptorState();
    s.prepare(b(9), 'a');
    expect(s.accept(b(1), 'b', bytes('v')).answer.ok).toBe(true);
    expect(s.promisedFor('b')).toEqual(b(1));
  });

  it('a leader-wide promise covers every slot from fromSlot on, reports what was accepted there, and not below', () => {
    const s = new AcceptorState();
    s.accept(b(1), 3, bytes('three'));
    s.accept(b(1), 8, bytes('eight'));
    const verdict = s.prepareLog(b(4, 'l'), 5);
    expect(verdict.answer.ok).toBe(true);
    expect(verdict.answer.accepted.map((e) => e.instance)).toEqual([8]);
    expect(s.accept(b(2), 100, bytes('late')).answer.ok).toBe(false);
    expect(s.accept(b(2), 4, bytes('below')).answer.ok).toBe(true);
    expect(s.promisedFor('key')).toEqual(ZERO_BALLOT);
  });

  it('rejects a leader-wide prepare below a promise made for one of its slots', () => {
    const s = new AcceptorState();
    s.prepare(b(9), 12);
    expect(s.prepareLog(b(4, 'l'), 5).answer).toMatchObject({ ok: false, promised: b(9) });
  });

  it('rebuilds the same state from its own records', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('prepare', 'accept', 'prepareLog'),
            fc.integer({ min: 0, max: 6 }),
            fc.constantFrom('a', 'b', 'c'),
            fc.integer({ min: 0, max: 4 }),
          ),
          { maxLength: 40 },
        ),
        (ops) => {
          const live = new AcceptorState();
          const records = [];
          for (const [kind, round, node, slot] of ops) {
            const verdict =
              kind === 'prepare'
                ? live.prepare(b(round, node), slot)
                : kind === 'accept'
                  ? live.accept(b(round, node), slot, bytes(`${round}${node}`))
                  : live.prepareLog(b(round, node), slot);
            records.push(...verdict.records);
          }
          const recovered = AcceptorState.recover(records);
          for (let slot = 0; slot <= 5; slot++) {
            expect(recovered.promisedFor(slot)).toEqual(live.promisedFor(slot));
            expect(recovered.acceptedFor(slot)).toEqual(live.acceptedFor(slot));
          }
          expect(recovered.highestAcceptedSlot).toBe(live.highestAcceptedSlot);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never accepts below a ballot it promised or accepted before (any request sequence)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 6 }), fc.constantFrom('a', 'b')),
          { maxLength: 40 },
        ),
        (ops) => {
          const s = new AcceptorState();
          let highest = ZERO_BALLOT;
          for (const [isAccept, round, node] of ops) {
            const bb = b(round, node);
            const ok = isAccept
              ? s.accept(bb, 0, bytes('v')).answer.ok
              : s.prepare(bb, 0).answer.ok;
            const atLeastHighest =
              bb.round > highest.round ||
              (bb.round === highest.round && bb.nodeId >= highest.nodeId);
            expect(ok).toBe(atLeastHighest);
            if (ok) highest = bb;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('acceptor machine: persistence comes before the reply', () => {
  const prepare = (round: number): PeerMessage => ({
    type: 'prepare',
    ...env,
    ballot: b(round, 'p'),
    instance: 'k',
  });

  it('emits persist, holds the promise until the record is durable, then replies', () => {
    const actor = createActor(acceptorMachine, { input: { group: 'g', nodeId: 'a' } });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'message', message: prepare(1), replyTo: 'inbox.1' });
    expect(effects.map((e) => e.type)).toEqual(['persist']);
    expect(actor.getSnapshot().value).toBe('syncing');
    actor.send({ type: 'persisted', id: 1 });
    expect(effects.map((e) => e.type)).toEqual(['persist', 'send']);
    expect(effects[1]).toMatchObject({
      to: { kind: 'reply', to: 'inbox.1' },
      message: { type: 'promise', ok: true },
    });
    expect(actor.getSnapshot().value).toBe('ready');
  });

  it('holds even an answer that needs no record until earlier records are durable', () => {
    const actor = createActor(acceptorMachine, { input: { group: 'g', nodeId: 'a' } });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'message', message: prepare(2), replyTo: 'r1' });
    actor.send({ type: 'message', message: prepare(2), replyTo: 'r2' });
    expect(effects.filter((e) => e.type === 'send')).toHaveLength(0);
    actor.send({ type: 'persisted', id: 1 });
    expect(effects.filter((e) => e.type === 'send')).toHaveLength(2);
  });

  it('answers a ReadIndex check with the highest ballot it promised or accepted for any log slot, and records nothing', () => {
    const actor = createActor(acceptorMachine, { input: { group: 'g', nodeId: 'a' } });
    const effects = record(actor);
    actor.start();
    const check = (round: number, replyTo: string): void =>
      actor.send({
        type: 'message',
        message: { type: 'readIndexCheck', ...env, ballot: b(round, 'l'), requestId: round },
        replyTo,
      });
    const answers = (): unknown[] =>
      effects.flatMap((e) =>
        e.type === 'send' && e.message.type === 'readIndexAnswer' ? [e.message.promised] : [],
      );
    check(1, 'r1');
    expect(answers()).toEqual([ZERO_BALLOT]);
    // A register's ballot says nothing of who leads the log; a log promise and an accept do.
    actor.send({ type: 'message', message: prepare(9), replyTo: 'p' });
    actor.send({ type: 'persisted', id: 1 });
    check(2, 'r2');
    actor.send({
      type: 'message',
      message: { type: 'prepareLog', ...env, ballot: b(4, 'm'), fromSlot: 10 },
      replyTo: 'p',
    });
    actor.send({ type: 'persisted', id: 2 });
    check(3, 'r3');
    actor.send({
      type: 'message',
      message: { type: 'accept', ...env, ballot: b(6, 'n'), instance: 2, value: bytes('v') },
      replyTo: 'p',
    });
    actor.send({ type: 'persisted', id: 3 });
    check(4, 'r4');
    expect(answers()).toEqual([ZERO_BALLOT, ZERO_BALLOT, b(4, 'm'), b(6, 'n')]);
    expect(effects.filter((e) => e.type === 'persist')).toHaveLength(3);
  });

  it('tells learners of an acceptance, with the value, once durable', () => {
    const actor = createActor(acceptorMachine, { input: { group: 'g', nodeId: 'a' } });
    const effects = record(actor);
    actor.start();
    actor.send({
      type: 'message',
      message: { type: 'accept', ...env, ballot: b(1, 'p'), instance: 4, value: bytes('v') },
      replyTo: 'r',
    });
    actor.send({ type: 'persisted', id: 1 });
    const sends = effects.filter((e) => e.type === 'send');
    expect(sends.map((e) => (e.type === 'send' ? e.to.kind : ''))).toEqual(['reply', 'learners']);
  });

  it('with the planted reply-before-persist bug, answers before the record is durable (the simulator must catch this)', () => {
    const actor = createActor(acceptorMachine, {
      input: { group: 'g', nodeId: 'a', rules: rulesFor('reply-before-persist') },
    });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'message', message: prepare(1), replyTo: 'r' });
    expect(effects.map((e) => e.type)).toEqual(['persist', 'send']);
  });

  it('ignores messages of other groups', () => {
    const actor = createActor(acceptorMachine, { input: { group: 'g', nodeId: 'a' } });
    const effects = record(actor);
    actor.start();
    actor.send({ type: 'message', message: { ...prepare(1), group: 'other' }, replyTo: 'r' });
    expect(effects).toEqual([]);
  });
});
