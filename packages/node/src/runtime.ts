import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeaderTiming } from '@synod/actors';
import { type Disk, GroupHost, type Snapshot, type SnapshotHooks } from '@synod/host';
import {
  assertGroupName,
  assertNodeId,
  type Command,
  createClientCodec,
  type PlainData,
} from '@synod/protocol';
import { type AcceptorStore, openFileStore } from '@synod/storage';
import { realScheduler } from '@synod/transport';
import { Batcher } from './batcher.js';
import { ClientRequests, type TransactionCoordinator } from './client-requests.js';
import { internalClientId } from './commit-options.js';
import { DataDir } from './data-dir.js';
import { DropLog } from './drop-log.js';
import { askToJoin } from './join-request.js';
import { MemberChanges } from './member-changes.js';
import { type NodeStatus, serveStatus } from './node-status.js';
import {
  type NodeRuntimeOptions,
  type ResolvedRuntimeOptions,
  resolveRuntimeOptions,
} from './runtime-options.js';
import { SlotApplier } from './slot-applier.js';
import { readSnapshot } from './snapshot-io.js';

export type { NodeRuntimeOptions, RuntimeMetrics } from './runtime-options.js';

/**
 * Real processes pause (GC, a busy core, a slow fsync): elections start only after 400-800 ms
 * without a heartbeat, eight or more beats, so a pause does not depose a healthy leader.
 */
const RUNTIME_LEADER_TIMING: LeaderTiming = {
  heartbeatMs: 50,
  electionMinMs: 400,
  electionMaxMs: 800,
  phaseTimeoutMs: 300,
};

/**
 * One node of one group: the group's machines (leader mode) over a Transport, the acceptor's
 * records in a file store with fsync, a state machine (kv unless told otherwise) with client
 * sessions, and the client API on `synod.<group>.write` and `synod.<group>.read` (msgpack
 * or JSON; see ClientRequests). Any node takes a read; the public write subject is served by
 * the leader while one is known (by every node otherwise), and a follower forwards the writes
 * it gets on its own subject, and linearizable reads, to the leader, which packs what arrives together into one slot and
 * answers each once its slot is applied (see Batcher). The state machine is snapshotted and
 * the log compacted as it grows (see SlotApplier).
 */
export class NodeRuntime {
  readonly group: string;
  readonly nodeId: string;
  readonly #o: ResolvedRuntimeOptions;
  readonly #store: AcceptorStore;
  readonly #host: GroupHost;
  readonly #applier: SlotApplier;
  readonly #batcher: Batcher;
  readonly #memberChanges: MemberChanges;
  readonly #requests: ClientRequests;
  readonly #codec = createClientCodec();
  /** Answers this node's acceptor sent, by phase: after an election, phase 1 should stay still. */
  readonly #counts = { phase1: 0, phase2: 0 };
  #stopped = false;
  readonly #drops: DropLog;
  readonly #leadershipListeners: ((leader: string | undefined) => void)[] = [];
  /** The session of this process's own log writes (transaction entries). */
  readonly #internal = { clientId: '', seq: 0 };
  /** The data directory's lock and identity, and whether this node may vote yet. */
  #dataDir: DataDir | undefined;

  static async start(options: NodeRuntimeOptions): Promise<NodeRuntime> {
    assertGroupName(options.group);
    assertNodeId(options.nodeId);
    for (const peer of options.peers) assertNodeId(peer);
    if (!options.peers.includes(options.nodeId) && options.join !== true)
      throw new RangeError(
        `peers must include this node (${options.nodeId}), unless it joins the group (join)`,
      );
    const resolved = resolveRuntimeOptions(options);
    await mkdir(options.dataDir, { recursive: true });
    // One process per directory, and only a directory of this group and node; one without
    // acceptor state waits until the group admits it (see DataDir), with its transport held.
    const dataDir = await DataDir.open({
      dir: options.dataDir,
      group: options.group,
      nodeId: options.nodeId,
      peers: options.peers,
      join: options.join === true,
      transport: options.transport,
      logger: options.logger,
      lock: options.dataDirLock,
    });
    let store: AcceptorStore | undefined;
    let runtime: NodeRuntime;
    try {
      const snapshotPath = join(options.dataDir, `${options.group}.snapshot`);
      // The snapshot first: if it is damaged, refuse before the acceptor's log is touched. For
      // a machine whose state is a database, the file only says where the log starts again.
      const snapshot = await readSnapshot(snapshotPath);
      const applied = (await options.asyncMachine?.appliedThrough()) ?? -1;
      store = await openFileStore(join(options.dataDir, `${options.group}.acceptor.log`));
      // One round of asking, so a refusal is thrown here in the common cases; a node still
      // waiting after it starts held, and keeps asking (a refusal then is fatal).
      await dataDir.firstRound();
      runtime = new NodeRuntime(
        { ...resolved, transport: dataDir.transport },
        store,
        snapshotPath,
        snapshot,
        applied,
      );
    } catch (error) {
      await store?.close();
      await dataDir.close();
      throw error;
    }
    runtime.#dataDir = dataDir;
    dataDir.attach({
      members: () => runtime.#host.membership.latest,
      refused: (error) => runtime.#fatal(error, 'the group refused this node a vote'),
    });
    // Once start() returns, the server knows the node's subscriptions: a request sent at once
    // from another connection must not meet "no responders" (NATS applies a subscription when
    // its SUB reaches the server, not when subscribe() returns).
    await options.transport.flush().catch(() => undefined);
    return runtime;
  }

  private constructor(
    options: ResolvedRuntimeOptions,
    store: AcceptorStore,
    snapshotPath: string,
    snapshot: Snapshot | undefined,
    asyncApplied: number,
  ) {
    this.#o = options;
    this.#drops = new DropLog(options.logger);
    this.group = options.group;
    this.nodeId = options.nodeId;
    this.#store = store;
    this.#batcher = new Batcher({
      nodeId: options.nodeId,
      maxBatch: options.maxBatch,
      timeoutMs: options.requestTimeoutMs,
      scheduler: realScheduler,
      maxPendingBytes: options.maxPendingBytes,
      maxPendingBytesPerClient: options.maxPendingBytesPerClient,
      submit: (value, done) => this.#host.submit(value, done),
      appliedThrough: () => this.appliedThrough,
    });
    this.#applier = new SlotApplier({
      options,
      snapshotPath,
      snapshot,
      asyncApplied,
      batcher: this.#batcher,
      host: () => this.#host,
      logOwnWrite: (command, clientId, seq) => this.#logOwnWrite(command, clientId, seq),
      fatal: (error, what) => this.#fatal(error, what),
    });
    this.#host = this.#startHost(this.#applier.snapshotHooks());
    this.#memberChanges = new MemberChanges(this.#host);
    this.#requests = new ClientRequests(options, {
      host: this.#host,
      batcher: this.#batcher,
      memberChanges: this.#memberChanges,
      queue: this.#applier.queue,
      scheduler: realScheduler,
      readState: (command) => this.#applier.read(command),
      appliedThrough: () => this.appliedThrough,
      stopped: () => this.#stopped,
    });
    this.#applier.serve();
    serveStatus(options, { status: () => this.status(), stopped: () => this.#stopped });
    if (options.join === true)
      askToJoin(options, { scheduler: realScheduler, stopped: () => this.#stopped });
  }

  /**
   * The group's machines on this node (leader mode), over the node's transport and the
   * acceptor's store, delivering chosen slots to the applier.
   */
  #startHost(snapshots: SnapshotHooks | undefined): GroupHost {
    const options = this.#o;
    return new GroupHost({
      group: options.group,
      nodeId: options.nodeId,
      founders: options.peers,
      transport: options.transport,
      scheduler: realScheduler,
      disk: this.#acceptorDisk(),
      seed: Math.floor(Math.random() * 2 ** 30),
      mode: 'leader',
      leaderTiming: options.leaderTiming ?? RUNTIME_LEADER_TIMING,
      ...(options.inspection === undefined ? {} : { inspection: options.inspection }),
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
      ...(snapshots === undefined ? {} : { snapshots }),
      observer: {
        delivered: (_node, slot, value) => {
          this.#memberChanges.delivered(slot);
          this.#applier.apply(slot, value);
        },
        acceptorAnswered: (_node, message) => {
          if (message.type === 'promise') this.#counts.phase1 += 1;
          else if (message.type === 'accepted' && message.value === undefined)
            this.#counts.phase2 += 1;
        },
        // A machine that caught a broken invariant (a learner told two values for one slot)
        // has stopped: the node stops with it rather than run on without serving.
        failed: (_node, error) => this.#fatal(error, 'a protocol invariant broke'),
        // The constructor's later steps make #requests; leadership is only known after start.
        leadership: (_node, leader) => {
          this.#requests?.leadershipChanged(leader);
          for (const listener of this.#leadershipListeners) listener(leader);
        },
        dropped: (_node, message, reason) => this.#drops.note(reason, message),
      },
    });
  }

  /** The host's disk: the acceptor's file store. */
  #acceptorDisk(): Disk {
    const store = this.#store;
    return {
      durable: store.recovered,
      write: (records, done) => {
        const started = performance.now();
        store.append(records).then(
          () => {
            this.#o.metrics?.persisted(performance.now() - started);
            done();
          },
          // A node that cannot persist must not answer as if it had: stop loudly.
          (error: unknown) => this.#fatal(error, 'the acceptor store failed'),
        );
      },
      rewrite: (records) => {
        store
          .rewrite(records)
          .catch((error: unknown) => this.#fatal(error, 'compacting the acceptor store failed'));
      },
    };
  }

  /**
   * A write of this node's own (the leader's periodic verify, a table's staged rows), taken
   * as a client's: resolves once this node applied it.
   */
  async #logOwnWrite(command: Command, clientId: string, seq: number): Promise<void> {
    const body = this.#codec.encodeWrite({ clientId, seq, command }, 'json');
    const response = this.#codec.decodeResponse(await this.write(body));
    if (!response.ok) throw new Error(response.error.message);
  }

  /** What `synod status` shows for this node. */
  status(): NodeStatus {
    const applier = this.#applier.status();
    const memory = process.memoryUsage();
    const leader = this.#host.leader ?? null;
    return {
      node: this.nodeId,
      group: this.group,
      role: leader === this.nodeId ? 'leader' : 'follower',
      leader,
      ...this.#host.leaderView(),
      acceptedThrough: this.#host.acceptorState.highestAcceptedSlot,
      appliedThrough: this.appliedThrough,
      machine: applier.machine,
      stateDigest: applier.stateDigest,
      pid: process.pid,
      fsyncs: this.#store.stats.fsyncs,
      phase1Answers: this.#counts.phase1,
      phase2Answers: this.#counts.phase2,
      snapshotThrough: applier.snapshotThrough,
      compactedThrough: this.#host.acceptorState.compactedThrough,
      snapshotsInstalled: applier.snapshotsInstalled,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      arrayBuffersBytes: memory.arrayBuffers,
      members: this.#host.membership.latest,
      droppedPeerMessages: { ...this.#host.droppedPeerMessages },
      applyFailing: applier.applyFailing,
      consistency: applier.consistency,
    };
  }

  /**
   * A client write from this process (an embedded front end), encoded as on the write subject
   * (msgpack or JSON): taken as one that came over NATS, without the trips through nats-server.
   * Resolves to the encoded answer.
   */
  write(data: Uint8Array): Promise<Uint8Array> {
    return this.#requests.write(data);
  }

  /** A read of this process, as on this node's read subject (ClientRequests.read). */
  read(data: Uint8Array): Promise<Uint8Array> {
    return this.#requests.read(data);
  }

  get leader(): string | undefined {
    return this.#host.leader;
  }

  /** This node's leadership round while it leads. */
  leaderRound(): number | undefined {
    if (this.#host.leader !== this.nodeId) return undefined;
    const round = Number(this.#host.leaderView().ballot.split('.')[0]);
    return Number.isSafeInteger(round) ? round : undefined;
  }

  /** The group's members, as this node has delivered the log. */
  members(): readonly string[] {
    return this.#host.membership.latest;
  }

  /** Calls `listener` with each leader this node learns of (undefined: none known). */
  onLeadership(listener: (leader: string | undefined) => void): void {
    this.#leadershipListeners.push(listener);
  }

  /** A read of the in-memory state machine, as applied here. */
  readState(command: Command): PlainData {
    return this.#applier.read(command);
  }

  /** `txn` writes of clients are coordinated by `coordinator` (a CommitNode). */
  serveTransactions(coordinator: TransactionCoordinator): void {
    this.#requests.transactions = coordinator;
  }

  /**
   * A log entry of this node's own (a transaction's vote or outcome), proposed only while it
   * leads, never forwarded: resolves to its result once applied here.
   */
  logInternal(command: Command): Promise<PlainData> {
    if (this.#host.leader !== this.nodeId || this.#stopped)
      return Promise.reject(new Error(`${this.nodeId} does not lead ${this.group}`));
    if (this.#internal.clientId === '') this.#internal.clientId = internalClientId(this.nodeId);
    this.#internal.seq += 1;
    const write = { clientId: this.#internal.clientId, seq: this.#internal.seq, command };
    let bytes: number;
    try {
      bytes = this.#codec.encodeWrite(write, 'msgpack').length;
    } catch (error) {
      return Promise.reject(error);
    }
    const alone = this.#o.asyncMachine?.aloneInSlot?.(command) === true;
    return new Promise((resolve, reject) =>
      this.#batcher.write(
        write,
        bytes,
        (response) =>
          response.ok ? resolve(response.result) : reject(new Error(response.error.message)),
        this.#o.requestTimeoutMs,
        alone,
      ),
    );
  }

  get appliedThrough(): number {
    return this.#applier.appliedThrough;
  }

  /**
   * Something this node cannot go on after: it stops, and its owner hears of it (onFatal: the
   * CLI exits non-zero, so a supervisor restarts it) instead of a process that runs on and
   * serves nothing.
   */
  #fatal(error: unknown, what: string): void {
    if (this.#stopped) return;
    this.#o.logger?.fatal({ err: error }, `${what}; this node stops`);
    void this.stop().finally(() => this.#o.onFatal?.(error));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#drops.stop();
    this.#host.stop();
    await this.#applier.stop();
    await this.#store.close();
    await this.#o.asyncMachine?.close();
    await this.#dataDir?.close();
  }
}
