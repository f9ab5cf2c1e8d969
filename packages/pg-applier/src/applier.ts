import { type ClientBase, DatabaseError } from 'pg';

/** One client write of a log entry: a statement, its parameters, and who sent it. */
export interface SqlWrite {
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** With clientId and seq, a retried write (same pair) is applied once: see PgApplier.apply. */
  readonly clientId?: string;
  readonly seq?: number;
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
      readonly rows: readonly Record<string, unknown>[];
    }
  | { readonly ok: false; readonly sqlState: string; readonly message: string };

/** Entries must come in slot order with no hole: the log is applied as a prefix. */
export class SlotGapError extends Error {
  override readonly name = 'SlotGapError';
}

const SCHEMA = `
CREATE SCHEMA IF NOT EXISTS synod;
CREATE TABLE IF NOT EXISTS synod.applied (
  group_name text PRIMARY KEY,
  slot bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS synod.sessions (
  group_name text NOT NULL,
  client_id text NOT NULL,
  seq bigint NOT NULL,
  outcome jsonb NOT NULL,
  PRIMARY KEY (group_name, client_id)
);`;

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

  private constructor(client: ClientBase, group: string) {
    this.#client = client;
    this.#group = group;
  }

  /** Creates the synod schema if needed. The client is this applier's alone. */
  static async open(client: ClientBase, group: string): Promise<PgApplier> {
    await client.query(SCHEMA);
    await client.query(
      'INSERT INTO synod.applied (group_name, slot) VALUES ($1, -1) ON CONFLICT DO NOTHING',
      [group],
    );
    return new PgApplier(client, group);
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
   * entry would leave a hole, and rethrows connection failures (the transaction is then lost
   * whole).
   */
  async apply(entries: readonly SqlEntry[]): Promise<Map<number, WriteOutcome[]>> {
    const outcomes = new Map<number, WriteOutcome[]>();
    const c = this.#client;
    await c.query('BEGIN');
    try {
      const locked = await c.query<{ slot: string }>(
        'SELECT slot FROM synod.applied WHERE group_name = $1 FOR UPDATE',
        [this.#group],
      );
      let applied = Number(locked.rows[0]?.slot ?? -1);
      for (const entry of [...entries].sort((a, b) => a.slot - b.slot)) {
        if (entry.slot <= applied) continue;
        if (entry.slot !== applied + 1)
          throw new SlotGapError(
            `slot ${entry.slot} comes after ${applied}: slots are applied in order`,
          );
        const results: WriteOutcome[] = [];
        for (const write of entry.writes) results.push(await this.#applyWrite(write));
        outcomes.set(entry.slot, results);
        applied = entry.slot;
      }
      await c.query('UPDATE synod.applied SET slot = $2 WHERE group_name = $1', [
        this.#group,
        applied,
      ]);
      await c.query('COMMIT');
      return outcomes;
    } catch (error) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async #applyWrite(write: SqlWrite): Promise<WriteOutcome> {
    const c = this.#client;
    const session = write.clientId !== undefined && write.seq !== undefined;
    if (session) {
      const last = await c.query<{ seq: string; outcome: WriteOutcome }>(
        'SELECT seq, outcome FROM synod.sessions WHERE group_name = $1 AND client_id = $2',
        [this.#group, write.clientId],
      );
      const row = last.rows[0];
      if (row !== undefined && write.seq! <= Number(row.seq)) {
        return write.seq === Number(row.seq)
          ? row.outcome
          : {
              ok: false,
              sqlState: '22023',
              message: `seq ${write.seq} of ${write.clientId} is older than its last write (${row.seq})`,
            };
      }
    }
    await c.query('SAVEPOINT synod_write');
    let outcome: WriteOutcome;
    try {
      const result = await c.query(write.sql, write.params === undefined ? [] : [...write.params]);
      await c.query('RELEASE SAVEPOINT synod_write');
      outcome = {
        ok: true,
        command: result.command,
        rowCount: result.rowCount ?? 0,
        rows: result.rows as Record<string, unknown>[],
      };
    } catch (error) {
      // Only what PostgreSQL refused is the write's outcome; a lost connection is not.
      if (!(error instanceof DatabaseError)) throw error;
      await c.query('ROLLBACK TO SAVEPOINT synod_write');
      outcome = { ok: false, sqlState: error.code ?? 'XX000', message: error.message };
    }
    if (session)
      await c.query(
        `INSERT INTO synod.sessions (group_name, client_id, seq, outcome) VALUES ($1, $2, $3, $4)
         ON CONFLICT (group_name, client_id) DO UPDATE SET seq = EXCLUDED.seq, outcome = EXCLUDED.outcome`,
        [this.#group, write.clientId, write.seq, JSON.stringify(outcome)],
      );
    return outcome;
  }
}
