import { randomUUID } from 'node:crypto';
import {
  type ClientResponse,
  type Command,
  createClientCodec,
  type ErrorCode,
  groupSubjects,
  type PlainData,
  type ReadConsistency,
} from '@synod/protocol';
import { NoRespondersError, type Transport, TransportTimeoutError } from '@synod/transport';

/** A request the group refused or could not serve, with the group's error code. */
export class SynodError extends Error {
  override readonly name = 'SynodError';
  readonly code: ErrorCode;
  readonly leader: string | undefined;
  /** The node's message, without the code in front. */
  readonly reason: string;
  /** A SQL machine's failure: PostgreSQL's SQLSTATE (`reason` is PostgreSQL's message). */
  readonly sqlState: string | undefined;
  /** A write over the node's size limit: the limit, in bytes. */
  readonly limitBytes: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    leader?: string,
    more: { readonly sqlState?: string; readonly limitBytes?: number } = {},
  ) {
    super(`${code}: ${more.sqlState === undefined ? '' : `${more.sqlState} `}${message}`);
    this.code = code;
    this.leader = leader;
    this.reason = message;
    this.sqlState = more.sqlState;
    this.limitBytes = more.limitBytes;
  }
}

export interface SynodClientOptions {
  readonly transport: Transport;
  readonly group: string;
  /** Identifies this client's writes; a random id by default. One write in flight per id. */
  readonly clientId?: string;
  /**
   * Send writes to this node, which forwards them to the leader, instead of to the leader
   * itself: for a write the node that takes it admits with its own state (the SQL machine's
   * replicate reads the table's definition there).
   */
  readonly via?: string;
  /**
   * Hands writes to a node in this process instead of sending them over NATS (the SQL front
   * end embedded in a node: NodeRuntime.write). Takes the encoded write, gives the encoded
   * answer; retries and (clientId, seq) work as over NATS.
   */
  readonly local?: (write: Uint8Array) => Promise<Uint8Array>;
  /** Per attempt. Default 2,000 ms. */
  readonly timeoutMs?: number;
  /** Attempts per request before giving up. Default 8. */
  readonly attempts?: number;
}

export interface Answer {
  readonly slot?: number;
  readonly result: PlainData;
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  'NOT_LEADER',
  'BUSY',
  'NO_QUORUM',
  'TIMEOUT',
  'UNAVAILABLE',
]);

/**
 * A client of one group. Writes carry (clientId, seq) and are retried with the same pair
 * when the outcome is unknown (timeout, leader change), so each is applied once.
 */
/** One write of a transaction: a put, delete or cas (a condition) in one group. */
export type TxnOp =
  | { readonly group: string; readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly group: string; readonly op: 'delete'; readonly key: string }
  | {
      readonly group: string;
      readonly op: 'cas';
      readonly key: string;
      readonly expect: string | null;
      readonly value: string;
    };

export class SynodClient {
  readonly clientId: string;
  readonly #o: SynodClientOptions;
  readonly #subjects;
  readonly #codec = createClientCodec();
  #seq = 0;
  #writing: Promise<unknown> = Promise.resolve();
  /** The leader this client sends writes to, saving a follower's forward (undefined: ask any node). */
  #leader: string | undefined;
  #leaderLookup: Promise<void> | undefined;

  constructor(options: SynodClientOptions) {
    this.#o = options;
    this.#subjects = groupSubjects(options.group);
    this.clientId = options.clientId ?? randomUUID();
  }

  put(key: string, value: string): Promise<Answer> {
    return this.write({ op: 'put', key, value });
  }

  delete(key: string): Promise<Answer> {
    return this.write({ op: 'delete', key });
  }

  cas(key: string, expect: string | null, value: string): Promise<Answer> {
    return this.write({ op: 'cas', key, expect, value });
  }

  /**
   * A kv transaction across groups, coordinated by this client's group: every write or none
   * (README, "Transactions across groups"). The result is `{ txid, outcome, committed }`.
   */
  txn(ops: readonly TxnOp[]): Promise<Answer> {
    return this.write({ op: 'txn', ops: ops.map((o) => ({ ...o })) });
  }

  async get(key: string, consistency: ReadConsistency = 'strong'): Promise<Answer> {
    return this.read({ op: 'get', key }, consistency);
  }

  /** The log machine: appends an opaque value; the result is `{ index }`. */
  append(value: string): Promise<Answer> {
    return this.write({ op: 'append', value });
  }

  /** The log machine: values from `from` (default 0), at most `limit` (default 100). */
  entries(
    options: { from?: number; limit?: number } = {},
    consistency: ReadConsistency = 'strong',
  ): Promise<Answer> {
    return this.read({ op: 'entries', ...options }, consistency);
  }

  /**
   * The SQL machine: `table` (which must exist on the node that takes the write) becomes
   * replicated: its definition enters the log, nodes without the table create it, and each
   * node routes the table's writes through the log once it has applied this entry. The
   * result is `{ replicated: table }`.
   */
  replicateTable(table: string): Promise<Answer> {
    return this.write({ op: 'replicate', table });
  }

  /** The SQL machine: the replicated tables, `{ tables: [...] }`. */
  tables(consistency: ReadConsistency = 'strong'): Promise<Answer> {
    return this.read({ op: 'tables' }, consistency);
  }

  /**
   * pg_paxos's paxos_join_group: makes `node` a member of the group (it must run, started
   * with --join). The answer comes once the new members decide: `{ members, effectiveFromSlot }`.
   * Asking for a member that is already one answers at once.
   */
  join(node: string): Promise<Answer> {
    return this.write({ op: 'join', node });
  }

  /** Removes `node` from the members; once answered, the node can be shut down. */
  leave(node: string): Promise<Answer> {
    return this.write({ op: 'leave', node });
  }

  /** Seed 001's paxos(key, value): the value chosen for the key (the same for every caller). */
  async paxos(key: string, value: string): Promise<string> {
    const answer = await this.write({ op: 'paxos', key, value });
    return (answer.result as { value: string }).value;
  }

  /** Writes one command. Writes of one client go one at a time, in order. */
  write(command: Command): Promise<Answer> {
    const run = this.#writing.then(async () => {
      this.#seq += 1;
      const body = this.#codec.encodeWrite({ clientId: this.clientId, seq: this.#seq, command });
      const via = this.#o.via;
      const local = this.#o.local;
      if (local === undefined && via === undefined && this.#leader === undefined)
        await this.#findLeader();
      return this.#request(
        () => {
          const target = via ?? this.#leader;
          return target === undefined
            ? this.#subjects.write
            : this.#subjects.endpoint(target, 'write');
        },
        body,
        local,
      );
    });
    this.#writing = run.catch(() => undefined);
    return run;
  }

  read(command: Command, consistency: ReadConsistency = 'strong'): Promise<Answer> {
    return this.#request(
      () => this.#subjects.read,
      this.#codec.encodeRead({ command, consistency }),
    );
  }

  /** Asks the group's nodes who leads (`status`); the first answer naming a leader wins. */
  #findLeader(): Promise<void> {
    this.#leaderLookup ??= this.#o.transport
      .gather(this.#subjects.status, new Uint8Array(0), {
        timeoutMs: 200,
        maxReplies: 16,
        map: (m) => {
          const leader = (JSON.parse(new TextDecoder().decode(m.data)) as { leader?: unknown })
            .leader;
          return typeof leader === 'string' ? leader : undefined;
        },
        until: (leaders) => leaders.length > 0,
      })
      .then(
        (result) => {
          this.#leader = result.replies[0];
        },
        () => undefined,
      )
      .finally(() => {
        this.#leaderLookup = undefined;
      });
    return this.#leaderLookup;
  }

  async #request(
    subject: () => string,
    body: Uint8Array,
    local?: (body: Uint8Array) => Promise<Uint8Array>,
  ): Promise<Answer> {
    const attempts = this.#o.attempts ?? 8;
    let last: SynodError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1_000, 25 * 2 ** attempt)));
      let response: ClientResponse;
      try {
        const timeoutMs = this.#o.timeoutMs ?? 2_000;
        const data =
          local === undefined
            ? (await this.#o.transport.request(subject(), body, { timeoutMs })).data
            : await withTimeout(local(body), timeoutMs, 'the local node');
        response = this.#codec.decodeResponse(data);
      } catch (error) {
        // The leader we knew may be gone: ask the whole group from now on.
        this.#leader = undefined;
        if (error instanceof TransportTimeoutError) last = new SynodError('TIMEOUT', error.message);
        else if (error instanceof NoRespondersError)
          last = new SynodError('UNAVAILABLE', `no synod node serves group ${this.#o.group}`);
        else throw error;
        continue;
      }
      if (response.ok)
        return response.slot === undefined
          ? { result: response.result }
          : { slot: response.slot, result: response.result };
      last = new SynodError(
        response.error.code,
        response.error.message,
        response.error.leader,
        response.error,
      );
      if (response.error.code === 'NOT_LEADER') this.#leader = response.error.leader;
      if (!RETRYABLE.has(response.error.code)) throw last;
      // A busy node says when to come back: wait that long (and a little, so that the clients
      // it turned away do not all come back at once) before the usual backoff.
      const retryAfterMs = response.error.retryAfterMs;
      if (response.error.code === 'BUSY' && retryAfterMs !== undefined)
        await new Promise((r) => setTimeout(r, retryAfterMs * (1 + Math.random())));
    }
    throw last ?? new SynodError('UNAVAILABLE', 'no attempt was made');
  }
}

/** `promise`, or TransportTimeoutError once `timeoutMs` have passed (a stopped node never answers). */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportTimeoutError(what, timeoutMs)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
