import {
  type Ballot,
  createPeerCodec,
  groupSubjects,
  MAX_ROUND,
  type PeerMessage,
  type Value,
} from '@synod/protocol';
import type { MemoryNetwork, Rng, Scheduler } from '@synod/transport';
import { encodeWrite } from './kv.js';
import type { TraceSink } from './trace.js';

/** What the rogue needs to know to aim its messages near the group's real log and ballots. */
export interface RogueTarget {
  readonly group: string;
  readonly members: readonly string[];
  /** The highest slot any live node delivered (-1: none). */
  deliveredThrough(): number;
  /** The highest round any live node uses. */
  highestRound(): number;
  /** Leader mode: decides are checked against the leader (leaderless learners cannot). */
  readonly leaderMode: boolean;
}

const ROGUES = ['zz', 'rogue1', 'rogue2'] as const;
const codec = createPeerCodec();

/**
 * A sender on the network that is no member of the group (DESIGN's "any NATS client is a
 * peer"): well-formed messages that a node must not believe. From ids that are no member it
 * sends decides of values nobody proposed, prepareLogs and heartbeats at the highest round
 * there is, two votes for different values at one ballot, promises, acceptances and catch-up
 * answers full of forged values. Under members' names it sends only what no real member
 * could send: ballots far beyond any round in use, decides at ballots that are not the
 * sender's, and decides at a member's ballot that no leader ever used (no own vote backs
 * them). It does not impersonate a member plausibly: that needs NATS authentication to stop.
 */
export class Rogue {
  readonly #rng: Rng;
  readonly #target: RogueTarget;
  readonly #publish: (subject: string, message: PeerMessage) => void;
  readonly #subjects;
  readonly #trace: TraceSink | undefined;
  #seq = 0;
  sent = 0;

  constructor(network: MemoryNetwork, rng: Rng, target: RogueTarget, trace: TraceSink | undefined) {
    const transport = network.connect('zz');
    this.#rng = rng;
    this.#target = target;
    this.#trace = trace;
    this.#subjects = groupSubjects(target.group);
    this.#publish = (subject, message) => {
      transport.publish(subject, codec.encode(message));
      this.sent++;
    };
  }

  /** Sends one forged message every [min, max) ms until `until` (simulated time). */
  run(scheduler: Scheduler, everyMs: { min: number; max: number }, until: number): void {
    const next = (): void => {
      if (scheduler.now() >= until) return;
      this.sendOne();
      scheduler.setTimer(everyMs.min + this.#rng.next() * (everyMs.max - everyMs.min), next);
    };
    scheduler.setTimer(this.#rng.next() * everyMs.max, next);
  }

  sendOne(): void {
    const rng = this.#rng;
    const group = this.#target.group;
    const from = ROGUES[rng.int(0, ROGUES.length - 1)]!;
    const member = this.#target.members[rng.int(0, this.#target.members.length - 1)]!;
    const slot = Math.max(0, this.#target.deliveredThrough() + rng.int(-2, 4));
    const value = this.#forged();
    const high: Ballot = { round: MAX_ROUND, nodeId: from };
    const own: Ballot = { round: this.#target.highestRound() + rng.int(1, 3), nodeId: from };
    // A member's ballot that no election reaches within a run: no leader ever used it.
    const unused: Ballot = { round: this.#target.highestRound() + 1_000_000, nodeId: member };
    const anyNode = (): string =>
      this.#subjects.node(this.#target.members[rng.int(0, this.#target.members.length - 1)]!);
    // A decide under a member's name at its own ballot is checked only in leader mode: in
    // pg_paxos's leaderless mode any member may decide, so only NATS authentication stops it.
    let kind = rng.int(0, 10);
    if (kind === 9 && !this.#target.leaderMode) kind = 0;
    let subject: string;
    let message: PeerMessage;
    switch (kind) {
      case 0:
        subject = this.#subjects.learn;
        message = { type: 'decide', group, from, instance: slot, ballot: own, value };
        break;
      case 1:
        subject = this.#subjects.acceptor;
        message = { type: 'prepareLog', group, from, ballot: high, fromSlot: 0 };
        break;
      case 2: {
        // Two votes for different values at one ballot: a learner counting them breaks.
        subject = this.#subjects.learn;
        const ballot: Ballot = { round: own.round, nodeId: 'rogue1' };
        message = {
          type: 'accepted',
          group,
          from,
          ballot,
          instance: slot,
          ok: true,
          promised: ballot,
          value,
        };
        break;
      }
      case 3:
        subject = this.#subjects.learn;
        message = { type: 'heartbeat', group, from, ballot: high, commitIndex: slot + 100 };
        break;
      case 4:
        subject = this.#subjects.acceptor;
        message = { type: 'accept', group, from, ballot: own, instance: slot, value };
        break;
      case 5:
        subject = anyNode();
        message = {
          type: 'catchupResponse',
          group,
          from,
          entries: [
            { slot, value },
            { slot: slot + 1, value: this.#forged() },
          ],
          commitIndex: slot + 1,
        };
        break;
      case 6:
        subject = anyNode();
        message = {
          type: 'promise',
          group,
          from,
          ballot: own,
          ok: true,
          promised: own,
          accepted: [{ instance: slot, ballot: own, value }],
          more: false,
          fromSlot: 0,
        };
        break;
      case 7:
        // Under a member's name, far beyond any round in use.
        subject = this.#subjects.acceptor;
        message = {
          type: 'prepareLog',
          group,
          from: member,
          ballot: { round: this.#target.highestRound() + 2 ** 40, nodeId: member },
          fromSlot: 0,
        };
        break;
      case 8: {
        // Under a member's name, at a ballot that is another node's.
        const other = this.#target.members.find((m) => m !== member) ?? 'zz';
        subject = this.#subjects.learn;
        message = {
          type: 'decide',
          group,
          from: member,
          instance: slot,
          ballot: { round: own.round, nodeId: other },
          value,
        };
        break;
      }
      case 9:
        // Under a member's name, at its own ballot no leader used: nobody's vote backs it.
        subject = this.#subjects.learn;
        message = { type: 'decide', group, from: member, instance: slot, ballot: unused, value };
        break;
      default:
        subject = this.#subjects.acceptor;
        message = { type: 'prepare', group, from, ballot: high, instance: slot };
        break;
    }
    this.#trace?.(`rogue ${message.from} sends ${message.type} on ${subject}`);
    this.#publish(subject, message);
  }

  /** A kv write nobody submitted: learning it anywhere is a validity violation. */
  #forged(): Value {
    return encodeWrite({
      client: 'rogue',
      seq: this.#seq++,
      op: 'put',
      key: 'k0',
      value: 'forged',
    });
  }
}
