import { acceptorMachine, type Effect } from '@synod/actors';
import {
  type CommitEffect,
  type CommitMessage,
  type CommitProtocol,
  type CommitRecord,
  type CommitRules,
  coordinatorMachine,
  type Outcome,
  rmMachine,
  twoPhaseCoordinatorMachine,
  type Vote,
} from '@synod/commit';
import type { PeerMessage, StoreRecord } from '@synod/protocol';
import type { Rng, TimerHandle, VirtualScheduler } from '@synod/transport';
import { type AnyActorRef, createActor } from 'xstate';

export type Role = 'acceptor' | 'rm' | 'coordinator';

/** One simulated process of a commit: its durable records outlive its lives. */
export interface CommitProcess {
  readonly id: string;
  readonly role: Role;
  /** Acceptors keep StoreRecords, RMs and the two-phase coordinator CommitRecords. */
  readonly durable: (StoreRecord | CommitRecord)[];
  up: boolean;
  life: number;
  // An actor of one of four machines, each with its own events: the cluster sends each only
  // the events its machine takes (see #feed), so the common ref type is the honest one.
  actor: AnyActorRef | undefined;
  readonly timers: Map<string, TimerHandle>;
}

export interface CommitClusterOptions {
  readonly txid: string;
  readonly protocol: CommitProtocol;
  readonly rms: readonly string[];
  readonly votes: ReadonlyMap<string, Vote>;
  readonly acceptors: readonly string[];
  /** Paxos Commit: the first coordinator, then a backup that takes over when it hears nothing. */
  readonly coordinators: readonly string[];
  readonly scheduler: VirtualScheduler;
  readonly rng: Rng;
  readonly faults: { dropRate: number; maxDelayMs: number; fsyncMaxMs: number };
  readonly rules: CommitRules;
  readonly trace?: ((line: string) => void) | undefined;
  /** Every outcome any process decided, for the checks. */
  decided(process: string, outcome: Outcome): void;
}

/**
 * The processes of one transaction's commit, their disks and lives, on a simulated network
 * with loss and delay (NATS is at-most-once): acceptors run @synod/actors' acceptor, RMs and
 * coordinators @synod/commit's machines. Everything runs on the seed's virtual clock.
 */
export class CommitCluster {
  readonly processes = new Map<string, CommitProcess>();
  readonly #o: CommitClusterOptions;
  messages = 0;
  /** Messages sent, by `<from role>-><to role> <type>` (commit counting). */
  readonly messagesByKind = new Map<string, number>();
  /** Records made durable, by `<role> <record kind>`. */
  readonly writesByKind = new Map<string, number>();
  /**
   * The chain of message delays behind what a process does: a message is one delay after the
   * event that made its sender send it (a message received, or a record made durable that a
   * received message asked for), so an RM's decision is as many delays from the start as the
   * longest chain that led to it (the paper's count), not every message it happened to see.
   */
  #cause = 0;
  readonly depthAtDecision = new Map<string, number>();

  constructor(options: CommitClusterOptions) {
    this.#o = options;
    const add = (id: string, role: Role): void =>
      void this.processes.set(id, {
        id,
        role,
        durable: [],
        up: false,
        life: 0,
        actor: undefined,
        timers: new Map(),
      });
    for (const id of options.acceptors) add(id, 'acceptor');
    for (const id of options.rms) add(id, 'rm');
    for (const id of options.coordinators) add(id, 'coordinator');
  }

  get(id: string): CommitProcess {
    return this.processes.get(id)!;
  }

  start(id: string): void {
    const p = this.get(id);
    if (p.up) return;
    p.up = true;
    p.life += 1;
    this.#o.trace?.(`${id} starts (life ${p.life})`);
    const o = this.#o;
    let actor: AnyActorRef;
    if (p.role === 'acceptor')
      actor = createActor(acceptorMachine, {
        input: {
          group: o.txid,
          nodeId: id,
          recovered: p.durable as StoreRecord[],
          copyToLearners: true,
        },
      });
    else if (p.role === 'rm')
      actor = createActor(rmMachine, {
        input: {
          txid: o.txid,
          rm: id,
          rms: o.rms,
          vote: o.votes.get(id)!,
          protocol: o.protocol,
          acceptorCount: o.acceptors.length,
          recovered: p.durable as CommitRecord[],
          rules: o.rules,
        },
      });
    else if (o.protocol === '2pc')
      actor = createActor(twoPhaseCoordinatorMachine, {
        input: {
          txid: o.txid,
          nodeId: id,
          rms: o.rms,
          voteTimeoutMs: 300,
          recovered: p.durable as CommitRecord[],
        },
      });
    else {
      const first = id === o.coordinators[0];
      actor = createActor(coordinatorMachine, {
        input: {
          txid: o.txid,
          nodeId: id,
          rms: o.rms,
          acceptorCount: o.acceptors.length,
          // Only the first coordinator's first life asks the RMs to prepare.
          initial: first && p.life === 1,
          announces: o.protocol !== 'faster-paxos-commit',
          phaseTimeoutMs: first ? 100 : 150 + o.rng.next() * 100,
          // Keeps nothing on disk; a later life's rounds start above any earlier life's (the
          // runtime would keep a round floor on disk, as the leader does).
          minRound: 1 + (p.life - 1) * 1_000_000,
          rules: o.rules,
        },
      });
    }
    p.actor = actor;
    const life = p.life;
    actor.on('*', (effect: Effect | CommitEffect) => this.#execute(p, life, effect));
    this.#cause = 0;
    actor.start();
  }

  crash(id: string): void {
    const p = this.get(id);
    if (!p.up) return;
    this.#o.trace?.(`${id} CRASHES`);
    p.up = false;
    p.actor?.stop();
    p.actor = undefined;
    for (const timer of p.timers.values()) timer.cancel();
    p.timers.clear();
  }

  #execute(p: CommitProcess, life: number, effect: Effect | CommitEffect): void {
    if (!p.up || p.life !== life) return;
    const o = this.#o;
    switch (effect.type) {
      case 'send':
        for (const to of this.#resolve(effect.to)) this.#send(p.id, to, effect.message);
        break;
      case 'persist': {
        const records: (StoreRecord | CommitRecord)[] =
          'records' in effect ? [...effect.records] : [effect.record];
        const cause = this.#cause;
        o.scheduler.setTimer(0.05 + o.rng.next() * o.faults.fsyncMaxMs, () => {
          if (!p.up || p.life !== life) return; // lost in the crash
          this.#cause = cause;
          p.durable.push(...records);
          for (const r of records) {
            const key = `${p.role} ${'kind' in r ? r.kind : 'record'}`;
            this.writesByKind.set(key, (this.writesByKind.get(key) ?? 0) + 1);
          }
          p.actor?.send({ type: 'persisted', id: effect.id });
        });
        break;
      }
      case 'setTimer': {
        p.timers.get(effect.timer)?.cancel();
        p.timers.set(
          effect.timer,
          o.scheduler.setTimer(effect.delayMs, () => {
            p.timers.delete(effect.timer);
            this.#cause = 0;
            if (p.up && p.life === life) p.actor?.send({ type: 'timer', timer: effect.timer });
          }),
        );
        break;
      }
      case 'cancelTimer':
        p.timers.get(effect.timer)?.cancel();
        p.timers.delete(effect.timer);
        break;
      case 'decided':
        o.trace?.(`${p.id} DECIDES ${effect.outcome}`);
        this.depthAtDecision.set(p.id, this.#cause);
        o.decided(p.id, effect.outcome);
        break;
      default:
        break;
    }
  }

  /** Who an address names. An acceptor's learners are the coordinators (and, faster, the RMs). */
  #resolve(to: Extract<Effect | CommitEffect, { type: 'send' }>['to']): readonly string[] {
    const o = this.#o;
    switch (to.kind) {
      case 'acceptors':
        return o.acceptors;
      case 'learners':
        return o.protocol === 'faster-paxos-commit'
          ? [...o.coordinators, ...o.rms]
          : o.coordinators;
      case 'reply':
        return [to.to];
      case 'coordinators':
        return o.coordinators;
      case 'rms':
        return o.rms;
      case 'node':
        return [to.id];
    }
  }

  #send(from: string, to: string, message: CommitMessage | PeerMessage): void {
    const o = this.#o;
    this.messages++;
    const kind = `${this.get(from).role}->${this.get(to).role} ${message.type}`;
    this.messagesByKind.set(kind, (this.messagesByKind.get(kind) ?? 0) + 1);
    const depth = this.#cause + 1;
    if (o.rng.chance(o.faults.dropRate)) return;
    o.scheduler.setTimer(0.05 + o.rng.next() * o.faults.maxDelayMs, () => {
      const p = this.processes.get(to);
      if (p === undefined || !p.up || p.actor === undefined) return;
      this.#cause = depth;
      // An acceptor answers to the address the request came from: the sender.
      p.actor.send(
        p.role === 'acceptor'
          ? { type: 'message', message, replyTo: from }
          : { type: 'message', message },
      );
    });
  }
}
