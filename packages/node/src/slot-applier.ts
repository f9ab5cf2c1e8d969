import type { GroupHost, Snapshot, SnapshotHooks } from '@synod/host';
import { type ClientWrite, type Command, isMembershipValue, type PlainData } from '@synod/protocol';
import { ApplyQueue } from './apply-queue.js';
import { AsyncCompaction } from './async-compaction.js';
import type { WriteResult } from './async-machine.js';
import { decodeBatch } from './batch.js';
import type { Batcher } from './batcher.js';
import { failure } from './client-answers.js';
import { ConsistencyCheck } from './consistency-check.js';
import { DatabaseRepair } from './database-repair.js';
import { KV } from './kv-machine.js';
import type { NodeStatus } from './node-status.js';
import type { ResolvedRuntimeOptions } from './runtime-options.js';
import { SnapshotKeeper } from './snapshot-keeper.js';
import { CommandError, ReplicatedState, type StateMachineKind } from './state-machine.js';

/** What the applier needs of the node around it. */
export interface SlotApplierOptions {
  readonly options: ResolvedRuntimeOptions;
  /** Where the snapshot file lives. */
  readonly snapshotPath: string;
  /** The snapshot read at start; with an asynchronous machine, only where its log starts again. */
  readonly snapshot: Snapshot | undefined;
  /** The slot an asynchronous machine had applied through at start. */
  readonly asyncApplied: number;
  /** Where the answers to applied writes go. */
  readonly batcher: Pick<Batcher, 'answer' | 'applied'>;
  /** The host is built after the applier, since it delivers to it: read only once running. */
  host(): GroupHost;
  /**
   * A write of this node's own (the leader's periodic verify, a table's staged rows), taken
   * as a client's: resolves once this node applied it.
   */
  logOwnWrite(command: Command, clientId: string, seq: number): Promise<void>;
  /** Something the node cannot go on after. */
  fatal(error: unknown, what: string): void;
}

/**
 * The node's state machine and what keeps it: the in-memory state (kv unless told
 * otherwise) with its snapshots, or an asynchronous machine (a database) with its apply
 * queue, compaction, repair from peers and consistency checks. Each delivered slot is applied
 * here, and its writes answered through the batcher.
 */
export class SlotApplier {
  readonly #a: SlotApplierOptions;
  readonly #kind: StateMachineKind;
  #state: ReplicatedState;
  readonly #snapshots: SnapshotKeeper | undefined;
  /** With an asynchronous machine: slots on their way to it. */
  readonly #queue: ApplyQueue | undefined;
  readonly #asyncCompaction: AsyncCompaction | undefined;
  readonly #repair: DatabaseRepair | undefined;
  #consistency: ConsistencyCheck | undefined;

  constructor(a: SlotApplierOptions) {
    this.#a = a;
    const { options, snapshot, snapshotPath } = a;
    this.#kind = options.machine ?? KV;
    this.#state =
      snapshot === undefined || options.asyncMachine !== undefined
        ? new ReplicatedState(this.#kind)
        : ReplicatedState.restore(this.#kind, snapshot.bytes);
    const machine = options.asyncMachine;
    this.#queue =
      machine === undefined
        ? undefined
        : new ApplyQueue(
            machine,
            a.asyncApplied,
            (slot, writes, results) => this.#appliedAsync(slot, writes, results),
            options.logger,
          );
    this.#asyncCompaction =
      this.#queue === undefined || machine?.snapshot === undefined || machine.install === undefined
        ? undefined
        : new AsyncCompaction({
            ...options,
            path: snapshotPath,
            machine,
            queue: this.#queue,
            host: () => a.host(),
            initial: snapshot,
            failed: (error) => a.fatal(error, 'writing the restart point failed'),
          });
    if (this.#asyncCompaction !== undefined && this.#queue !== undefined) {
      const compaction = this.#asyncCompaction;
      this.#queue.onApplied = (through) => compaction.applied(through);
    }
    this.#repair =
      this.#queue === undefined || machine?.snapshot === undefined || machine.install === undefined
        ? undefined
        : new DatabaseRepair({
            transport: options.transport,
            group: options.group,
            nodeId: options.nodeId,
            machine,
            peers: () => a.host().membership.latest,
            logger: options.logger,
          });
    if (this.#repair !== undefined && this.#queue !== undefined) {
      const repair = this.#repair;
      this.#queue.fetchPeerState = (atLeast, from) => repair.fetch(atLeast, from);
    }
    this.#snapshots =
      machine !== undefined
        ? undefined
        : new SnapshotKeeper({
            ...options,
            path: snapshotPath,
            initial: snapshot,
            logger: options.logger,
            capture: () => this.#state.snapshot(),
            membership: (slot) => a.host().membershipThrough(slot).toRecord(),
            compact: (through) => a.host().compact(through),
            failed: (error) => a.fatal(error, 'writing a snapshot failed'),
          });
  }

  /** How the host serves this machine's snapshots to peers behind it and installs theirs. */
  snapshotHooks(): SnapshotHooks | undefined {
    const initial = this.#a.snapshot;
    if (this.#asyncCompaction !== undefined)
      return {
        initial,
        latest: () => this.#asyncCompaction?.latest(),
        install: (installed: Snapshot) => this.#asyncCompaction?.install(installed),
      };
    if (this.#snapshots === undefined) return undefined;
    return {
      initial,
      latest: () => this.#snapshots?.latest,
      install: (installed) => {
        this.#state = ReplicatedState.restore(this.#kind, installed.bytes);
        this.#snapshots?.install(installed);
      },
    };
  }

  /**
   * Starts answering peers (repair, digests) and the periodic verify writes: only once the
   * node's client API is up, since a verify write goes through it.
   */
  serve(): void {
    const { options } = this.#a;
    const machine = options.asyncMachine;
    this.#repair?.serve();
    const queue = this.#queue;
    this.#consistency =
      queue === undefined || machine === undefined || this.#repair === undefined
        ? undefined
        : new ConsistencyCheck({
            transport: options.transport,
            group: options.group,
            nodeId: options.nodeId,
            members: () => this.#a.host().membership.latest,
            reinstall: (why, from) => queue.reinstall(why, from),
            appliedThrough: () => this.appliedThrough,
            isLeader: () => this.#a.host().leader === options.nodeId,
            // Wall-clock time: the seq must grow across restarts of this node.
            submitVerify: () =>
              this.#a.logOwnWrite({ op: 'verify' }, `verify-${options.nodeId}`, Date.now()),
            everyMs: options.verifyEveryMs,
            logger: options.logger,
          });
    if (machine !== undefined)
      machine.logWrite = (command, clientId, seq) => this.#a.logOwnWrite(command, clientId, seq);
    if (this.#consistency !== undefined && machine !== undefined) {
      const check = this.#consistency;
      machine.verified = (slot, digest) => check.verified(slot, digest);
      check.start();
    }
  }

  /** With an asynchronous machine: slots on their way to it. */
  get queue(): ApplyQueue | undefined {
    return this.#queue;
  }

  get appliedThrough(): number {
    return this.#queue?.appliedThrough ?? this.#a.host().deliveredThrough;
  }

  /**
   * A read of the in-memory state machine (kv, log), or of an asynchronous machine's
   * transactions across groups (its readTransactions).
   */
  read(command: Command): PlainData {
    const transactions = this.#a.options.asyncMachine?.readTransactions?.(command);
    if (transactions !== undefined) return transactions;
    return this.#state.read(command);
  }

  /** This machine's part of the node's status. */
  status(): Pick<
    NodeStatus,
    | 'machine'
    | 'stateDigest'
    | 'snapshotThrough'
    | 'snapshotsInstalled'
    | 'applyFailing'
    | 'consistency'
  > {
    const asyncMachine = this.#a.options.asyncMachine;
    const failing = this.#queue?.failing;
    return {
      machine: asyncMachine?.name ?? this.#state.kind.name,
      // An asynchronous machine's digest is asked for by the status handler.
      stateDigest: asyncMachine === undefined ? this.#state.digest() : '',
      snapshotThrough: this.#snapshots?.latest?.throughSlot ?? -1,
      snapshotsInstalled: this.#snapshots?.installed ?? this.#asyncCompaction?.installed ?? 0,
      applyFailing:
        failing === undefined
          ? null
          : { since: new Date(failing.since).toISOString(), message: failing.message },
      consistency: this.#consistency?.latest ?? null,
    };
  }

  /** The host delivered `slot`: apply its writes, or queue them for the asynchronous machine. */
  apply(slot: number, value: Uint8Array): void {
    // A no-op (empty) or a membership change (the host's business) has nothing to apply, but
    // the slot still counts.
    const writes = value.length === 0 || isMembershipValue(value) ? [] : decodeBatch(value);
    if (this.#queue !== undefined) {
      this.#queue.push(slot, writes);
      return;
    }
    for (const write of writes) {
      const result = this.#state.applyWrite(write);
      this.#a.batcher.answer(
        write,
        result instanceof CommandError
          ? failure('BAD_REQUEST', result.message)
          : { ok: true, slot, result },
      );
    }
    this.#a.batcher.applied(slot);
    // After the slot is applied: a snapshot now is the state through `slot`.
    this.#snapshots?.applied(slot, value.length);
  }

  async stop(): Promise<void> {
    this.#queue?.stop();
    this.#repair?.stop();
    this.#consistency?.stop();
    await this.#snapshots?.stop();
    await this.#asyncCompaction?.stop();
  }

  /** An asynchronous machine applied `slot`: answer its writes and the reads waiting for it. */
  #appliedAsync(slot: number, writes: readonly ClientWrite[], results: WriteResult[]): void {
    writes.forEach((write, i) => {
      const result = results[i];
      if (result === undefined) return;
      this.#a.batcher.answer(
        write,
        result.ok
          ? { ok: true, slot, result: result.result }
          : failure(
              'BAD_REQUEST',
              result.message,
              undefined,
              result.sqlState === undefined ? {} : { sqlState: result.sqlState },
            ),
      );
    });
    this.#a.batcher.applied(slot);
  }
}
