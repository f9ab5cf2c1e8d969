import type { GroupHost } from '@synod/host';
import {
  type ClientResponse,
  type ClientWrite,
  type Command,
  createClientCodec,
  DecodeError,
  detectFormat,
  groupSubjects,
  type PlainData,
  type WireFormat,
} from '@synod/protocol';
import type { Scheduler, Subscription, TransportMessage } from '@synod/transport';
import type { ApplyQueue } from './apply-queue.js';
import type { Admission } from './async-machine.js';
import type { Batcher, ReadOutcome } from './batcher.js';
import { failure, type Incoming, machineFailure } from './client-answers.js';
import { readOnLeader } from './leader-read.js';
import { HOPS_HEADER, LeaderRoute } from './leader-route.js';
import { isMemberOp, type MemberChanges } from './member-changes.js';
import type { ResolvedRuntimeOptions } from './runtime-options.js';

export { failure, machineFailure } from './client-answers.js';

/**
 * What the client API needs of the node runtime: only the members it calls, so a test can
 * hand it stand-ins.
 */
export interface RequestTarget {
  readonly host: Pick<GroupHost, 'leader' | 'maySpeakFor' | 'paxos' | 'read' | 'leaderRead'>;
  readonly batcher: Pick<Batcher, 'write' | 'read'>;
  readonly memberChanges: Pick<MemberChanges, 'change'>;
  /** With an asynchronous machine: slots on their way to it. */
  readonly queue: Pick<ApplyQueue, 'appliedThrough' | 'whenApplied'> | undefined;
  /**
   * Every deadline, retry and latency of the client path is read and set here, so a test or
   * the simulator can drive it on a virtual clock.
   */
  readonly scheduler: Scheduler;
  /** A read of the in-memory state machine (kv, log). */
  readState(command: Command): PlainData;
  appliedThrough(): number;
  stopped(): boolean;
}

/** Who coordinates the `txn` writes this node leads (the process's CommitNode). */
export interface TransactionCoordinator {
  /** The client's `txn` as the leader logs it: with the commit acceptors and protocol. */
  beginCommand(group: string, command: Command): Command;
  /** The `txn` entry is applied (`result`: its number and more): coordinate, then `respond`. */
  begun(group: string, result: PlainData, respond: (response: ClientResponse) => void): void;
}

/**
 * The client API of one node: writes and reads on `synod.<group>.write` and `.read` (a queue
 * group; the write subject only while this node leads or knows no leader) and on the node's
 * own subjects, msgpack or JSON. A request that needs the leader gets there through
 * LeaderRoute; the leader admits writes to the batcher, which answers each once its slot is
 * applied. paxos(k, v) runs here.
 */
export class ClientRequests {
  readonly #o: ResolvedRuntimeOptions;
  readonly #r: RequestTarget;
  readonly #codec = createClientCodec();
  readonly #subjects;
  readonly #toLeader: LeaderRoute;
  /** This node's subscription to the public write subject, while it serves it. */
  #publicWrites: Subscription | undefined;
  readonly #servePublicWrites: () => Subscription;
  /** Set by the process that runs a CommitNode; without one, `txn` is refused. */
  transactions: TransactionCoordinator | undefined;

  constructor(options: ResolvedRuntimeOptions, target: RequestTarget) {
    this.#o = options;
    this.#r = target;
    this.#subjects = groupSubjects(options.group);
    this.#toLeader = new LeaderRoute({
      nodeId: options.nodeId,
      group: options.group,
      subjects: this.#subjects,
      transport: options.transport,
      scheduler: target.scheduler,
      requestTimeoutMs: options.requestTimeoutMs,
      maxPendingBytes: options.maxPendingBytes,
      leader: () => target.host.leader,
      stopped: () => target.stopped(),
      answer: (m, format, response) => this.#respond(m, format, response),
    });
    const queue = `synod-${options.group}`;
    const t = options.transport;
    const hops = (m: TransportMessage): number => Number(m.headers?.[HOPS_HEADER] ?? 0);
    const incoming = (m: TransportMessage): Incoming => ({
      data: m.data,
      ...(m.headers === undefined ? {} : { headers: m.headers }),
      reply: (bytes) => {
        if (m.reply !== undefined && !t.closed) t.publish(m.reply, bytes);
      },
    });
    this.#servePublicWrites = () =>
      t.subscribe(this.#subjects.write, (m) => this.#onWrite(incoming(m), 0), { queue });
    this.#publicWrites = this.#servePublicWrites();
    t.subscribe(this.#subjects.endpoint(options.nodeId, 'write'), (m) =>
      this.#onWrite(incoming(m), hops(m)),
    );
    t.subscribe(this.#subjects.read, (m) => this.#onRead(incoming(m), 0), { queue });
    t.subscribe(this.#subjects.endpoint(options.nodeId, 'read'), (m) =>
      this.#onRead(incoming(m), hops(m)),
    );
  }

  /**
   * Who this node now knows leads. The public write subject is served by the leader alone
   * while a leader is known, so NATS hands every client's write straight to it instead of
   * to a follower that forwards it (2 of 3 writes, at 2-3x the cost). While no leader is
   * known, every node serves it again, holding writes until one is (or answering NO_QUORUM
   * at the timeout). Between a leader's crash and its followers' election timeout nobody
   * may serve it: a client then gets NATS "no responders" and retries shortly (SynodClient
   * does; the client README says so for plain NATS clients).
   */
  leadershipChanged(leader: string | undefined): void {
    const serve = leader === undefined || leader === this.#o.nodeId;
    if (serve && this.#publicWrites === undefined) this.#publicWrites = this.#servePublicWrites();
    else if (!serve && this.#publicWrites !== undefined) {
      this.#publicWrites.unsubscribe();
      this.#publicWrites = undefined;
    }
  }

  /**
   * A write from this process (the SQL front end of this node), encoded as on the write
   * subject: it takes the same path as one over NATS (admission, forwarding to the leader,
   * the batcher), without two trips through nats-server. Resolves to the encoded answer.
   */
  write(data: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve) => this.#onWrite({ data, reply: resolve }, 0));
  }

  /**
   * A read from this process (the SQL front end's consistency barrier), encoded as on this
   * node's read subject: the same path as one over NATS, without two trips through
   * nats-server. Resolves to the encoded answer.
   */
  read(data: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve) => this.#onRead({ data, reply: resolve }, 0));
  }

  #respond(m: Incoming, format: WireFormat, response: ClientResponse): void {
    m.reply(this.#codec.encodeResponse(response, format));
  }

  /** Decodes a client request, or answers BAD_REQUEST saying what is wrong with it. */
  #decodeOrReject<T>(
    m: Incoming,
    format: WireFormat,
    decode: (data: Uint8Array, contentType: string | undefined) => T,
  ): T | undefined {
    try {
      return decode(m.data, m.headers?.['content-type']);
    } catch (error) {
      this.#respond(
        m,
        format,
        failure('BAD_REQUEST', error instanceof DecodeError ? error.message : String(error)),
      );
      return undefined;
    }
  }

  #onWrite(m: Incoming, hops: number): void {
    const format = detectFormat(m.data, m.headers?.['content-type']);
    const write = this.#decodeOrReject(m, format, (data, type) =>
      this.#codec.decodeWrite(data, type),
    );
    if (write === undefined) return;
    const maxWriteBytes = this.#o.maxWriteBytes;
    if (m.data.length > maxWriteBytes) {
      this.#respond(
        m,
        format,
        failure(
          'BAD_REQUEST',
          `the write is ${m.data.length} bytes; the limit is ${maxWriteBytes} bytes`,
          undefined,
          { limitBytes: maxWriteBytes },
        ),
      );
      return;
    }
    // A membership change is the node's own business, not the state machine's.
    const admission = isMemberOp(write.command.op)
      ? undefined
      : this.#o.asyncMachine?.admit(write.command);
    if (admission instanceof Promise)
      admission.then(
        (answer) => this.#admitted(m, format, hops, write, answer),
        (error: unknown) => this.#respond(m, format, machineFailure(error)),
      );
    else this.#admitted(m, format, hops, write, admission);
  }

  /** A write the machine admitted (perhaps rewritten), or refused. */
  #admitted(
    m: Incoming,
    format: WireFormat,
    hops: number,
    original: ClientWrite,
    admission: Admission | undefined,
  ): void {
    if (admission !== undefined && 'refused' in admission) {
      this.#respond(
        m,
        format,
        failure(
          'BAD_REQUEST',
          admission.refused,
          undefined,
          admission.sqlState === undefined ? {} : { sqlState: admission.sqlState },
        ),
      );
      return;
    }
    const write = admission === undefined ? original : { ...original, command: admission.command };
    if (write.command.op === 'paxos') {
      const key = write.command.key;
      // The group ignores the proposals of a node that is no member: the leader runs it then.
      if (typeof key === 'string' && !this.#r.host.maySpeakFor(`paxos:${key}`))
        this.#toLeader.route(m, format, 'write', hops, m.data, (leftMs) =>
          this.#paxos(m, format, write, leftMs),
        );
      else this.#paxos(m, format, write);
      return;
    }
    const op = write.command.op;
    if (op.startsWith('txn_')) {
      this.#respond(
        m,
        format,
        failure('BAD_REQUEST', `"${op}" is a node's own log entry; clients write "txn"`),
      );
      return;
    }
    // A transaction across groups (`ops`, one or more per group); a SQL group's `txn` with
    // `statements` is a transaction of its own log alone.
    if (op === 'txn' && write.command.ops !== undefined && this.transactions !== undefined) {
      this.#transaction(m, format, hops, write, this.transactions);
      return;
    }
    if (isMemberOp(op)) {
      this.#toLeader.route(m, format, 'write', hops, m.data, () =>
        this.#r.memberChanges.change(op, write.command.node, (response) =>
          this.#respond(m, format, response),
        ),
      );
      return;
    }
    // The leader gets the write as admitted here: a rewritten one carries what it needs.
    const forward = admission === undefined ? m.data : this.#codec.encodeWrite(write, format);
    this.#toLeader.route(m, format, 'write', hops, forward, (leftMs) => {
      const started = this.#r.scheduler.now();
      this.#r.batcher.write(
        write,
        m.data.length,
        (response) => {
          if (response.ok) this.#o.metrics?.committed(this.#r.scheduler.now() - started);
          this.#respond(m, format, response);
        },
        leftMs,
      );
    });
  }

  /**
   * A transaction across groups: its leader numbers it in this group's log (with the commit
   * acceptors and protocol it adds), and the CommitNode answers with the outcome.
   */
  #transaction(
    m: Incoming,
    format: WireFormat,
    hops: number,
    write: ClientWrite,
    coordinator: TransactionCoordinator,
  ): void {
    this.#toLeader.route(m, format, 'write', hops, m.data, (leftMs) => {
      const begin = { ...write, command: coordinator.beginCommand(this.#o.group, write.command) };
      this.#r.batcher.write(
        begin,
        m.data.length,
        (response) => {
          if (!response.ok) this.#respond(m, format, response);
          else
            coordinator.begun(this.#o.group, response.result ?? null, (answer) =>
              this.#respond(m, format, answer),
            );
        },
        leftMs,
      );
    });
  }

  /**
   * Seed 001's paxos(k, v): single-decree Paxos on the register `key`, run by this node (no
   * leader needed). Every caller for the key gets the same value, one of those proposed.
   */
  #paxos(
    m: Incoming,
    format: WireFormat,
    write: ClientWrite,
    timeoutMs = this.#o.requestTimeoutMs,
  ): void {
    const { key, value } = write.command;
    if (typeof key !== 'string' || key === '' || typeof value !== 'string') {
      this.#respond(
        m,
        format,
        failure('BAD_REQUEST', 'paxos needs a string "key" and a string "value"'),
      );
      return;
    }
    let answered = false;
    const timeout = this.#r.scheduler.setTimer(timeoutMs, () => {
      answered = true;
      this.#respond(m, format, failure('NO_QUORUM', `no majority within ${timeoutMs} ms`));
    });
    this.#r.host.paxos(`paxos:${key}`, new TextEncoder().encode(value), (chosen) => {
      if (answered) return;
      timeout.cancel();
      this.#respond(m, format, { ok: true, result: { value: new TextDecoder().decode(chosen) } });
    });
  }

  #onRead(m: Incoming, hops: number): void {
    const format = detectFormat(m.data, m.headers?.['content-type']);
    const read = this.#decodeOrReject(m, format, (data, type) =>
      this.#codec.decodeRead(data, type),
    );
    if (read === undefined) return;
    const refuse = (error: unknown): void => this.#respond(m, format, machineFailure(error));
    const machine = this.#o.asyncMachine;
    const queue = this.#r.queue;
    /** Reads at `slot`, once this node has applied through it. */
    const answer = (slot: number): void => {
      if (machine === undefined || queue === undefined) {
        try {
          this.#respond(m, format, { ok: true, slot, result: this.#r.readState(read.command) });
        } catch (error) {
          refuse(error);
        }
        return;
      }
      queue.whenApplied(slot, () =>
        machine
          .read(read.command)
          .then(
            (result) => this.#respond(m, format, { ok: true, slot: queue.appliedThrough, result }),
            refuse,
          ),
      );
    };
    if (read.consistency === 'optimistic') {
      answer(this.#r.appliedThrough());
      return;
    }
    if (read.consistency === 'linearizable') {
      // The leader confirms it still leads with a majority (ReadIndex, or a log slot while
      // it cannot yet), then answers at the slot it names, applied.
      this.#toLeader.route(m, format, 'read', hops, m.data, (leftMs) =>
        readOnLeader(this.#r, leftMs, (outcome: ReadOutcome) => {
          if ('slot' in outcome) answer(outcome.slot);
          else this.#respond(m, format, outcome.response);
        }),
      );
      return;
    }
    // strong: pg_paxos's read, which holds with or without a leader: highest accepted slot
    // of a majority, applied, then read.
    let answered = false;
    const timeout = this.#r.scheduler.setTimer(this.#o.requestTimeoutMs, () => {
      answered = true;
      cancel(); // stop asking the acceptors: nobody waits for this read any more
      this.#respond(
        m,
        format,
        failure('NO_QUORUM', `no majority answered within ${this.#o.requestTimeoutMs} ms`),
      );
    });
    const cancel = this.#r.host.read((through) => {
      if (answered) return;
      timeout.cancel();
      answer(through);
    });
  }
}
