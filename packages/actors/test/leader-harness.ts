// A distinguished leader wired to in-process acceptors: the harness of leader.test.ts and
// leader-reads.test.ts.
import { Membership, type PeerMessage } from '@synod/protocol';
import { createActor } from 'xstate';
import {
  AcceptorState,
  type LeaderEffect,
  leaderMachine,
  type PlantedBug,
  rulesFor,
} from '../src/index.js';
import { text } from './helpers.js';

/** A leader candidate wired to three in-process acceptors that answer at once. */
export function setup(
  options: {
    firstUnknownSlot?: number;
    minRound?: number;
    maxInFlight?: number;
    maxInFlightBytes?: number;
    window?: number;
    /** Acceptors besides a, b and c, answering too: nodes that are not founding members. */
    others?: string[];
    plant?: PlantedBug;
    answer?: Set<string>;
    /** Acceptors answer prepareLog in pages of this many entries. */
    pageEntries?: number;
  } = {},
) {
  const acceptors = new Map([
    ['a', new AcceptorState()],
    ['b', new AcceptorState()],
    ['c', new AcceptorState()],
    ...(options.others ?? []).map((id) => [id, new AcceptorState()] as const),
  ]);
  const answering = options.answer ?? new Set(acceptors.keys());
  const actor = createActor(leaderMachine, {
    input: {
      group: 'g',
      nodeId: 'l',
      membership: new Membership(['a', 'b', 'c'], [], options.window),
      minRound: options.minRound ?? 1,
      firstUnknownSlot: options.firstUnknownSlot ?? 0,
      seed: 7,
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
      ...(options.maxInFlightBytes === undefined
        ? {}
        : { maxInFlightBytes: options.maxInFlightBytes }),
      rules: rulesFor(options.plant),
    },
  });
  const effects: LeaderEffect[] = [];
  const sent: PeerMessage[] = [];
  const queue: LeaderEffect[] = [];
  actor.on('*', (effect: LeaderEffect) => {
    effects.push(effect);
    queue.push(effect);
  });
  const pump = (): void => {
    while (queue.length > 0) {
      const effect = queue.shift()!;
      if (effect.type === 'persist') actor.send({ type: 'persisted', id: effect.id });
      if (effect.type !== 'send' || effect.to.kind !== 'acceptors') continue;
      const m = effect.message;
      sent.push(m);
      for (const [id, acceptor] of acceptors) {
        if (!answering.has(id)) continue;
        const env = { group: 'g', from: id };
        if (m.type === 'prepareLog')
          actor.send({
            type: 'message',
            message: {
              type: 'promise',
              ...env,
              ballot: m.ballot,
              ...acceptor.prepareLog(m.ballot, m.fromSlot, options.pageEntries).answer,
            },
          });
        if (m.type === 'readIndexCheck')
          actor.send({
            type: 'message',
            message: {
              type: 'readIndexAnswer',
              ...env,
              ballot: m.ballot,
              requestId: m.requestId,
              promised: acceptor.highestSlotBallot,
            },
          });
        if (m.type === 'accept')
          actor.send({
            type: 'message',
            message: {
              type: 'accepted',
              ...env,
              ballot: m.ballot,
              instance: m.instance,
              ...acceptor.accept(m.ballot, m.instance, m.value).answer,
            },
          });
      }
    }
  };
  actor.start();
  const elect = (): void => {
    actor.send({ type: 'timer', timer: 'election' });
    pump();
  };
  const chosen = (): string[] =>
    effects.flatMap((e) => (e.type === 'chosen' ? [`${String(e.instance)}=${text(e.value)}`] : []));
  /** Heartbeats until unanswered accepts are overdue and sent again. */
  const beatUntilResent = (): void => {
    for (let i = 0; i < 2; i++) {
      actor.send({ type: 'timer', timer: 'heartbeat' });
      pump();
    }
  };
  return { actor, acceptors, answering, effects, sent, pump, elect, chosen, beatUntilResent };
}
