import type { GroupHost } from '@synod/host';
import {
  type ClientResponse,
  type ClientWrite,
  type Command,
  createClientCodec,
  DecodeError,
  detectFormat,
  type ErrorBody,
  type ErrorCode,
  groupSubjects,
  type PlainData,
  type WireFormat,
} from '@synod/protocol';
import type { Scheduler, Subscription, TransportMessage } from '@synod/transport';
import type { ApplyQueue } from './apply-queue.js';
import type { Admission } from './async-machine.js';
import type { Batcher, ReadOutcome } from './batcher.js';
import { isMemberOp, type MemberChanges } from './member-changes.js';
import type { ResolvedRuntimeOptions } from './runtime-options.js';

const HOPS_HEADER = 'synod-hops';
const MAX_HOPS = 3;
/** How long a follower waits for the leader to answer a forwarded request before routing it again. */
const FORWARD_TIMEOUT_MS = 1_000;

/** A client request, from NATS or from this process, and where its answer goes. */
interface Incoming {
  readonly data: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sends the encoded answer (a forwarded request's answer as the leader encoded it). */
  reply(answer: Uint8Array): void;
}

/** A failed request's answer. */
export function failure(
  code: ErrorCode,
  message: string,
  leader?: string,
  more: Pick<ErrorBody, 'sqlState' | 'limitBytes'> = {},
): ClientResponse {
  return {
    ok: false,
    error: { code, message, ...(leader === undefined ? {} : { leader }), ...more },
  };
}

/** A machine's error as a client is told it: its SQLSTATE too, when it has one. */
export function machineFailure(error: unknown): ClientResponse {
  const message = error instanceof Error ? error.message : String(error);
  // Duck-typed: the node does not depend on the SQL machine's error class.
  const state = (error as { sqlState?: unknown } | null)?.sqlState;
  return failure(
    'BAD_REQUEST',
    message,
    undefined,
    typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state) ? { sqlState: state } : {},
  );
}

/**
 * What the client API needs of the node runtime: only the members it calls, so a test can
 * hand it stand-ins.
 */
export interface RequestTarget {
  readonly host: Pick<GroupHost, 'leader' | 'maySpeakFor' | 'paxos' | 'read'>;
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

/**
 * The client API of one node: writes and reads on `synod.<group>.write` and `.read` (any node
 * of the group, a queue group) and on the node's own subjects (forwarded requests), msgpack or
 * JSON. A follower forwards writes and linearizable reads to the leader; the leader admits
 * writes to the batcher, which answers each once its slot is applied. paxos(k, v) runs here.
 */
export class ClientRequests {
  readonly #o: ResolvedRuntimeOptions;
  readonly #r: RequestTarget;
  readonly #codec = createClientCodec();
  readonly #subjects;
  /** Request bytes this node forwarded to the leader and holds until it answers. */
  #forwardedBytes = 0;
  /** This node's subscription to the public write subject, while it serves it. */
  #publicWrites: Subscription | undefined;
  readonly #servePublicWrites: () => Subscription;

  constructor(options: ResolvedRuntimeOptions, target: RequestTarget) {
    this.#o = options;
    this.#r = target;
    this.#subjects = groupSubjects(options.group);
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
        this.#viaLeader(m, format, 'write', hops, m.data, (leftMs) =>
          this.#paxos(m, format, write, leftMs),
        );
      else this.#paxos(m, format, write);
      return;
    }
    const op = write.command.op;
    if (isMemberOp(op)) {
      this.#viaLeader(m, format, 'write', hops, m.data, () =>
        this.#r.memberChanges.change(op, write.command.node, (response) =>
          this.#respond(m, format, response),
        ),
      );
      return;
    }
    // The leader gets the write as admitted here: a rewritten one carries what it needs.
    const forward = admission === undefined ? m.data : this.#codec.encodeWrite(write, format);
    this.#viaLeader(m, format, 'write', hops, forward, (leftMs) => {
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
   * Runs `atLeader` if this node leads, with what is left of the request's time (the client's
   * deadline holds even when this node waited to become leader); otherwise forwards the
   * request to the leader as a request of its own, and routes it again if that leader does
   * not answer (it may have died before anyone noticed; a write's (clientId, seq) is applied
   * once however often it is sent).
   */
  #viaLeader(
    m: Incoming,
    format: WireFormat,
    kind: 'write' | 'read',
    hops: number,
    forward: Uint8Array,
    atLeader: (leftMs: number) => void,
  ): void {
    const clock = this.#r.scheduler;
    const deadline = clock.now() + this.#o.requestTimeoutMs;
    // A follower holds what it forwards until the leader answers: bounded, like the leader's.
    const max = this.#o.maxPendingBytes;
    if (this.#forwardedBytes > 0 && this.#forwardedBytes + forward.length > max) {
      this.#respond(m, format, {
        ok: false,
        error: {
          code: 'BUSY',
          message: `node ${this.#o.nodeId} is forwarding ${this.#forwardedBytes} bytes to the leader (limit ${max})`,
          retryAfterMs: 100,
        },
      });
      return;
    }
    let held = 0;
    const hold = (bytes: number): void => {
      this.#forwardedBytes += bytes - held;
      held = bytes;
    };
    const request: Incoming = {
      ...m,
      reply: (answer) => {
        hold(0);
        m.reply(answer);
      },
    };
    const route = (): void => {
      if (this.#r.stopped()) {
        hold(0);
        return;
      }
      const leader = this.#r.host.leader;
      if (leader === this.#o.nodeId) {
        hold(0);
        atLeader(Math.max(1, deadline - clock.now()));
      } else if (leader !== undefined && hops < MAX_HOPS) {
        hold(forward.length);
        const forwardMs = Math.max(100, Math.min(FORWARD_TIMEOUT_MS, deadline - clock.now()));
        this.#o.transport
          .request(this.#subjects.endpoint(leader, kind), forward, {
            timeoutMs: forwardMs,
            headers: { ...request.headers, [HOPS_HEADER]: String(hops + 1) },
          })
          .then(
            (answer) => {
              if (!this.#r.stopped()) request.reply(answer.data);
            },
            () => {
              if (clock.now() < deadline) clock.setTimer(50, route);
              else
                this.#respond(
                  request,
                  format,
                  failure(
                    'NO_QUORUM',
                    `the leader of group ${this.#o.group} did not answer within the timeout`,
                  ),
                );
            },
          );
      } else if (clock.now() < deadline) {
        clock.setTimer(20, route);
      } else {
        this.#respond(
          request,
          format,
          failure('NO_QUORUM', `no leader for group ${this.#o.group} within the timeout`, leader),
        );
      }
    };
    route();
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
      // The leader confirms it still leads with a majority (the read rides in a slot at its
      // ballot), then answers at that slot, applied.
      this.#viaLeader(m, format, 'read', hops, m.data, (leftMs) =>
        this.#r.batcher.read((outcome: ReadOutcome) => {
          if ('slot' in outcome) answer(outcome.slot);
          else this.#respond(m, format, outcome.response);
        }, leftMs),
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
