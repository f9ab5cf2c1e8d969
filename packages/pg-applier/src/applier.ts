import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ClientBase, DatabaseError, type QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createBookkeeping } from './bookkeeping.js';
import {
  rememberedOutcome,
  type SqlEntry,
  type SqlWrite,
  succeeded,
  TEXT_VALUES,
  type WriteOutcome,
} from './sql-outcomes.js';
import { applyAloneSlot, heldByPrepared } from './step-apply.js';
import { runTransaction } from './transaction-run.js';
import { EXPECT_APPLIED_FUNCTION, FIRST_TRIP_PREFIX, firstTrip, secondTrip } from './two-trips.js';

// The applier's vocabulary lives in sql-outcomes.ts and bookkeeping.ts; it is exported from
// here as before.
export { createBookkeeping } from './bookkeeping.js';
export {
  type ResultField,
  type SqlEntry,
  type SqlWrite,
  TEXT_VALUES,
  type WriteOutcome,
} from './sql-outcomes.js';

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

const slotAhead = (applied: number, given: number): SlotAheadError =>
  new SlotAheadError(
    `the database says slot ${applied} is applied, but this node gave it slots through ${given} only: its synod.applied was changed behind the node's back`,
  );

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

  /** How many groups share this database (what their prepared transactions may need). */
  readonly #groupsHere: number;

  private constructor(client: ClientBase, group: string, applied: number, groupsHere: number) {
    this.#client = client;
    this.#group = group;
    this.#highestGiven = applied;
    this.#groupsHere = groupsHere;
  }

  /**
   * Creates the synod schema if needed. The client is this applier's alone. `groupsHere`:
   * the groups whose appliers share this database (1 unless a node serves several).
   */
  static async open(client: ClientBase, group: string, groupsHere = 1): Promise<PgApplier> {
    await createBookkeeping(client);
    await client.query(EXPECT_APPLIED_FUNCTION);
    await client.query(
      'INSERT INTO synod.applied (group_name, slot) VALUES ($1, -1) ON CONFLICT DO NOTHING',
      [group],
    );
    const applier = new PgApplier(client, group, -1, groupsHere);
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
    // A step of a transaction across groups runs alone: the entries between them in batches.
    const outcomes = new Map<number, WriteOutcome[]>();
    let run: SqlEntry[] = [];
    for (const entry of [...entries].sort((a, b) => a.slot - b.slot)) {
      if (!entry.writes.some((w) => w.step !== undefined)) {
        run.push(entry);
        continue;
      }
      for (const [slot, list] of await this.#applyBatch(run)) outcomes.set(slot, list);
      run = [];
      for (const [slot, list] of await this.#applyAlone(entry)) outcomes.set(slot, list);
    }
    for (const [slot, list] of await this.#applyBatch(run)) outcomes.set(slot, list);
    return outcomes;
  }

  async #applyBatch(entries: readonly SqlEntry[]): Promise<Map<number, WriteOutcome[]>> {
    if (entries.length === 0) return new Map();
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

  /**
   * A slot with a step of a transaction across groups (step-apply.ts): the step first, then the
   * slot's bookkeeping in a transaction of its own. Alone in its slot (the node logs it so);
   * a slot where it is not is refused whole, alike on every replica.
   */
  async #applyAlone(entry: SqlEntry): Promise<Map<number, WriteOutcome[]>> {
    this.#forget();
    const applied = await this.appliedThrough();
    if (applied > this.#highestGiven) throw slotAhead(applied, this.#highestGiven);
    if (entry.slot <= applied) return this.#applyBatch([entry]); // applied before: its outcomes
    if (entry.slot !== applied + 1)
      throw new SlotGapError(
        `slot ${entry.slot} comes after ${applied}: slots are applied in order`,
      );
    const sessions = await this.#loadSessions([entry]);
    const outcomes = await applyAloneSlot(this.#client, this.#group, {
      entry,
      applied,
      sessions,
      groupsHere: this.#groupsHere,
    });
    return new Map([[entry.slot, outcomes]]);
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
      if (applied > this.#highestGiven) throw slotAhead(applied, this.#highestGiven);
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
  async #applyWrite(
    write: SqlWrite,
    sessions: Map<string, Session>,
    guarded: boolean,
  ): Promise<WriteOutcome | undefined> {
    const c = this.#client;
    const clientId = write.clientId;
    const seq = write.seq;
    const remembered = rememberedOutcome(write, sessions);
    if (remembered !== undefined) return remembered;
    if (write.refused !== undefined) {
      const outcome: WriteOutcome = { ok: false, ...write.refused };
      if (clientId !== undefined && seq !== undefined) sessions.set(clientId, { seq, outcome });
      return outcome;
    }
    if (write.txn !== undefined) {
      const outcome = await runTransaction(c, write.txn);
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
      outcome = heldByPrepared(error) ?? {
        ok: false,
        sqlState: error.code ?? 'XX000',
        message: error.message,
      };
    }
    if (clientId !== undefined && seq !== undefined) sessions.set(clientId, { seq, outcome });
    return outcome;
  }
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
