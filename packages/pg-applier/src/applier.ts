import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ClientBase, DatabaseError, type QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { withTotalOrder } from './total-order.js';
import { errorDigest, resultDigest, type TxnStatement } from './transaction-entry.js';
import { EXPECT_APPLIED_FUNCTION, FIRST_TRIP_PREFIX, firstTrip, secondTrip } from './two-trips.js';

/** One client write of a log entry: a statement, its parameters, and who sent it. */
export interface SqlWrite {
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** For COPY ... FROM STDIN: the rows, in the statement's format (text or csv). */
  readonly copy?: string;
  /** With clientId and seq, a retried write (same pair) is applied once: see PgApplier.apply. */
  readonly clientId?: string;
  readonly seq?: number;
  /**
   * Refused where it was checked again before applying (a log entry that is not a write of a
   * replicated table): nothing runs, and this is its outcome on every replica.
   */
  readonly refused?: { readonly sqlState: string; readonly message: string };
  /**
   * A transaction (transaction-entry.ts): its statements run in one savepoint and are kept
   * only if each gives the result the client was given; `sql` is unused.
   */
  readonly txn?: readonly TxnStatement[];
}

/** A committed log slot's writes (a batch), in the order they are to be applied. */
export interface SqlEntry {
  readonly slot: number;
  readonly writes: readonly SqlWrite[];
}

/**
 * What a write did: its command tag, row count and returned rows, or PostgreSQL's error.
 * The same on every replica: replicas start equal and apply the same statements in order.
 */
export type WriteOutcome =
  | {
      readonly ok: true;
      readonly command: string;
      readonly rowCount: number;
      /** Rows a write returned (RETURNING), every value in PostgreSQL's text format. */
      readonly rows: readonly Record<string, string | null>[];
      /** The returned columns, with their types, when there are any. */
      readonly fields?: readonly ResultField[];
    }
  | { readonly ok: false; readonly sqlState: string; readonly message: string };

/** A returned column as PostgreSQL describes it (what a RowDescription carries). */
export interface ResultField {
  readonly name: string;
  readonly tableID: number;
  readonly columnID: number;
  readonly dataTypeID: number;
  readonly dataTypeSize: number;
  readonly dataTypeModifier: number;
}

/**
 * pg's parsing of values switched off: values stay in PostgreSQL's text format. Writes'
 * returned values are kept so (text keeps every type exact in the outcome kept for retries),
 * and the wire front end hands results on so.
 */
export const TEXT_VALUES = { getTypeParser: () => (value: string) => value };

function succeeded(result: QueryResult): WriteOutcome {
  const fields = result.fields.map((f) => ({
    name: f.name,
    tableID: f.tableID,
    columnID: f.columnID,
    dataTypeID: f.dataTypeID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
  }));
  return {
    ok: true,
    command: result.command,
    rowCount: result.rowCount ?? 0,
    rows: result.rows as Record<string, string | null>[],
    ...(fields.length === 0 ? {} : { fields }),
  };
}

/** Entries must come in slot order with no hole: the log is applied as a prefix. */
export class SlotGapError extends Error {
  override readonly name = 'SlotGapError';
}

/**
 * The database says it applied a slot this node never gave it: its bookkeeping was moved on
 * behind the node's back (through `--pg`, say), and the entries in between would be skipped
 * without ever running here. Nothing of the call is applied.
 */
export class SlotAheadError extends Error {
  override readonly name = 'SlotAheadError';
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS synod.applied (
  group_name text PRIMARY KEY,
  slot bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS synod.replicated (
  group_name text NOT NULL,
  table_name text NOT NULL,
  PRIMARY KEY (group_name, table_name)
);
CREATE TABLE IF NOT EXISTS synod.sql_users (
  group_name text NOT NULL,
  name text NOT NULL,
  scram jsonb NOT NULL,
  PRIMARY KEY (group_name, name)
);
CREATE TABLE IF NOT EXISTS synod.staged (
  group_name text NOT NULL,
  stage_id text NOT NULL,
  part int NOT NULL,
  slot bigint NOT NULL,
  rows text NOT NULL,
  PRIMARY KEY (group_name, stage_id, part)
);
CREATE TABLE IF NOT EXISTS synod.sessions (
  group_name text NOT NULL,
  client_id text NOT NULL,
  seq bigint NOT NULL,
  outcome jsonb NOT NULL,
  PRIMARY KEY (group_name, client_id)
);`;

/** The `synod` schema and its tables, where they are missing. */
export async function createBookkeeping(client: ClientBase): Promise<void> {
  // Only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS,
  // and a SQL node's apply role has not (roles.ts makes the schema for it).
  const schema = await client.query<{ missing: boolean }>(
    "SELECT to_regnamespace('synod') IS NULL AS missing",
  );
  if (schema.rows[0]?.missing === true) await client.query('CREATE SCHEMA IF NOT EXISTS synod');
  await client.query(SCHEMA);
}

/**
 * Applies a group's committed SQL to one PostgreSQL database, in slot order, exactly once.
 *
 * Every call to apply() is one transaction: the entries' writes, each client's last
 * (seq, outcome), and the group's applied slot in `synod.applied` commit together or not at
 * all, so a crash at any moment neither skips nor repeats an entry. A write that fails
 * (a constraint, a type error) is rolled back to a savepoint and its error becomes its
 * outcome: the entry still counts as applied, and every replica fails it the same way.
 */
export class PgApplier {
  readonly #client: ClientBase;
  readonly #group: string;
  /**
   * What this applier last committed: the applied slot and its clients' sessions, so the
   * two-trip path needs no query to read them. Dropped after anything unusual (a failure,
   * the slower paths); the slot check in the transaction catches an outdated copy.
   */
  #applied: number | undefined;
  readonly #sessions = new Map<string, Session>();
  /**
   * The highest slot this database may have applied: where it stood when this applier
   * opened, or the last slot given to apply() since. A lost COMMIT acknowledgement leaves the
   * database ahead of what the caller knows, never ahead of this.
   */
  #highestGiven: number;

  private constructor(client: ClientBase, group: string, applied: number) {
    this.#client = client;
    this.#group = group;
    this.#highestGiven = applied;
  }

  /** Creates the synod schema if needed. The client is this applier's alone. */
  static async open(client: ClientBase, group: string): Promise<PgApplier> {
    await createBookkeeping(client);
    await client.query(EXPECT_APPLIED_FUNCTION);
    await client.query(
      'INSERT INTO synod.applied (group_name, slot) VALUES ($1, -1) ON CONFLICT DO NOTHING',
      [group],
    );
    const applier = new PgApplier(client, group, -1);
    applier.#highestGiven = await applier.appliedThrough();
    return applier;
  }

  /** The last slot applied to this database (-1: none). */
  async appliedThrough(): Promise<number> {
    const result = await this.#client.query<{ slot: string }>(
      'SELECT slot FROM synod.applied WHERE group_name = $1',
      [this.#group],
    );
    return Number(result.rows[0]?.slot ?? -1);
  }

  /**
   * Applies the entries after the applied slot (earlier ones are skipped: they were applied
   * before a crash or a retry). Returns each applied entry's outcomes, by slot. A write whose
   * (clientId, seq) was applied before gets its first outcome and is not run again; one with
   * an older seq fails with SQLSTATE 22023. Throws SlotGapError (applying nothing) when an
   * entry would leave a hole, SlotAheadError when the database claims a slot it was never
   * given, and rethrows connection failures (the transaction is then lost
   * whole).
   */
  async apply(entries: readonly SqlEntry[]): Promise<Map<number, WriteOutcome[]>> {
    for (const entry of entries) this.#highestGiven = Math.max(this.#highestGiven, entry.slot);
    const outcomes = await this.#applyNew(entries);
    // Entries this database has already (a peer's state was installed over them) are not run
    // again; their writes still get their outcomes, from the sessions that came with it.
    const skipped = entries.filter((e) => !outcomes.has(e.slot));
    if (skipped.length > 0) {
      const sessions = await this.#loadSessions(skipped);
      for (const entry of skipped) {
        const list = entry.writes.map((w) => {
          const last = w.clientId === undefined ? undefined : sessions.get(w.clientId);
          return last !== undefined && last.seq === w.seq ? last.outcome : undefined;
        });
        if (list.every((o): o is WriteOutcome => o !== undefined)) outcomes.set(entry.slot, list);
      }
    }
    return outcomes;
  }

  async #applyNew(entries: readonly SqlEntry[]): Promise<Map<number, WriteOutcome[]>> {
    // Most batches fail nothing: run them without a savepoint per write, in two round trips
    // when they have no parameters, else one per write. If a write fails, that transaction
    // is void: run the batch again, this time with a savepoint around each write, so the
    // failure is that write's outcome alone. Every path gives the same outcomes.
    try {
      const quick = await this.#twoTrips(entries);
      if (quick === 'failed') return (await this.#run(entries, true))!;
      if (quick !== 'unsuited') return quick;
      this.#forget();
      const fast = await this.#run(entries, false);
      return fast ?? (await this.#run(entries, true))!;
    } catch (error) {
      this.#forget();
      throw error;
    }
  }

  #forget(): void {
    this.#applied = undefined;
    this.#sessions.clear();
  }

  /**
   * The batch in two round trips (two-trips.ts), when it suits: no parameters, at most one
   * write per client, no write applied before, no hole after the applied slot as last
   * committed here. 'failed' when a write failed (nothing committed).
   */
  async #twoTrips(
    entries: readonly SqlEntry[],
  ): Promise<Map<number, WriteOutcome[]> | 'unsuited' | 'failed'> {
    const c = this.#client;
    this.#applied ??= await this.appliedThrough();
    const applied = this.#applied;
    const todo = [...entries].sort((a, b) => a.slot - b.slot).filter((e) => e.slot > applied);
    if (todo.length === 0 || todo.some((e, i) => e.slot !== applied + 1 + i)) return 'unsuited';
    const writes = todo.flatMap((e) => e.writes);
    const clients = writes.flatMap((w) => (w.clientId === undefined ? [] : [w.clientId]));
    if (
      writes.length === 0 ||
      writes.some(
        (w) =>
          (w.params !== undefined && w.params.length > 0) ||
          w.copy !== undefined ||
          w.refused !== undefined ||
          w.txn !== undefined,
      ) ||
      new Set(clients).size !== clients.length
    )
      return 'unsuited';
    const unknown = clients.filter((id) => !this.#sessions.has(id));
    if (unknown.length > 0)
      for (const [id, session] of await this.#readSessions(unknown))
        this.#sessions.set(id, session);
    if (
      writes.some((w) => {
        const last = w.clientId === undefined ? undefined : this.#sessions.get(w.clientId);
        return last !== undefined && w.seq !== undefined && w.seq <= last.seq;
      })
    )
      return 'unsuited';
    let results: QueryResult[];
    try {
      const result = await c.query({
        text: firstTrip(
          this.#group,
          applied,
          writes.map((w) => w.sql),
        ),
        types: TEXT_VALUES,
      });
      results = (Array.isArray(result) ? result : [result]) as QueryResult[];
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (!(error instanceof DatabaseError)) throw error;
      // 40001: another applier moved the slot; the slower path reads it under its lock.
      return error.code === '40001' ? 'unsuited' : 'failed';
    }
    // A write that was itself several statements: the results do not line up.
    if (results.length !== FIRST_TRIP_PREFIX + writes.length) {
      await c.query('ROLLBACK');
      return 'failed';
    }
    const outcomes = new Map<number, WriteOutcome[]>();
    const sessions: { clientId: string; seq: number; outcome: WriteOutcome }[] = [];
    let at = FIRST_TRIP_PREFIX;
    for (const entry of todo) {
      const list: WriteOutcome[] = [];
      for (const write of entry.writes) {
        const result = results[at++]!;
        const outcome = succeeded(result);
        if (write.clientId !== undefined && write.seq !== undefined)
          sessions.push({ clientId: write.clientId, seq: write.seq, outcome });
        list.push(outcome);
      }
      outcomes.set(entry.slot, list);
    }
    const last = todo.at(-1)!.slot;
    await c.query(secondTrip(this.#group, last, sessions));
    this.#applied = last;
    for (const { clientId, seq, outcome } of sessions)
      this.#sessions.set(clientId, { seq, outcome });
    return outcomes;
  }

  /** One transaction; undefined when `guarded` is false and a write failed (nothing committed). */
  async #run(
    entries: readonly SqlEntry[],
    guarded: boolean,
  ): Promise<Map<number, WriteOutcome[]> | undefined> {
    const outcomes = new Map<number, WriteOutcome[]>();
    const c = this.#client;
    await c.query('BEGIN');
    try {
      const locked = await c.query<{ slot: string }>(
        'SELECT slot FROM synod.applied WHERE group_name = $1 FOR UPDATE',
        [this.#group],
      );
      let applied = Number(locked.rows[0]?.slot ?? -1);
      if (applied > this.#highestGiven)
        throw new SlotAheadError(
          `the database says slot ${applied} is applied, but this node gave it slots through ${this.#highestGiven} only: its synod.applied was changed behind the node's back`,
        );
      const todo = [...entries].sort((a, b) => a.slot - b.slot).filter((e) => e.slot > applied);
      const sessions = await this.#loadSessions(todo);
      const changed = new Set<string>();
      for (const [i, entry] of todo.entries()) {
        const expected = applied + 1 + i;
        if (entry.slot !== expected)
          throw new SlotGapError(
            `slot ${entry.slot} comes after ${expected - 1}: slots are applied in order`,
          );
      }
      for (const entry of todo) {
        const results: WriteOutcome[] = [];
        for (const write of entry.writes) {
          const outcome = await this.#applyWrite(write, sessions, guarded);
          if (outcome === undefined) {
            await c.query('ROLLBACK');
            return undefined;
          }
          if (write.clientId !== undefined && write.seq !== undefined) changed.add(write.clientId);
          results.push(outcome);
        }
        outcomes.set(entry.slot, results);
      }
      applied = todo.at(-1)?.slot ?? applied;
      // The same closing trip as the two-trip path: sessions, applied slot, COMMIT.
      await c.query(
        secondTrip(
          this.#group,
          applied,
          [...changed].map((clientId) => ({ clientId, ...sessions.get(clientId)! })),
        ),
      );
      return outcomes;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** The last (seq, outcome) of every client that has a write in these entries, in one query. */
  #loadSessions(entries: readonly SqlEntry[]): Promise<Map<string, Session>> {
    return this.#readSessions([
      ...new Set(
        entries.flatMap((e) =>
          e.writes.flatMap((w) => (w.clientId === undefined ? [] : [w.clientId])),
        ),
      ),
    ]);
  }

  async #readSessions(clients: readonly string[]): Promise<Map<string, Session>> {
    const sessions = new Map<string, Session>();
    if (clients.length === 0) return sessions;
    const rows = await this.#client.query<{
      client_id: string;
      seq: string;
      outcome: WriteOutcome;
    }>(
      'SELECT client_id, seq, outcome FROM synod.sessions WHERE group_name = $1 AND client_id = ANY($2)',
      [this.#group, clients],
    );
    for (const row of rows.rows)
      sessions.set(row.client_id, { seq: Number(row.seq), outcome: row.outcome });
    return sessions;
  }

  /**
   * One write, or its remembered outcome if its (clientId, seq) was applied before. Without
   * `guarded`, a failure returns undefined (the caller abandons the transaction).
   */
  #applyTxn(statements: readonly TxnStatement[]): Promise<WriteOutcome> {
    return runTransaction(this.#client, statements);
  }

  async #applyWrite(
    write: SqlWrite,
    sessions: Map<string, Session>,
    guarded: boolean,
  ): Promise<WriteOutcome | undefined> {
    const c = this.#client;
    const clientId = write.clientId;
    const seq = write.seq;
    if (clientId !== undefined && seq !== undefined) {
      const last = sessions.get(clientId);
      if (last !== undefined && seq <= last.seq) {
        return seq === last.seq
          ? last.outcome
          : {
              ok: false,
              sqlState: '22023',
              message: `seq ${seq} of ${clientId} is older than its last write (${last.seq})`,
            };
      }
    }
    if (write.refused !== undefined) {
      const outcome: WriteOutcome = { ok: false, ...write.refused };
      if (clientId !== undefined && seq !== undefined) sessions.set(clientId, { seq, outcome });
      return outcome;
    }
    if (write.txn !== undefined) {
      const outcome = await this.#applyTxn(write.txn);
      if (clientId !== undefined && seq !== undefined) sessions.set(clientId, { seq, outcome });
      return outcome;
    }
    if (guarded) await c.query('SAVEPOINT synod_write');
    let outcome: WriteOutcome;
    try {
      if (write.copy !== undefined) {
        outcome = {
          ok: true,
          command: 'COPY',
          rowCount: await copyIn(c, write.sql, write.copy),
          rows: [],
        };
      } else {
        const result = await c.query({
          text: write.sql,
          values: write.params === undefined ? [] : [...write.params],
          types: TEXT_VALUES,
        });
        outcome = succeeded(result);
      }
      if (guarded) await c.query('RELEASE SAVEPOINT synod_write');
    } catch (error) {
      // Only what PostgreSQL refused is the write's outcome; a lost connection is not.
      if (!(error instanceof DatabaseError)) throw error;
      if (!guarded) return undefined;
      await c.query('ROLLBACK TO SAVEPOINT synod_write');
      outcome = { ok: false, sqlState: error.code ?? 'XX000', message: error.message };
    }
    if (clientId !== undefined && seq !== undefined) sessions.set(clientId, { seq, outcome });
    return outcome;
  }
}

/**
 * A transaction's statements, each compared with what its client was given: all equal, they
 * stay (COMMIT); the first that differs rolls them all back, with 40001 as the outcome. A
 * statement that failed for the client must fail alike here (then PostgreSQL's aborted
 * state follows, as it did for the client, until a ROLLBACK TO SAVEPOINT). A transaction that
 * ends in that state is rolled back too (25P02): its client could not have committed it.
 */
async function runTransaction(
  client: ClientBase,
  statements: readonly TxnStatement[],
): Promise<WriteOutcome> {
  await client.query('SAVEPOINT synod_txn');
  let aborted = false;
  let differs: string | undefined;
  for (const [i, statement] of statements.entries()) {
    let got: string;
    try {
      const result = await client.query({
        // As the client's node ran it: rows a LIMIT keeps do not depend on physical order.
        text: withTotalOrder(statement.sql),
        values: [...statement.params],
        types: TEXT_VALUES,
        rowMode: 'array',
      });
      got = resultDigest(result);
      // In the aborted state only ROLLBACK TO SAVEPOINT succeeds, and it ends that state.
      aborted = false;
    } catch (error) {
      if (!(error instanceof DatabaseError)) throw error;
      got = errorDigest(error.code ?? 'XX000');
      aborted = true;
    }
    if (got !== statement.expect) {
      differs = `statement ${i + 1} of the transaction gives another result at its slot than it gave the client: another write got in between`;
      break;
    }
  }
  if (differs !== undefined || aborted) {
    await client.query('ROLLBACK TO SAVEPOINT synod_txn');
    await client.query('RELEASE SAVEPOINT synod_txn');
    return differs !== undefined
      ? {
          ok: false,
          sqlState: '40001',
          message: `could not serialize access: ${differs}; retry the transaction`,
        }
      : {
          ok: false,
          sqlState: '25P02',
          message: 'the transaction ended in its aborted state: nothing of it is kept',
        };
  }
  await client.query('RELEASE SAVEPOINT synod_txn');
  return { ok: true, command: 'COMMIT', rowCount: 0, rows: [] };
}

/** COPY ... FROM STDIN with these rows; how many it copied. */
export async function copyIn(
  client: ClientBase,
  sql: string,
  rows: string | Uint8Array,
): Promise<number> {
  const stream = client.query(copyFrom(sql));
  await pipeline(Readable.from([Buffer.from(rows)]), stream);
  return stream.rowCount;
}

interface Session {
  readonly seq: number;
  readonly outcome: WriteOutcome;
}
