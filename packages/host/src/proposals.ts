import {
  type Effect,
  type ProposerTiming,
  type ProtocolRules,
  proposerMachine,
} from '@synod/actors';
import type { Instance, PeerMessage, Value } from '@synod/protocol';
import type { Scheduler } from '@synod/transport';
import { type ActorRefFrom, createActor } from 'xstate';
import { type Feedback, type HostedActor, tell } from './tell.js';

/** What single-decree proposals need of their host. */
export interface ProposalsHost {
  readonly group: string;
  readonly nodeId: string;
  readonly acceptorCount: number;
  readonly scheduler: Scheduler;
  readonly timing: ProposerTiming | undefined;
  readonly rules: ProtocolRules;
  /** Most registers whose chosen value is kept (HostLimits.maxKnownRegisters). */
  readonly maxKnownRegisters: number;
  /** The value this node delivered in a log slot, if it did and still holds it. */
  delivered(slot: number): Value | undefined;
  /** Leader mode: the members that decide `instance`; undefined without a leader. */
  membersFor(instance: Instance): readonly string[] | undefined;
  /** Above every round this node ever used. */
  minRound(): number;
  /** A seed for the next proposer's backoff. */
  nextSeed(): number;
  stopped(): boolean;
  proposed(instance: Instance, value: Value): void;
  start(name: string, actor: HostedActor<Effect>, feedback: Feedback): void;
}

interface Proposal {
  readonly actor: ActorRefFrom<typeof proposerMachine>;
  readonly waiters: ((value: Value) => void)[];
}

/**
 * Seed 001's single-decree Paxos on this node: paxos(key, value) registers, and pg_paxos's
 * no-op proposals for log slots a read cannot wait for. One proposer per instance, shared by
 * everyone who asks; an instance this node knows chosen is answered without one.
 */
export class Proposals {
  readonly #host: ProposalsHost;
  readonly #running = new Map<Instance, Proposal>();
  /** Register keys whose value this node learned (paxos(k, v) answers at once afterwards). */
  readonly #registers = new Map<string, Value>();

  constructor(host: ProposalsHost) {
    this.#host = host;
  }

  /** Registers whose chosen value this node keeps (at most HostLimits.maxKnownRegisters). */
  get knownRegisters(): number {
    return this.#registers.size;
  }

  propose(instance: Instance, value: Value, done: (value: Value) => void): void {
    const host = this.#host;
    const known =
      typeof instance === 'number' ? host.delivered(instance) : this.#registers.get(instance);
    if (known !== undefined) {
      host.scheduler.setTimer(0, () => !host.stopped() && done(known));
      return;
    }
    const running = this.#running.get(instance);
    if (running !== undefined) {
      running.waiters.push(done);
      return;
    }
    host.proposed(instance, value);
    const members = host.membersFor(instance);
    const actor = createActor(proposerMachine, {
      input: {
        group: host.group,
        nodeId: host.nodeId,
        instance,
        value,
        acceptorCount: host.acceptorCount,
        ...(members === undefined ? {} : { members }),
        minRound: host.minRound(),
        seed: host.nextSeed(),
        ...(host.timing === undefined ? {} : { timing: host.timing }),
        rules: host.rules,
      },
    });
    const proposal: Proposal = { actor, waiters: [done] };
    this.#running.set(instance, proposal);
    actor.subscribe({
      complete: () => {
        if (this.#running.get(instance) === proposal) this.#running.delete(instance);
        // A proposer stopped by a snapshot install (or the host) completes without an outcome.
        const output = actor.getSnapshot().output;
        if (host.stopped() || output === undefined) return;
        for (const waiter of proposal.waiters) waiter(output.value);
      },
    });
    host.start(`proposer:${String(instance)}`, actor, (event) => {
      if (event.type !== 'proposalDone') tell(actor, event);
    });
  }

  /** An acceptor's answer to a proposer of this node. */
  answered(instance: Instance, message: PeerMessage): void {
    const proposal = this.#running.get(instance);
    if (proposal !== undefined) tell(proposal.actor, { type: 'message', message });
  }

  /** The learner learned `instance`'s value: a proposer for it can stop asking. */
  learned(instance: Instance, value: Value): void {
    if (typeof instance === 'string') this.#remember(instance, value);
    const proposal = this.#running.get(instance);
    if (proposal !== undefined) tell(proposal.actor, { type: 'known', value });
  }

  /** A round this node reserved: no proposer of it may use one at or below. */
  roundReserved(round: number): void {
    for (const { actor } of this.#running.values()) tell(actor, { type: 'roundFloor', round });
  }

  /** Slots through `slot` are chosen (a snapshot covers them): their proposals are moot. */
  settledThrough(slot: number): void {
    for (const [instance, { actor }] of this.#running) {
      if (typeof instance === 'number' && instance <= slot) {
        this.#running.delete(instance);
        actor.stop();
      }
    }
  }

  stop(): void {
    for (const { actor } of this.#running.values()) actor.stop();
  }

  /** Keeps a register's chosen value, forgetting the oldest beyond the host's bound. */
  #remember(key: string, value: Value): void {
    this.#registers.delete(key);
    this.#registers.set(key, value);
    if (this.#registers.size <= this.#host.maxKnownRegisters) return;
    const oldest = this.#registers.keys().next().value;
    if (oldest !== undefined) this.#registers.delete(oldest);
  }
}
