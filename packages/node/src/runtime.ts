import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeaderTiming } from '@synod/actors';
import type { Logger } from '@synod/log';
import {
  assertGroupName,
  assertNodeId,
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  DecodeError,
  detectFormat,
  type ErrorCode,
  groupSubjects,
  type WireFormat,
} from '@synod/protocol';
import { type Disk, GroupHost, type Snapshot } from '@synod/sim';
import {
  type AcceptorStore,
  openFileStore,
  readSnapshotFile,
  writeSnapshotFile,
} from '@synod/storage';
import { realScheduler, type Transport, type TransportMessage } from '@synod/transport';
import { decodeBatch, encodeBatch } from './batch.js';
import { CommandError, KvState } from './kv-state.js';

export interface NodeRuntimeOptions {
  readonly group: string;
  readonly nodeId: string;
  /** Every member of the group, this node included (static membership). */
  readonly peers: readonly string[];
  readonly transport: Transport;
  /** The acceptor's log lives here, as <group>.acceptor.log. */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** A client request not answered in this time gets NO_QUORUM. Default 5,000 ms. */
  readonly requestTimeoutMs?: number;
  /** Most client writes packed into one log slot. Default 256. */
  readonly maxBatch?: number;
  /**
   * Largest client write, in request bytes (default 256 KiB). A log slot travels in one NATS
   * message (1 MiB by default): larger writes are refused with BAD_REQUEST, and a batch is
   * cut at MAX_BATCH_BYTES.
   */
  readonly maxWriteBytes?: number;
  readonly leaderTiming?: LeaderTiming;
  /**
   * Snapshot the state machine every this many applied slots (default 10,000); once the
   * snapshot is durable the log is compacted, so memory and the acceptor's file stay bounded.
   */
  readonly snapshotEvery?: number;
  /**
   * Also snapshot once this many bytes of log values were applied since the last snapshot,
   * or as many as the last snapshot's size if that is larger (default 4 MiB): with batching,
   * 10,000 slots can hold hundreds of megabytes, and a snapshot should cost less than the
   * log it replaces.
   */
  readonly snapshotEveryBytes?: number;
  /**
   * Slots kept below a snapshot for peers a little behind to catch up from: at most this many
   * (default 256), and no more than retainBytes of values (default 2 MiB). Peers further
   * behind install a snapshot.
   */
  readonly retainSlots?: number;
  readonly retainBytes?: number;
}

const HOPS_HEADER = 'synod-hops';
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
const MAX_HOPS = 3;
/** Most request bytes packed into one slot, so an accept message stays under 1 MiB. */
const MAX_BATCH_BYTES = 512 * 1024;
const DEFAULT_MAX_WRITE_BYTES = 256 * 1024;
/** How long a follower waits for the leader to answer a forwarded write before routing it again. */
const FORWARD_TIMEOUT_MS = 1_000;

/**
 * One node of one group: the group's machines (leader mode) over a Transport, the acceptor's
 * records in a file store with fsync, the kv state machine, and the client API on
 * `synod.<group>.write` and `synod.<group>.read` (msgpack or JSON). Any node takes a request;
 * a follower forwards writes to the leader, which packs the writes that arrive together into
 * one slot and answers each once its slot is applied.
 */
export class NodeRuntime {
  readonly group: string;
  readonly nodeId: string;
  readonly #o: NodeRuntimeOptions;
  readonly #store: AcceptorStore;
  readonly #host: GroupHost;
  #kv: KvState;
  readonly #snapshotPath: string;
  /** The latest durable snapshot: served to peers behind the compaction point. */
  #latestSnapshot: Snapshot | undefined;
  /** The slot the last snapshot was started at (durable or not yet). */
  #snapshotStartedAt: number;
  #snapshotWrites: Promise<void> = Promise.resolve();
  #snapshotting = false;
  #bytesSinceSnapshot = 0;
  /** Sizes of the last retainSlots applied slots, newest last: how much compaction keeps. */
  readonly #recentSlotBytes: number[] = [];
  #snapshotsInstalled = 0;
  readonly #codec = createClientCodec();
  readonly #subjects;
  readonly #waiting = new Map<string, ((response: ClientResponse) => void)[]>();
  #batch: { readonly write: ClientWrite; readonly bytes: number }[] = [];
  /** Answers this node's acceptor sent, by phase: after an election, phase 1 should stay still. */
  readonly #counts = { phase1: 0, phase2: 0 };
  #flushScheduled = false;
  #stopped = false;

  static async start(options: NodeRuntimeOptions): Promise<NodeRuntime> {
    assertGroupName(options.group);
    assertNodeId(options.nodeId);
    for (const peer of options.peers) assertNodeId(peer);
    if (!options.peers.includes(options.nodeId))
      throw new RangeError(`peers must include this node (${options.nodeId})`);
    for (const [name, value] of [
      ['snapshotEvery', options.snapshotEvery],
      ['retainSlots', options.retainSlots],
      ['retainBytes', options.retainBytes],
      ['snapshotEveryBytes', options.snapshotEveryBytes],
    ] as const) {
      if (
        value !== undefined &&
        (!Number.isSafeInteger(value) || value < (name === 'snapshotEvery' ? 1 : 0))
      )
        throw new RangeError(`${name} must be a whole number, got ${value}`);
    }
    await mkdir(options.dataDir, { recursive: true });
    const snapshotPath = join(options.dataDir, `${options.group}.snapshot`);
    // The snapshot first: if it is damaged, refuse before the acceptor's log is touched.
    const saved = await readSnapshotFile(snapshotPath);
    const store = await openFileStore(join(options.dataDir, `${options.group}.acceptor.log`));
    const snapshot =
      saved === undefined ? undefined : { throughSlot: saved.throughSlot, bytes: saved.state };
    return new NodeRuntime(options, store, snapshotPath, snapshot);
  }

  private constructor(
    options: NodeRuntimeOptions,
    store: AcceptorStore,
    snapshotPath: string,
    snapshot: Snapshot | undefined,
  ) {
    this.#o = options;
    this.group = options.group;
    this.nodeId = options.nodeId;
    this.#store = store;
    this.#snapshotPath = snapshotPath;
    this.#kv = snapshot === undefined ? new KvState() : KvState.restore(snapshot.bytes);
    this.#latestSnapshot = snapshot;
    this.#snapshotStartedAt = snapshot?.throughSlot ?? -1;
    this.#subjects = groupSubjects(options.group);
    const disk: Disk = {
      durable: store.recovered,
      write: (records, done) => {
        store.append(records).then(done, (error: unknown) => {
          // A node that cannot persist must not answer as if it had: stop loudly.
          options.logger?.fatal({ err: error }, 'acceptor store failed; stopping this node');
          void this.stop();
        });
      },
      rewrite: (records) => {
        store.rewrite(records).catch((error: unknown) => {
          options.logger?.fatal({ err: error }, 'compacting the acceptor store failed; stopping');
          void this.stop();
        });
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
      snapshots: {
        initial: snapshot,
        latest: () => this.#latestSnapshot,
        install: (installed) => {
          this.#kv = KvState.restore(installed.bytes);
          this.#snapshotsInstalled += 1;
          this.#snapshotStartedAt = installed.throughSlot;
          options.logger?.info(
            { throughSlot: installed.throughSlot, bytes: installed.bytes.length },
            'installed a snapshot from a peer',
          );
          this.#saveSnapshot(installed, undefined);
        },
      },
      observer: {
        delivered: (_node, slot, value) => this.#apply(slot, value),
        acceptorAnswered: (_node, message) => {
          if (message.type === 'promise') this.#counts.phase1 += 1;
          else if (message.type === 'accepted' && message.value === undefined)
            this.#counts.phase2 += 1;
        },
        failed: (_node, error) =>
          options.logger?.fatal({ err: error }, 'a protocol invariant broke; this node must stop'),
      },
    });
    const queue = `synod-${options.group}`;
    const t = options.transport;
    t.subscribe(this.#subjects.write, (m) => this.#onWrite(m, 0), { queue });
    t.subscribe(`${this.#subjects.node(options.nodeId)}.write`, (m) =>
      this.#onWrite(m, Number(m.headers?.[HOPS_HEADER] ?? 0)),
    );
    t.subscribe(this.#subjects.read, (m) => this.#onRead(m), { queue });
    // Every node answers status requests (no queue group): `synod status` gathers them all.
    t.subscribe(`synod.${options.group}.status`, (m) => {
      if (m.reply === undefined) return;
      // Benchmarks measure live memory: a process started with --expose-gc collects first
      // when asked (`{"gc":true}`); otherwise the field is ignored.
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc !== undefined && new TextDecoder().decode(m.data).includes('"gc":true')) gc();
      t.publish(m.reply, new TextEncoder().encode(JSON.stringify(this.status())));
    });
  }

  /** What `synod status` shows for this node. */
  status(): {
    node: string;
    group: string;
    role: string;
    leader: string | null;
    appliedThrough: number;
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
  } {
    const memory = process.memoryUsage();
    const leader = this.#host.leader ?? null;
    return {
      node: this.nodeId,
      group: this.group,
      role: leader === this.nodeId ? 'leader' : 'follower',
      leader,
      appliedThrough: this.appliedThrough,
      stateDigest: this.#kv.digest(),
      pid: process.pid,
      phase1Answers: this.#counts.phase1,
      phase2Answers: this.#counts.phase2,
      snapshotThrough: this.#latestSnapshot?.throughSlot ?? -1,
      compactedThrough: this.#host.acceptorState.compactedThrough,
      snapshotsInstalled: this.#snapshotsInstalled,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      arrayBuffersBytes: memory.arrayBuffers,
    };
  }

  get leader(): string | undefined {
    return this.#host.leader;
  }

  get appliedThrough(): number {
    return this.#host.deliveredThrough;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#host.stop();
    await this.#snapshotWrites;
    await this.#store.close();
  }

  #respond(m: TransportMessage, format: WireFormat, response: ClientResponse): void {
    if (m.reply === undefined || this.#o.transport.closed) return;
    this.#o.transport.publish(m.reply, this.#codec.encodeResponse(response, format));
  }

  #fail(code: ErrorCode, message: string, leader?: string): ClientResponse {
    return { ok: false, error: { code, message, ...(leader === undefined ? {} : { leader }) } };
  }

  /** Decodes a client request, or answers BAD_REQUEST saying what is wrong with it. */
  #decodeOrReject<T>(
    m: TransportMessage,
    format: WireFormat,
    decode: (data: Uint8Array, contentType: string | undefined) => T,
  ): T | undefined {
    try {
      return decode(m.data, m.headers?.['content-type']);
    } catch (error) {
      this.#respond(
        m,
        format,
        this.#fail('BAD_REQUEST', error instanceof DecodeError ? error.message : String(error)),
      );
      return undefined;
    }
  }

  #onWrite(m: TransportMessage, hops: number): void {
    const format = detectFormat(m.data, m.headers?.['content-type']);
    const write = this.#decodeOrReject(m, format, (data, type) =>
      this.#codec.decodeWrite(data, type),
    );
    if (write === undefined) return;
    const maxWriteBytes = this.#o.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
    if (m.data.length > maxWriteBytes) {
      this.#respond(
        m,
        format,
        this.#fail(
          'BAD_REQUEST',
          `the write is ${m.data.length} bytes; the limit is ${maxWriteBytes} bytes`,
        ),
      );
      return;
    }
    if (write.command.op === 'paxos') {
      this.#paxos(m, format, write);
      return;
    }
    const deadline = Date.now() + (this.#o.requestTimeoutMs ?? 5_000);
    const route = (): void => {
      if (this.#stopped) return;
      const leader = this.#host.leader;
      if (leader === this.nodeId) {
        this.#enqueue(write, m.data.length, (response) => this.#respond(m, format, response));
      } else if (leader !== undefined && hops < MAX_HOPS) {
        // Forward to the leader as a request of our own: a leader that died before anyone
        // noticed does not answer, and the write is routed again (the same (clientId, seq)
        // is applied once however often it is sent).
        const forwardMs = Math.max(100, Math.min(FORWARD_TIMEOUT_MS, deadline - Date.now()));
        this.#o.transport
          .request(`${this.#subjects.node(leader)}.write`, m.data, {
            timeoutMs: forwardMs,
            headers: { ...m.headers, [HOPS_HEADER]: String(hops + 1) },
          })
          .then(
            (answer) => {
              if (m.reply !== undefined && !this.#stopped)
                this.#o.transport.publish(m.reply, answer.data);
            },
            () => {
              if (Date.now() < deadline) setTimeout(route, 50);
              else
                this.#respond(
                  m,
                  format,
                  this.#fail(
                    'NO_QUORUM',
                    `the leader of group ${this.group} did not answer within the timeout`,
                  ),
                );
            },
          );
      } else if (Date.now() < deadline) {
        setTimeout(route, 20);
      } else {
        this.#respond(
          m,
          format,
          this.#fail('NO_QUORUM', `no leader for group ${this.group} within the timeout`, leader),
        );
      }
    };
    route();
  }

  /**
   * Seed 001's paxos(k, v): single-decree Paxos on the register `key`, run by this node (no
   * leader needed). Every caller for the key gets the same value, one of those proposed.
   */
  #paxos(m: TransportMessage, format: WireFormat, write: ClientWrite): void {
    const { key, value } = write.command;
    if (typeof key !== 'string' || key === '' || typeof value !== 'string') {
      this.#respond(
        m,
        format,
        this.#fail('BAD_REQUEST', 'paxos needs a string "key" and a string "value"'),
      );
      return;
    }
    let answered = false;
    const timeout = setTimeout(() => {
      answered = true;
      this.#respond(
        m,
        format,
        this.#fail('NO_QUORUM', `no majority within ${this.#o.requestTimeoutMs ?? 5_000} ms`),
      );
    }, this.#o.requestTimeoutMs ?? 5_000);
    this.#host.paxos(`paxos:${key}`, new TextEncoder().encode(value), (chosen) => {
      if (answered) return;
      clearTimeout(timeout);
      this.#respond(m, format, { ok: true, result: { value: new TextDecoder().decode(chosen) } });
    });
  }

  #enqueue(write: ClientWrite, bytes: number, reply: (response: ClientResponse) => void): void {
    const key = `${write.clientId}\u0000${write.seq}`;
    const timeout = setTimeout(() => {
      const waiters = this.#waiting.get(key);
      if (waiters === undefined) return;
      const index = waiters.indexOf(reply);
      if (index >= 0) waiters.splice(index, 1);
      if (waiters.length === 0) this.#waiting.delete(key);
      reply(
        this.#fail(
          'NO_QUORUM',
          `write not committed within ${this.#o.requestTimeoutMs ?? 5_000} ms`,
        ),
      );
    }, this.#o.requestTimeoutMs ?? 5_000);
    const waiters = this.#waiting.get(key) ?? [];
    waiters.push((response) => {
      clearTimeout(timeout);
      reply(response);
    });
    this.#waiting.set(key, waiters);
    this.#batch.push({ write, bytes });
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Writes that arrive in the same turn of the event loop share one slot.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const max = this.#o.maxBatch ?? 256;
    while (this.#batch.length > 0) {
      let count = 0;
      let bytes = 0;
      for (const entry of this.#batch) {
        if (count >= max || (count > 0 && bytes + entry.bytes > MAX_BATCH_BYTES)) break;
        bytes += entry.bytes;
        count += 1;
      }
      const batch = this.#batch.splice(0, count).map((entry) => entry.write);
      this.#host.submit(encodeBatch(batch), (result) => {
        if (result.ok) return; // answered when its slot is applied
        for (const write of batch)
          this.#answer(
            write,
            this.#fail(
              'NOT_LEADER',
              'leadership changed; retry with the same clientId and seq',
              result.leader,
            ),
          );
      });
    }
  }

  #answer(write: ClientWrite, response: ClientResponse): void {
    const key = `${write.clientId}\u0000${write.seq}`;
    const waiters = this.#waiting.get(key);
    this.#waiting.delete(key);
    for (const waiter of waiters ?? []) waiter(response);
  }

  /**
   * Every snapshotEvery slots: capture the state, make it durable, then compact the log
   * through retainSlots before it (the acceptor forgets those slots, the store is rewritten).
   */
  #maybeSnapshot(slot: number): void {
    const every = this.#o.snapshotEvery ?? 10_000;
    const everyBytes = Math.max(
      this.#o.snapshotEveryBytes ?? 4 * 2 ** 20,
      this.#latestSnapshot?.bytes.length ?? 0,
    );
    if (
      this.#snapshotting ||
      (slot - this.#snapshotStartedAt < every && this.#bytesSinceSnapshot < everyBytes)
    )
      return;
    this.#snapshotStartedAt = slot;
    this.#bytesSinceSnapshot = 0;
    // Keep the newest slots, as many as fit in retainBytes (and at most retainSlots).
    const retainBytes = this.#o.retainBytes ?? 2 * 2 ** 20;
    let kept = 0;
    let bytes = 0;
    for (let i = this.#recentSlotBytes.length - 1; i >= 0; i--) {
      bytes += this.#recentSlotBytes[i]!;
      if (bytes > retainBytes) break;
      kept += 1;
    }
    this.#saveSnapshot({ throughSlot: slot, bytes: this.#kv.snapshot() }, slot - kept);
  }

  /** Writes the snapshot durably; then, if given, compacts the log through `compactThrough`. */
  #saveSnapshot(snapshot: Snapshot, compactThrough: number | undefined): void {
    this.#snapshotting = true;
    this.#snapshotWrites = this.#snapshotWrites
      .then(() =>
        writeSnapshotFile(this.#snapshotPath, {
          throughSlot: snapshot.throughSlot,
          state: snapshot.bytes,
        }),
      )
      .then(
        () => {
          this.#snapshotting = false;
          if (this.#stopped) return;
          if (snapshot.throughSlot >= (this.#latestSnapshot?.throughSlot ?? -1))
            this.#latestSnapshot = snapshot;
          if (compactThrough !== undefined && compactThrough >= 0)
            this.#host.compact(compactThrough);
        },
        (error: unknown) => {
          this.#o.logger?.fatal({ err: error }, 'writing a snapshot failed; stopping this node');
          void this.stop();
        },
      );
  }

  #apply(slot: number, value: Uint8Array): void {
    this.#bytesSinceSnapshot += value.length;
    this.#recentSlotBytes.push(value.length);
    if (this.#recentSlotBytes.length > (this.#o.retainSlots ?? 256)) this.#recentSlotBytes.shift();
    // value.length 0 is a no-op: nothing to apply, but the slot still counts.
    for (const write of value.length === 0 ? [] : decodeBatch(value)) {
      const result = this.#kv.applyWrite(write);
      this.#answer(
        write,
        result instanceof CommandError
          ? this.#fail('BAD_REQUEST', result.message)
          : { ok: true, slot, result },
      );
    }
    // After the slot is applied: the snapshot is the state through `slot`.
    this.#maybeSnapshot(slot);
  }

  #onRead(m: TransportMessage): void {
    const format = detectFormat(m.data, m.headers?.['content-type']);
    const read = this.#decodeOrReject(m, format, (data, type) =>
      this.#codec.decodeRead(data, type),
    );
    if (read === undefined) return;
    const answer = (slot: number): void => {
      try {
        this.#respond(m, format, { ok: true, slot, result: this.#kv.read(read.command) });
      } catch (error) {
        this.#respond(
          m,
          format,
          this.#fail('BAD_REQUEST', error instanceof Error ? error.message : String(error)),
        );
      }
    };
    if (read.consistency === 'optimistic') {
      answer(this.#host.deliveredThrough);
      return;
    }
    // strong (and, until leader leases land, linearizable): pg_paxos's read, which holds
    // with or without a leader: highest accepted slot of a majority, applied, then read.
    let answered = false;
    const timeout = setTimeout(() => {
      answered = true;
      this.#respond(
        m,
        format,
        this.#fail(
          'NO_QUORUM',
          `no majority answered within ${this.#o.requestTimeoutMs ?? 5_000} ms`,
        ),
      );
    }, this.#o.requestTimeoutMs ?? 5_000);
    this.#host.read((through) => {
      if (answered) return;
      clearTimeout(timeout);
      answer(through);
    });
  }
}
