import { acceptorMachine, type Effect } from '@synod/actors';
import type { CommitMessage } from '@synod/commit';
import type { StoreRecord } from '@synod/protocol';
import type { AcceptorStore } from '@synod/storage';
import { type Actor, createActor } from 'xstate';
import type { CausalHops } from './commit-hops.js';
import { type CommitEnvelope, commitSubjects } from './commit-wire.js';
import type { TxnMeta } from './kv-transactions.js';

/** Transactions whose answers an acceptor still knows where to send (resends restore one). */
const MAX_KNOWN_TRANSACTIONS = 10_000;

export interface CommitAcceptorOptions {
  readonly nodeId: string;
  /** `commit.acceptor.log`: promises and acceptances, fsynced before any answer. */
  readonly store: AcceptorStore;
  readonly hops: CausalHops;
  publish(subject: string, meta: TxnMeta, message: CommitMessage, kind: string): void;
  /** Whether `node` is now a member of `group`, as this node knows it (a leader after a change). */
  isMember(group: string, node: string): boolean;
  /** The store failed: the node cannot keep its promises, and stops. */
  fatal(error: unknown): void;
}

/**
 * A process's commit acceptor: @synod/actors' ordinary acceptor, one Paxos instance per RM of
 * each transaction (`<txid>/<rm>`), for every transaction a group of this process coordinates.
 * Its answers go to the proposer that asked (`commit.node.<id>`) and, with the vote, to the
 * coordinating group's coordinator (and in Faster Paxos Commit to every RM).
 */
export class CommitAcceptor {
  readonly #o: CommitAcceptorOptions;
  readonly #actor: Actor<typeof acceptorMachine>;
  /** The transactions it serves, by id, for where its answers go. */
  readonly #known = new Map<string, TxnMeta>();
  /** Persists in flight, with the hops of the request that asked for each. */
  readonly #persistHops = new Map<number, number>();
  #stopped = false;
  logged = 0;

  constructor(options: CommitAcceptorOptions) {
    this.#o = options;
    this.#actor = createActor(acceptorMachine, {
      input: {
        group: 'commit',
        nodeId: options.nodeId,
        recovered: options.store.recovered,
        copyToLearners: true,
      },
    });
    this.#actor.on('*', (effect: Effect) => this.#effect(effect));
    this.#actor.start();
  }

  get fsyncs(): number {
    return this.#o.store.stats.fsyncs;
  }

  /**
   * Phase 1a and 2a, believed only within the transaction's own rules: this node is one of its
   * acceptors; round 0 is only the instance's own RM's, and only for phase 2a; a higher round
   * only at the sender's own ballot, from a node that may coordinate it: one of its acceptors
   * (the coordinating group's members when it began) or a member now (a leader after a change).
   */
  receive(envelope: CommitEnvelope): void {
    const { meta, node, message } = envelope;
    if (this.#stopped || !meta.acceptors.includes(this.#o.nodeId)) return;
    if (message.type !== 'prepare' && message.type !== 'accept') return;
    const rm =
      message.instance === undefined ? '' : String(message.instance).slice(meta.txid.length + 1);
    const b = message.ballot;
    if (b.round === 0 ? message.type !== 'accept' || b.nodeId !== rm : b.nodeId !== node) return;
    if (b.round > 0 && !meta.acceptors.includes(node) && !this.#o.isMember(meta.coordinator, node))
      return;
    this.#known.delete(meta.txid);
    this.#known.set(meta.txid, meta);
    if (this.#known.size > MAX_KNOWN_TRANSACTIONS)
      this.#known.delete(this.#known.keys().next().value!);
    this.#actor.send({ type: 'message', message: { ...message, group: 'commit' }, replyTo: node });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#actor.stop();
    await this.#o.store.close();
  }

  #effect(effect: Effect): void {
    if (effect.type === 'persist') {
      const id = effect.id;
      this.#persistHops.set(id, this.#o.hops.current);
      this.#o.store.append(effect.records as StoreRecord[]).then(
        () => {
          this.logged += 1;
          const hops = this.#persistHops.get(id) ?? 0;
          this.#persistHops.delete(id);
          if (!this.#stopped)
            this.#o.hops.at(hops, () => this.#actor.send({ type: 'persisted', id }));
        },
        (error: unknown) => this.#o.fatal(error),
      );
      return;
    }
    if (effect.type !== 'send') return;
    const instance = (effect.message as { instance?: unknown }).instance;
    if (typeof instance !== 'string') return;
    const meta = this.#known.get(instance.slice(0, instance.lastIndexOf('/')));
    if (meta === undefined) return;
    const message = effect.message as CommitMessage;
    const subjects = commitSubjects(meta.coordinator);
    if (effect.to.kind === 'reply')
      this.#o.publish(subjects.node(effect.to.to), meta, message, 'reply');
    else if (effect.to.kind === 'learners') {
      this.#o.publish(subjects.coordinator, meta, message, 'coordinator');
      if (meta.protocol === 'faster-paxos-commit')
        for (const rm of meta.rms) this.#o.publish(commitSubjects(rm).rm, meta, message, 'rm');
    }
  }
}
