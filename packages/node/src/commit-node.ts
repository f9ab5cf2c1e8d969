import { join } from 'node:path';
import {
  type CommitEffect,
  type CommitEvent,
  type CommitMessage,
  instanceOf,
  type Outcome,
  type Vote,
} from '@synod/commit';
import type { ClientResponse, Command, PlainData } from '@synod/protocol';
import { type AcceptorStore, openFileStore } from '@synod/storage';
import type { Subscription, TransportMessage } from '@synod/transport';
import type { AnyActorRef } from 'xstate';
import type { TransactionCoordinator } from './client-requests.js';
import { CommitAcceptor } from './commit-acceptor.js';
import { CausalHops } from './commit-hops.js';
import {
  LINGER_MS,
  paxosCoordinator,
  RECOVER_MS,
  ROUNDS_PER_LEADERSHIP,
  type Running,
  resourceManager,
  twoPhaseCoordinator,
} from './commit-machines.js';
import {
  type CommitCounts,
  type CommitGroup,
  type CommitNodeOptions,
  notLeading,
  outcomeAnswer,
} from './commit-options.js';
import {
  type CommitEnvelope,
  commitRepliesTo,
  commitSubjects,
  decodeCommit,
  encodeCommit,
} from './commit-wire.js';
import {
  partsByGroup,
  readTxnMeta,
  type TxnMeta,
  type TxnPart,
  txidOf,
} from './kv-transactions.js';

/**
 * Paxos Commit in a node process (@synod/commit's machines, run here as the simulator runs
 * them): the process's commit acceptor, a coordinator for each transaction a group it leads
 * coordinates, and an RM for each transaction a group it leads takes part in.
 *
 * - The RM of a group is its leader. Its vote is the group's `txn_prepare` log entry (so every
 *   leader of the group proposes the same vote at ballot 0), its outcome the `txn_outcome` entry.
 * - The commit acceptors of a transaction are those of its coordinating group's members when it
 *   began (`meta.acceptors`), one per process, in `commit.acceptor.log`: 2F+1 = the group size.
 * - A coordinator keeps nothing on disk; one taking over (a new leader, asked by an RM) runs
 *   phase 1 at rounds within its leadership round's own range, so no two of its lives share a
 *   ballot (commit-machines.ts, ROUNDS_PER_LEADERSHIP).
 */
export class CommitNode implements TransactionCoordinator {
  readonly #o: CommitNodeOptions;
  readonly #acceptor: CommitAcceptor;
  readonly #groups = new Map<string, CommitGroup>();
  readonly #running = new Map<string, Running>();
  /** Transactions whose `txn_prepare` is on its way into the log, by RM key. */
  readonly #preparing = new Set<string>();
  readonly #leaderSubs = new Map<string, Subscription[]>();
  readonly #recovery = new Map<string, NodeJS.Timeout>();
  readonly #subs: Subscription[] = [];
  /** Messages and log writes by kind (Maps: a plain object with these keys profiled slow). */
  readonly #counts = {
    sent: new Map<string, number>(),
    received: new Map<string, number>(),
    logged: new Map<string, number>(),
  };
  readonly #lastDecision: { coordinator?: number; rm?: number } = {};
  readonly #hops = new CausalHops();
  #stopped = false;

  static async start(options: CommitNodeOptions): Promise<CommitNode> {
    const store = await openFileStore(join(options.dataDir, 'commit.acceptor.log'));
    return new CommitNode(options, store);
  }

  private constructor(options: CommitNodeOptions, store: AcceptorStore) {
    this.#o = options;
    this.#acceptor = new CommitAcceptor({
      nodeId: options.nodeId,
      store,
      hops: this.#hops,
      publish: (subject, meta, message, kind) => this.#publish(subject, meta, message, kind),
      fatal: (error) => options.fatal?.(error),
      isMember: (group, node) =>
        options.groups
          .find((g) => g.group === group)
          ?.members()
          .includes(node) === true,
    });
    const t = options.transport;
    this.#subs.push(t.subscribe(commitRepliesTo(options.nodeId), (m) => this.#receive(m, 'reply')));
    for (const group of options.groups) {
      this.#groups.set(group.group, group);
      this.#subs.push(
        t.subscribe(commitSubjects(group.group).acceptor, (m) => this.#receive(m, 'acceptor')),
      );
      group.onLeadership((leader) => this.#leadership(group, leader));
      this.#leadership(group, group.leader);
    }
  }

  beginCommand(group: string, command: Command): Command {
    const members = this.#groups.get(group)?.members() ?? [];
    return {
      ...command,
      acceptors: [...members].sort(),
      protocol: this.#o.protocol ?? 'paxos-commit',
    };
  }

  begun(group: string, result: PlainData, respond: (response: ClientResponse) => void): void {
    const r = result as {
      txn: number;
      groups: string[];
      acceptors: string[];
      protocol: TxnMeta['protocol'];
      ops: PlainData;
    };
    const meta: TxnMeta = {
      txid: txidOf(group, r.txn),
      coordinator: group,
      number: r.txn,
      rms: r.groups,
      acceptors: r.acceptors,
      protocol: r.protocol,
    };
    this.coordinate(meta, partsByGroup(r.ops), respond);
  }

  get counts(): CommitCounts {
    return {
      sent: Object.fromEntries(this.#counts.sent),
      received: Object.fromEntries(this.#counts.received),
      logged: { ...Object.fromEntries(this.#counts.logged), acceptor: this.#acceptor.logged },
      acceptorFsyncs: this.#acceptor.fsyncs,
      lastDecision: { ...this.#lastDecision },
    };
  }

  /**
   * A client's `txn` was numbered in `group`'s log: coordinate it, and answer the client with
   * its outcome. A retried request gets the same number, and joins a running coordinator.
   */
  coordinate(
    meta: TxnMeta,
    writes: ReadonlyMap<string, readonly TxnPart[]>,
    respond: (response: ClientResponse) => void,
  ): void {
    const running = this.#running.get(meta.txid);
    if (running !== undefined) {
      running.waiting.push(respond);
      return;
    }
    const c = this.#startCoordinator(meta, true, writes);
    if (c === undefined) respond(notLeading(meta.coordinator));
    else c.waiting.push(respond);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const s of this.#subs) s.unsubscribe();
    for (const subs of this.#leaderSubs.values()) for (const s of subs) s.unsubscribe();
    for (const timer of this.#recovery.values()) clearInterval(timer);
    for (const key of [...this.#running.keys()]) this.#end(key, undefined);
    await this.#acceptor.stop();
  }

  #leadership(group: CommitGroup, leader: string | undefined): void {
    const name = group.group;
    const leads = leader === this.#o.nodeId;
    const t = this.#o.transport;
    if (leads && !this.#leaderSubs.has(name)) {
      const s = commitSubjects(name);
      this.#leaderSubs.set(name, [
        t.subscribe(s.coordinator, (m) => this.#receive(m, 'coordinator')),
        t.subscribe(s.rm, (m) => this.#receive(m, 'rm')),
      ]);
      this.#recovery.set(
        name,
        setInterval(() => this.#recover(group), RECOVER_MS),
      );
      this.#recover(group);
    } else if (!leads && this.#leaderSubs.has(name)) {
      for (const s of this.#leaderSubs.get(name)!) s.unsubscribe();
      this.#leaderSubs.delete(name);
      clearInterval(this.#recovery.get(name));
      this.#recovery.delete(name);
      // Its machines belong to its leader: the next one starts its own.
      for (const [key, r] of [...this.#running])
        if ((r.role === 'rm' ? r.rm : r.meta.coordinator) === name)
          this.#end(key, notLeading(name));
    }
  }

  /** RMs for the transactions this group voted on and has not seen decided. */
  #recover(group: CommitGroup): void {
    if (this.#stopped || group.leader !== this.#o.nodeId) return;
    let open: readonly { meta: PlainData; vote: Vote }[];
    try {
      open = group.readState({ op: 'txn_open' }) as never;
    } catch {
      return; // a group without transactions (the log machine)
    }
    for (const { meta: stored, vote } of open) {
      // A SQL group keeps its votes in its database: checked as any input before it is used.
      let meta: TxnMeta;
      try {
        meta = readTxnMeta(stored);
      } catch (error) {
        this.#o.logger?.warn({ err: error, group: group.group }, 'skipped a malformed open vote');
        continue;
      }
      const key = instanceOf(meta.txid, group.group);
      if (!this.#running.has(key) && !this.#preparing.has(key))
        this.#startRm(meta, group.group, vote, true);
    }
  }

  #receive(m: TransportMessage, via: 'acceptor' | 'coordinator' | 'rm' | 'reply'): void {
    if (this.#stopped) return;
    let envelope: CommitEnvelope;
    try {
      envelope = decodeCommit(m.data);
    } catch (error) {
      this.#o.logger?.warn({ err: error, subject: m.subject }, 'dropped a bad commit message');
      return;
    }
    const { message } = envelope;
    this.#count('received', `${via} ${message.type}`);
    this.#hops.at(envelope.hops ?? 0, () => this.#dispatch(envelope, via, m.subject));
  }

  #dispatch(
    envelope: CommitEnvelope,
    via: 'acceptor' | 'coordinator' | 'rm' | 'reply',
    subject: string,
  ): void {
    const { meta, message } = envelope;
    if (via === 'acceptor') {
      this.#acceptor.receive(envelope);
      return;
    }
    if (via === 'rm') {
      // synod.<group>.commit.rm: the group is the subject's second token.
      this.#toRm(envelope, subject.split('.')[1]!);
      return;
    }
    // Answers and copies go to every machine of the transaction here; each takes its own.
    const coordinator = this.#running.get(meta.txid);
    if (coordinator !== undefined) coordinator.actor.send({ type: 'message', message });
    else if (via === 'coordinator' && message.type === 'outcomeQuery')
      this.#startCoordinator(meta, false)?.actor.send({ type: 'message', message });
    if (via === 'reply' && (message.type === 'accepted' || message.type === 'promise'))
      for (const rm of meta.rms)
        this.#running.get(instanceOf(meta.txid, rm))?.actor.send({ type: 'message', message });
  }

  /** To this group's RM: prepare and vote, the outcome, Faster Paxos Commit's phase 2b. */
  #toRm(envelope: CommitEnvelope, group: string): void {
    const { meta, message, writes } = envelope;
    if (!meta.rms.includes(group)) return;
    const key = instanceOf(meta.txid, group);
    const running = this.#running.get(key);
    if (running !== undefined) {
      running.actor.send({ type: 'message', message });
      return;
    }
    if (message.type !== 'voteRequest' || writes === undefined || this.#preparing.has(key)) return;
    const g = this.#groups.get(group);
    if (g === undefined || g.leader !== this.#o.nodeId) return;
    this.#preparing.add(key);
    const prepare = { op: 'txn_prepare', meta: { ...meta }, writes: writes.map((w) => ({ ...w })) };
    const hops = this.#hops.current;
    g.logInternal(prepare as unknown as Command).then(
      (result) =>
        this.#hops.at(hops, () => {
          this.#preparing.delete(key);
          this.#count('logged', 'rm prepare');
          // A failpoint: SIGKILL the RM of this group once its vote is in its log, before it
          // proposes it; its group's next leader must find the vote and finish the transaction.
          if (process.env.SYNOD_FAILPOINT === `commit-rm-prepared:${group}`)
            process.kill(process.pid, 'SIGKILL');
          const vote = (result as { vote?: unknown } | null)?.vote;
          if (
            (vote !== 'prepared' && vote !== 'aborted') ||
            (result as { decided?: unknown }).decided
          )
            return;
          this.#startRm(meta, group, vote, false)?.actor.send({ type: 'message', message });
        }),
      () => this.#preparing.delete(key),
    );
  }

  /** A coordinator: the first of a transaction (initial, it asks the RMs) or one taking over. */
  #startCoordinator(
    meta: TxnMeta,
    initial: boolean,
    writes?: ReadonlyMap<string, readonly TxnPart[]>,
  ): Running | undefined {
    if (!this.#leads(meta.coordinator)) return undefined;
    const actor =
      meta.protocol === '2pc'
        ? this.#twoPhaseCoordinator(meta)
        : this.#paxosCoordinator(meta, initial);
    if (actor === undefined) return undefined;
    return this.#run(meta.txid, {
      role: 'coordinator',
      meta,
      actor,
      ...(writes ? { writes } : {}),
    });
  }

  /** Undefined when this node's leadership round is not known: it then coordinates nothing. */
  #paxosCoordinator(meta: TxnMeta, initial: boolean): AnyActorRef | undefined {
    const leadership = this.#groups.get(meta.coordinator)?.leaderRound();
    if (leadership === undefined) return undefined;
    const base = leadership * ROUNDS_PER_LEADERSHIP;
    const rounds = { min: base + 1, max: base + ROUNDS_PER_LEADERSHIP - 1 };
    return paxosCoordinator(meta, this.#o.nodeId, initial, rounds, this.#o.rules);
  }

  /**
   * Two-phase commit's coordinator (the baseline): its outcome record is a `txn_decided` entry
   * in the coordinating group's log, so one taking over finds what an earlier one logged.
   */
  #twoPhaseCoordinator(meta: TxnMeta, logged?: Outcome): AnyActorRef {
    let outcome = logged;
    if (outcome === undefined) {
      const found = this.#groups
        .get(meta.coordinator)
        ?.readState({ op: 'txn_decided', txid: meta.txid }) as { outcome?: Outcome } | null;
      outcome = found?.outcome;
    }
    return twoPhaseCoordinator(meta, this.#o.nodeId, outcome);
  }

  /**
   * The RM of `rm` (this node leads it) with its group's vote: `logged` when it is found in the
   * group's state (recovery), else the machine asks for it to be logged, which it already is.
   */
  #startRm(meta: TxnMeta, rm: string, vote: Vote, logged: boolean): Running | undefined {
    if (!this.#leads(rm)) return undefined;
    const actor = resourceManager(meta, rm, vote, logged, this.#o.rules);
    return this.#run(instanceOf(meta.txid, rm), { role: 'rm', meta, rm, actor });
  }

  #leads(group: string): boolean {
    return !this.#stopped && this.#groups.get(group)?.leader === this.#o.nodeId;
  }

  /** Starts `machine`'s actor under `key`, with the clients already waiting for its outcome. */
  #run(
    key: string,
    machine: Omit<Running, 'timers' | 'waiting'>,
    waiting: Running['waiting'] = [],
  ): Running {
    const running: Running = { ...machine, timers: new Map(), waiting: [...waiting] };
    this.#running.set(key, running);
    running.actor.on('*', (effect: CommitEffect) => this.#effect(key, running, effect));
    running.actor.start();
    return running;
  }

  #effect(key: string, r: Running, effect: CommitEffect): void {
    if (this.#running.get(key) !== r) return;
    const { meta } = r;
    switch (effect.type) {
      case 'send': {
        const to = effect.to;
        if (to.kind === 'acceptors')
          this.#publish(
            commitSubjects(meta.coordinator).acceptor,
            meta,
            effect.message,
            'acceptor',
          );
        else if (to.kind === 'coordinators')
          this.#publish(
            commitSubjects(meta.coordinator).coordinator,
            meta,
            effect.message,
            'coordinator',
          );
        else {
          const rms = to.kind === 'rms' ? meta.rms : [to.id];
          for (const rm of rms)
            this.#publish(commitSubjects(rm).rm, meta, effect.message, 'rm', r.writes?.get(rm));
        }
        return;
      }
      case 'persist': {
        const record = effect.record;
        const id = effect.id;
        // What follows the write follows from what asked for it.
        const hops = this.#hops.current;
        const persisted = (): void =>
          this.#hops.at(hops, () => r.actor.send({ type: 'persisted', id } satisfies CommitEvent));
        // The vote is the txn_prepare entry that gave it, already in the log.
        if (record.kind === 'vote') return void queueMicrotask(persisted);
        if (r.role === 'coordinator')
          return void this.#logTwoPhaseOutcome(key, r, record.outcome, persisted);
        const group = this.#groups.get(r.rm!)!;
        group.logInternal({ op: 'txn_outcome', txid: meta.txid, outcome: record.outcome }).then(
          () => {
            this.#count('logged', 'rm outcome');
            if (this.#running.get(key) === r) persisted();
          },
          () => this.#end(key, undefined), // no longer its leader: the next one finishes it
        );
        return;
      }
      case 'setTimer': {
        clearTimeout(r.timers.get(effect.timer));
        r.timers.set(
          effect.timer,
          setTimeout(() => {
            r.timers.delete(effect.timer);
            // A resend starts a chain of its own.
            if (this.#running.get(key) === r)
              this.#hops.at(0, () => r.actor.send({ type: 'timer', timer: effect.timer }));
          }, effect.delayMs),
        );
        return;
      }
      case 'cancelTimer':
        clearTimeout(r.timers.get(effect.timer));
        r.timers.delete(effect.timer);
        return;
      case 'decided':
        this.#lastDecision[r.role] = this.#hops.current;
        if (r.role === 'rm') return void this.#end(key, undefined);
        // A failpoint (as etcd's gofail): the process tests SIGKILL a transaction's first
        // coordinator the moment it knows the outcome, before any RM or client is told: between
        // prepare and outcome. Coordinators taking over (no writes) finish it.
        if (process.env.SYNOD_FAILPOINT === 'commit-coordinator-decided' && r.writes !== undefined)
          process.kill(process.pid, 'SIGKILL');
        for (const respond of r.waiting.splice(0)) respond(outcomeAnswer(meta, effect.outcome));
        r.timers.set(
          'linger',
          setTimeout(() => this.#end(key, undefined), LINGER_MS),
        );
        return;
    }
  }

  /**
   * Two-phase commit's coordinator logs its outcome in its group's log. The first outcome
   * logged for the transaction wins (an old coordinator's may have landed first): the machine
   * goes on with that one, started again if it differs.
   */
  #logTwoPhaseOutcome(key: string, r: Running, outcome: Outcome, persisted: () => void): void {
    const group = this.#groups.get(r.meta.coordinator)!;
    const hops = this.#hops.current;
    group.logInternal({ op: 'txn_decided', txid: r.meta.txid, outcome }).then(
      (result) => {
        this.#count('logged', 'coordinator outcome');
        if (this.#running.get(key) !== r) return;
        const logged = (result as { outcome?: Outcome } | null)?.outcome;
        if (logged === outcome) return persisted();
        this.#hops.at(hops, () => {
          const waiting = r.waiting.splice(0);
          this.#end(key, undefined);
          this.#run(
            key,
            { role: 'coordinator', meta: r.meta, actor: this.#twoPhaseCoordinator(r.meta, logged) },
            waiting,
          );
        });
      },
      () => this.#end(key, undefined),
    );
  }

  #end(key: string, answer: ClientResponse | undefined): void {
    const r = this.#running.get(key);
    if (r === undefined) return;
    this.#running.delete(key);
    for (const timer of r.timers.values()) clearTimeout(timer);
    r.actor.stop();
    if (answer !== undefined) for (const respond of r.waiting.splice(0)) respond(answer);
  }

  #publish(
    subject: string,
    meta: TxnMeta,
    message: CommitMessage,
    kind: string,
    writes?: readonly TxnPart[],
  ): void {
    const t = this.#o.transport;
    if (this.#stopped || t.closed) return;
    this.#count('sent', `${kind} ${message.type}`);
    t.publish(
      subject,
      encodeCommit({
        meta,
        node: this.#o.nodeId,
        message,
        hops: this.#hops.current + 1,
        ...(writes === undefined ? {} : { writes }),
      }),
    );
  }

  #count(which: 'sent' | 'received' | 'logged', kind: string): void {
    const counts = this.#counts[which];
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
}
