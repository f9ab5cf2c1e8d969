import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeaderTiming } from '@synod/actors';
import { type Disk, type DropReason, GroupHost, type Snapshot } from '@synod/host';
import {
  assertGroupName,
  assertNodeId,
  type ClientWrite,
  type Command,
  createClientCodec,
  groupSubjects,
  isMembershipValue,
} from '@synod/protocol';
import { type AcceptorStore, openFileStore } from '@synod/storage';
import { realScheduler } from '@synod/transport';
import { ApplyQueue } from './apply-queue.js';
import { AsyncCompaction } from './async-compaction.js';
import type { WriteResult } from './async-machine.js';
import { decodeBatch } from './batch.js';
import { Batcher } from './batcher.js';
import { ClientRequests, failure } from './client-requests.js';
import { ConsistencyCheck, type ConsistencyVerdict } from './consistency-check.js';
import { DataDir } from './data-dir.js';
import { DatabaseRepair } from './database-repair.js';
import { DropLog } from './drop-log.js';
import { KV } from './kv-machine.js';
import { MemberChanges } from './member-changes.js';
import {
  type NodeRuntimeOptions,
  type ResolvedRuntimeOptions,
  resolveRuntimeOptions,
} from './runtime-options.js';
import { readSnapshot } from './snapshot-io.js';
import { SnapshotKeeper } from './snapshot-keeper.js';
import { CommandError, ReplicatedState } from './state-machine.js';

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
/** How often a joining node asks to be added until a leader answers. */
const JOIN_RETRY_MS = 1_000;

/**
 * One node of one group: the group's machines (leader mode) over a Transport, the acceptor's
 * records in a file store with fsync, a state machine (kv unless told otherwise) with client
 * sessions, and the client API on `synod.<group>.write` and `synod.<group>.read` (msgpack
 * or JSON; see ClientRequests). Any node takes a request; a follower forwards writes and
 * linearizable reads to the leader, which packs what arrives together into one slot and
 * answers each once its slot is applied (see Batcher). The state machine is snapshotted and
 * the log compacted as it grows (see SnapshotKeeper).
 */
export class NodeRuntime {
  readonly group: string;
  readonly nodeId: string;
  readonly #o: ResolvedRuntimeOptions;
  readonly #store: AcceptorStore;
  readonly #host: GroupHost;
  #state: ReplicatedState;
  readonly #snapshots: SnapshotKeeper | undefined;
  /** With an asynchronous machine: slots on their way to it. */
  readonly #queue: ApplyQueue | undefined;
  readonly #asyncCompaction: AsyncCompaction | undefined;
  readonly #repair: DatabaseRepair | undefined;
  readonly #consistency: ConsistencyCheck | undefined;
  readonly #batcher: Batcher;
  readonly #memberChanges: MemberChanges;
  readonly #requests: ClientRequests;
  readonly #codec = createClientCodec();
  readonly #subjects;
  /** Answers this node's acceptor sent, by phase: after an election, phase 1 should stay still. */
  readonly #counts = { phase1: 0, phase2: 0 };
  #stopped = false;
  readonly #drops: DropLog;
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
    const kind = options.machine ?? KV;
    // With an asynchronous machine, `snapshot` is only where its log starts again.
    this.#state =
      snapshot === undefined || options.asyncMachine !== undefined
        ? new ReplicatedState(kind)
        : ReplicatedState.restore(kind, snapshot.bytes);
    this.#subjects = groupSubjects(options.group);
    const machine = options.asyncMachine;
    this.#queue =
      machine === undefined
        ? undefined
        : new ApplyQueue(
            machine,
            asyncApplied,
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
            host: () => this.#host,
            initial: snapshot,
            failed: (error) => this.#fatal(error, 'writing the restart point failed'),
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
            peers: () => this.#host.membership.latest,
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
            membership: (slot) => this.#host.membershipThrough(slot).toRecord(),
            compact: (through) => this.#host.compact(through),
            failed: (error) => this.#fatal(error, 'writing a snapshot failed'),
          });
    const disk: Disk = {
      durable: store.recovered,
      write: (records, done) => {
        const started = performance.now();
        store.append(records).then(
          () => {
            options.metrics?.persisted(performance.now() - started);
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
    this.#host = new GroupHost({
      group: options.group,
      nodeId: options.nodeId,
      peers: options.peers,
      transport: options.transport,
      scheduler: realScheduler,
      disk,
      seed: Math.floor(Math.random() * 2 ** 30),
      mode: 'leader',
      leaderTiming: options.leaderTiming ?? RUNTIME_LEADER_TIMING,
      ...(options.inspection === undefined ? {} : { inspection: options.inspection }),
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
      ...(this.#asyncCompaction !== undefined
        ? {
            snapshots: {
              initial: snapshot,
              latest: () => this.#asyncCompaction?.latest(),
              install: (installed: Snapshot) => this.#asyncCompaction?.install(installed),
            },
          }
        : this.#snapshots === undefined
          ? {}
          : {
              snapshots: {
                initial: snapshot,
                latest: () => this.#snapshots?.latest,
                install: (installed) => {
                  this.#state = ReplicatedState.restore(kind, installed.bytes);
                  this.#snapshots?.install(installed);
                },
              },
            }),
      observer: {
        delivered: (_node, slot, value) => this.#apply(slot, value),
        acceptorAnswered: (_node, message) => {
          if (message.type === 'promise') this.#counts.phase1 += 1;
          else if (message.type === 'accepted' && message.value === undefined)
            this.#counts.phase2 += 1;
        },
        // A machine that caught a broken invariant (a learner told two values for one slot)
        // has stopped: the node stops with it rather than run on without serving.
        failed: (_node, error) => this.#fatal(error, 'a protocol invariant broke'),
        dropped: (_node, message, reason) => this.#drops.note(reason, message),
      },
    });
    this.#memberChanges = new MemberChanges(this.#host);
    this.#batcher = new Batcher({
      nodeId: options.nodeId,
      maxBatch: options.maxBatch,
      timeoutMs: options.requestTimeoutMs,
      maxPendingBytes: options.maxPendingBytes,
      maxPendingBytesPerClient: options.maxPendingBytesPerClient,
      submit: (value, done) => this.#host.submit(value, done),
      appliedThrough: () => this.appliedThrough,
    });
    this.#requests = new ClientRequests(options, {
      host: this.#host,
      batcher: this.#batcher,
      memberChanges: this.#memberChanges,
      queue: this.#queue,
      readState: (command) => this.#state.read(command),
      appliedThrough: () => this.appliedThrough,
      stopped: () => this.#stopped,
    });
    const t = options.transport;
    this.#repair?.serve();
    const queue = this.#queue;
    this.#consistency =
      queue === undefined || machine === undefined || this.#repair === undefined
        ? undefined
        : new ConsistencyCheck({
            transport: t,
            group: options.group,
            nodeId: options.nodeId,
            members: () => this.#host.membership.latest,
            reinstall: (why, from) => queue.reinstall(why, from),
            appliedThrough: () => this.appliedThrough,
            isLeader: () => this.#host.leader === this.nodeId,
            submitVerify: () =>
              this.#logOwnWrite({ op: 'verify' }, `verify-${this.nodeId}`, Date.now()),
            everyMs: options.verifyEveryMs,
            logger: options.logger,
          });
    if (machine !== undefined)
      machine.logWrite = (command, clientId, seq) => this.#logOwnWrite(command, clientId, seq);
    if (this.#consistency !== undefined && machine !== undefined) {
      const check = this.#consistency;
      machine.verified = (slot, digest) => check.verified(slot, digest);
      check.start();
    }
    // Every node answers status requests (no queue group): `synod status` gathers them all.
    t.subscribe(`synod.${options.group}.status`, (m) => {
      // A stopped node is gone, even while its connection drains: it must not look alive.
      if (m.reply === undefined || this.#stopped) return;
      // Benchmarks measure live memory: a process started with --expose-gc collects first
      // when asked (`{"gc":true}`); otherwise the field is ignored.
      const body = new TextDecoder().decode(m.data);
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc !== undefined && body.includes('"gc":true')) gc();
      const reply = m.reply;
      const status = this.status();
      // A database's digest reads every replicated row: only when asked ({"digest":true}),
      // not for every client that looks for the leader.
      const digest =
        machine === undefined || !body.includes('"digest":true')
          ? Promise.resolve(status.stateDigest)
          : machine.digest();
      digest.then(
        (stateDigest) => {
          const extra = options.statusExtra?.() ?? {};
          if (!t.closed)
            t.publish(
              reply,
              new TextEncoder().encode(JSON.stringify({ ...status, ...extra, stateDigest })),
            );
        },
        (error: unknown) => options.logger?.warn({ err: error }, 'status: no state digest'),
      );
    });
    if (options.join === true) this.#askToJoin();
  }

  /**
   * A node started to join asks the group (through any node, which routes to the leader) to
   * add it, and asks again until a leader has put it in the log. Asking when already a member
   * is answered at once, so a restarted joiner does no harm.
   */
  #askToJoin(delayMs = JOIN_RETRY_MS): void {
    if (this.#stopped) return;
    const body = this.#codec.encodeWrite(
      { clientId: `join-${this.nodeId}`, seq: 1, command: { op: 'join', node: this.nodeId } },
      'json',
    );
    const again = (reason: string): void => {
      this.#o.logger?.info({ reason, retryMs: delayMs }, 'not a member yet: asking again');
      if (!this.#stopped) setTimeout(() => this.#askToJoin(Math.min(delayMs * 2, 10_000)), delayMs);
    };
    this.#o.transport.request(this.#subjects.write, body, { timeoutMs: JOIN_RETRY_MS * 3 }).then(
      (answer) => {
        const response = this.#codec.decodeResponse(answer.data);
        if (!response.ok) again(response.error.message);
        else
          this.#o.logger?.info(
            { slot: response.slot, result: response.result },
            'joined the group: the log now lists this node as a member',
          );
      },
      (error: unknown) => again(error instanceof Error ? error.message : String(error)),
    );
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
  status(): {
    node: string;
    group: string;
    role: string;
    leader: string | null;
    /** The leader's ballot, as round.node. */
    ballot: string;
    /** The highest slot known chosen. */
    commitIndex: number;
    /** The highest slot this node's acceptor has accepted a value for. */
    acceptedThrough: number;
    appliedThrough: number;
    /** Milliseconds since the leader's last heartbeat (0 on the leader, null: none heard). */
    lastHeartbeatMsAgo: number | null;
    machine: string;
    stateDigest: string;
    pid: number;
    phase1Answers: number;
    phase2Answers: number;
    snapshotThrough: number;
    compactedThrough: number;
    snapshotsInstalled: number;
    rssBytes: number;
    heapUsedBytes: number;
    /** Buffers outside the JS heap (log values live there). */
    arrayBuffersBytes: number;
    /** The group's members once every change this node has delivered is in effect. */
    members: readonly string[];
    /** Peer messages this node did not believe since it started, by reason. */
    droppedPeerMessages: Readonly<Record<DropReason, number>>;
    /** Why this node applies nothing (its machine fails every retry), and since when; null: it applies. */
    applyFailing: { readonly since: string; readonly message: string } | null;
    /** What the last verify write showed: this node's state against the members' (null: none yet). */
    consistency: ConsistencyVerdict | null;
  } {
    const failing = this.#queue?.failing;
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
      machine: this.#o.asyncMachine?.name ?? this.#state.kind.name,
      // An asynchronous machine's digest is asked for by the status handler.
      stateDigest: this.#o.asyncMachine === undefined ? this.#state.digest() : '',
      pid: process.pid,
      phase1Answers: this.#counts.phase1,
      phase2Answers: this.#counts.phase2,
      snapshotThrough: this.#snapshots?.latest?.throughSlot ?? -1,
      compactedThrough: this.#host.acceptorState.compactedThrough,
      snapshotsInstalled: this.#snapshots?.installed ?? this.#asyncCompaction?.installed ?? 0,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      arrayBuffersBytes: memory.arrayBuffers,
      members: this.#host.membership.latest,
      droppedPeerMessages: { ...this.#host.droppedPeerMessages },
      applyFailing:
        failing === undefined
          ? null
          : { since: new Date(failing.since).toISOString(), message: failing.message },
      consistency: this.#consistency?.latest ?? null,
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

  get leader(): string | undefined {
    return this.#host.leader;
  }

  get appliedThrough(): number {
    return this.#queue?.appliedThrough ?? this.#host.deliveredThrough;
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
    this.#queue?.stop();
    this.#repair?.stop();
    this.#consistency?.stop();
    await this.#snapshots?.stop();
    await this.#asyncCompaction?.stop();
    await this.#store.close();
    await this.#o.asyncMachine?.close();
    await this.#dataDir?.close();
  }

  /** An asynchronous machine applied `slot`: answer its writes and the reads waiting for it. */
  #appliedAsync(slot: number, writes: readonly ClientWrite[], results: WriteResult[]): void {
    writes.forEach((write, i) => {
      const result = results[i];
      if (result === undefined) return;
      this.#batcher.answer(
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
    this.#batcher.applied(slot);
  }

  #apply(slot: number, value: Uint8Array): void {
    this.#memberChanges.delivered(slot);
    // A no-op (empty) or a membership change (the host's business) has nothing to apply, but
    // the slot still counts.
    const writes = value.length === 0 || isMembershipValue(value) ? [] : decodeBatch(value);
    if (this.#queue !== undefined) {
      this.#queue.push(slot, writes);
      return;
    }
    for (const write of writes) {
      const result = this.#state.applyWrite(write);
      this.#batcher.answer(
        write,
        result instanceof CommandError
          ? failure('BAD_REQUEST', result.message)
          : { ok: true, slot, result },
      );
    }
    this.#batcher.applied(slot);
    // After the slot is applied: a snapshot now is the state through `slot`.
    this.#snapshots?.applied(slot, value.length);
  }
}
