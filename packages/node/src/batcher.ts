import type { SubmitResult } from '@synod/host';
import type { ClientResponse, ClientWrite } from '@synod/protocol';
import { realScheduler, type Scheduler } from '@synod/transport';
import { encodeBarrier, encodeBatch } from './batch.js';

/** Most request bytes packed into one slot, so an accept message stays under 1 MiB. */
export const MAX_BATCH_BYTES = 512 * 1024;
/** What a linearizable read adds to a batch, for the byte bound. */
const READ_BYTES = 16;
/**
 * Default most request bytes of writes the leader holds unanswered (queued here, in phase 2,
 * or chosen and not yet applied), and most of one client. Beyond them a write is answered
 * BUSY at once: memory stays bounded in a burst instead of growing until the process is
 * killed, and the slots already in flight are not starved.
 */
export const MAX_PENDING_BYTES = 32 * 1024 * 1024;
export const MAX_PENDING_BYTES_PER_CLIENT = 8 * 1024 * 1024;
/** A BUSY answer's retry hint: longer the fuller the leader is. */
const BUSY_RETRY_MS = 100;

export interface BatcherOptions {
  readonly nodeId: string;
  /** Most client writes in one slot. */
  readonly maxBatch: number;
  /** A request not answered in this time gets NO_QUORUM (unless it says how long it has left). */
  readonly timeoutMs: number;
  /** Where its timeouts run (real time unless a test or the simulator drives it). */
  readonly scheduler?: Scheduler;
  /** See MAX_PENDING_BYTES and MAX_PENDING_BYTES_PER_CLIENT. */
  readonly maxPendingBytes?: number;
  readonly maxPendingBytesPerClient?: number;
  /** Hands a slot's value to the leader machine (GroupHost.submit). */
  submit(value: Uint8Array, done: (result: SubmitResult) => void): void;
  appliedThrough(): number;
}

type Entry =
  | {
      readonly kind: 'write';
      readonly write: ClientWrite;
      readonly bytes: number;
      /** In a slot of its own. */
      readonly alone: boolean;
    }
  | { readonly kind: 'read'; readonly settle: (outcome: ReadOutcome) => void };

/** A linearizable read may be served at `slot`, or failed with `response`. */
export type ReadOutcome = { readonly slot: number } | { readonly response: ClientResponse };

const failure = (code: 'NO_QUORUM' | 'NOT_LEADER', message: string, leader?: string) => ({
  response: {
    ok: false,
    error: { code, message, ...(leader === undefined ? {} : { leader }) },
  } as ClientResponse,
});

/**
 * The leader's side of the client API: packs the writes and linearizable reads that arrive
 * in one turn of the event loop into one slot (batching), and answers each write once its
 * slot is applied. A read rides in the slot too: once that slot is chosen, a majority took
 * it at this leader's ballot (the leader was still the leader), and once it is applied the
 * leader's state holds every write acknowledged before the read began.
 */
export class Batcher {
  readonly #o: BatcherOptions;
  readonly #scheduler: Scheduler;
  readonly #waiting = new Map<string, ((response: ClientResponse) => void)[]>();
  #entries: Entry[] = [];
  /** Reads whose slot is chosen, waiting for it to be applied here. */
  #readsAfter: { readonly slot: number; readonly settle: (outcome: ReadOutcome) => void }[] = [];
  #barriers = 0;
  #flushScheduled = false;
  /** Request bytes of writes not answered yet, in all and by client. */
  #pendingBytes = 0;
  readonly #pendingByClient = new Map<string, number>();

  constructor(options: BatcherOptions) {
    this.#o = options;
    this.#scheduler = options.scheduler ?? realScheduler;
  }

  /**
   * Queues a write; `reply` gets its result once applied, NO_QUORUM after `timeoutMs` (what is
   * left of the client's time: it may have waited at a follower for this node to lead), or BUSY
   * at once when the leader already holds as many bytes as it may (in all, or of this client).
   * `alone`: the write gets a slot of its own (a SQL group's PREPARE TRANSACTION ends the
   * database transaction a batch would share).
   */
  write(
    write: ClientWrite,
    bytes: number,
    reply: (response: ClientResponse) => void,
    timeoutMs = this.#o.timeoutMs,
    alone = false,
  ): void {
    const busy = this.#busy(write.clientId, bytes);
    if (busy !== undefined) {
      reply(busy);
      return;
    }
    this.#hold(write.clientId, bytes);
    let held = true;
    const release = (): void => {
      if (held) this.#hold(write.clientId, -bytes);
      held = false;
    };
    const key = `${write.clientId}\u0000${write.seq}`;
    const timeout = this.#scheduler.setTimer(timeoutMs, () => {
      release();
      const waiters = this.#waiting.get(key);
      if (waiters === undefined) return;
      const index = waiters.indexOf(answer);
      if (index >= 0) waiters.splice(index, 1);
      if (waiters.length === 0) this.#waiting.delete(key);
      reply(failure('NO_QUORUM', `write not committed within ${timeoutMs} ms`).response);
    });
    const answer = (response: ClientResponse): void => {
      timeout.cancel();
      release();
      reply(response);
    };
    const waiters = this.#waiting.get(key) ?? [];
    waiters.push(answer);
    this.#waiting.set(key, waiters);
    this.#push({ kind: 'write', write, bytes, alone });
  }

  /**
   * Queues a linearizable read; `settle` says at which applied slot to serve it, or fails it
   * after `timeoutMs` (what is left of the client's time).
   */
  read(settle: (outcome: ReadOutcome) => void, timeoutMs = this.#o.timeoutMs): void {
    let settled = false;
    const once = (outcome: ReadOutcome): void => {
      if (settled) return;
      settled = true;
      timeout.cancel();
      settle(outcome);
    };
    const timeout = this.#scheduler.setTimer(timeoutMs, () =>
      once(failure('NO_QUORUM', `read not confirmed within ${timeoutMs} ms`)),
    );
    this.#push({ kind: 'read', settle: once });
  }

  /** The write's result, to everyone waiting for it (called as its slot is applied). */
  answer(write: ClientWrite, response: ClientResponse): void {
    const key = `${write.clientId}\u0000${write.seq}`;
    const waiters = this.#waiting.get(key);
    this.#waiting.delete(key);
    for (const waiter of waiters ?? []) waiter(response);
  }

  /** `slot` is applied here: reads that waited for it may be served. */
  applied(slot: number): void {
    if (this.#readsAfter.length === 0) return;
    const ready = this.#readsAfter.filter((r) => r.slot <= slot);
    this.#readsAfter = this.#readsAfter.filter((r) => r.slot > slot);
    for (const read of ready) read.settle({ slot: read.slot });
  }

  /** Request bytes of writes this leader holds unanswered. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  #busy(clientId: string, bytes: number): ClientResponse | undefined {
    const max = this.#o.maxPendingBytes ?? MAX_PENDING_BYTES;
    const maxOfClient = this.#o.maxPendingBytesPerClient ?? MAX_PENDING_BYTES_PER_CLIENT;
    const ofClient = this.#pendingByClient.get(clientId) ?? 0;
    // One write always goes when nothing is held: a limit below one write must not lock it out.
    const full = this.#pendingBytes > 0 && this.#pendingBytes + bytes > max;
    const clientFull = ofClient > 0 && ofClient + bytes > maxOfClient;
    if (!full && !clientFull) return undefined;
    const fill = Math.min(4, this.#pendingBytes / max);
    return {
      ok: false,
      error: {
        code: 'BUSY',
        message: full
          ? `the leader holds ${this.#pendingBytes} bytes of writes not yet applied (limit ${max})`
          : `client ${clientId} has ${ofClient} bytes of writes not yet applied (limit ${maxOfClient})`,
        retryAfterMs: Math.round(BUSY_RETRY_MS * (1 + fill)),
      },
    };
  }

  #hold(clientId: string, bytes: number): void {
    this.#pendingBytes += bytes;
    const ofClient = (this.#pendingByClient.get(clientId) ?? 0) + bytes;
    if (ofClient > 0) this.#pendingByClient.set(clientId, ofClient);
    else this.#pendingByClient.delete(clientId);
  }

  #push(entry: Entry): void {
    this.#entries.push(entry);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // What arrives in the same turn of the event loop shares one slot.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    while (this.#entries.length > 0) {
      let count = 0;
      let writes = 0;
      let bytes = 0;
      for (const entry of this.#entries) {
        const alone = entry.kind === 'write' && entry.alone;
        if (alone && count > 0) break;
        const size = entry.kind === 'write' ? entry.bytes : READ_BYTES;
        if (entry.kind === 'write' && writes >= this.#o.maxBatch) break;
        if (count > 0 && bytes + size > MAX_BATCH_BYTES) break;
        bytes += size;
        count += 1;
        if (entry.kind === 'write') writes += 1;
        if (alone) break;
      }
      this.#submit(this.#entries.splice(0, count));
    }
  }

  #submit(entries: readonly Entry[]): void {
    const writes = entries.flatMap((e) => (e.kind === 'write' ? [e.write] : []));
    const reads = entries.flatMap((e) => (e.kind === 'read' ? [e.settle] : []));
    // A slot of reads alone carries a barrier unique to this node, so it is never mistaken
    // for another slot with the same bytes.
    const value =
      writes.length > 0
        ? encodeBatch(writes)
        : encodeBarrier(`${this.#o.nodeId}:${++this.#barriers}`);
    this.#o.submit(value, (result) => {
      if (result.ok) {
        for (const settle of reads) {
          if (this.#o.appliedThrough() >= result.slot) settle({ slot: result.slot });
          else this.#readsAfter.push({ slot: result.slot, settle });
        }
        return; // writes are answered as their slot is applied
      }
      const message = 'leadership changed; retry with the same clientId and seq';
      for (const write of writes)
        this.answer(write, failure('NOT_LEADER', message, result.leader).response);
      for (const settle of reads)
        settle(failure('NOT_LEADER', 'leadership changed; retry the read', result.leader));
    });
  }
}
