import type { ClientWrite, Command, PlainData } from '@synod/protocol';
import pg from 'pg';
import { PgApplier, type SqlWrite, type WriteOutcome } from './applier.js';
import { loadParser } from './classify.js';
import { SqlError } from './errors.js';
import { route } from './guard.js';

/** What a write or read command of the SQL machine carries. */
interface SqlCommand {
  readonly sql: string;
  readonly params: readonly unknown[];
}

function sqlCommand(command: Command): SqlCommand | string {
  const sql = command.sql;
  if (typeof sql !== 'string' || sql.trim() === '') return `${command.op} needs a string "sql"`;
  const params = command.params ?? [];
  if (!Array.isArray(params)) return '"params" must be an array';
  return { sql, params };
}

/** Row values as plain data: dates as ISO text, big numbers as text, bytes as bytes. */
function plain(value: unknown): PlainData {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value as PlainData;
}

function outcomeResult(
  outcome: WriteOutcome,
):
  | { readonly ok: true; readonly result: PlainData }
  | { readonly ok: false; readonly message: string } {
  return outcome.ok
    ? {
        ok: true,
        result: { command: outcome.command, rowCount: outcome.rowCount, rows: plain(outcome.rows) },
      }
    : { ok: false, message: `ERROR ${outcome.sqlState}: ${outcome.message}` };
}

export interface SqlMachineOptions {
  /** `postgres://user@host:port/db` of this node's own database. */
  readonly connectionString: string;
  readonly group: string;
  /** The tables whose writes go through the group's log (the same on every node). */
  readonly replicated: readonly string[];
}

/**
 * The node's state machine when the state is SQL tables (issue 5): writes of replicated
 * tables enter the log as `{"op":"sql","sql":...,"params":[...]}` after the determinism
 * guard admitted them, and every replica applies them with PgApplier (in order, exactly
 * once, failures as outcomes). Reads (`{"op":"query",...}`) run on this node's database,
 * on a connection of their own, never inside an apply transaction.
 *
 * It has the shape of @synod/node's AsyncStateMachine without importing it: the CLI joins
 * the two (DESIGN.md: cli depends on node and pg-applier, not one on the other).
 */
export class SqlMachine {
  readonly name = 'sql';
  readonly #applyClient: pg.Client;
  readonly #reads: pg.Pool;
  readonly #applier: PgApplier;
  readonly #replicated: readonly string[];

  private constructor(
    applyClient: pg.Client,
    reads: pg.Pool,
    applier: PgApplier,
    replicated: readonly string[],
  ) {
    this.#applyClient = applyClient;
    this.#reads = reads;
    this.#applier = applier;
    this.#replicated = replicated;
  }

  static async open(options: SqlMachineOptions): Promise<SqlMachine> {
    await loadParser();
    const applyClient = new pg.Client({ connectionString: options.connectionString });
    // A dropped connection fails the apply call, which the node retries; it must not crash.
    applyClient.on('error', () => undefined);
    await applyClient.connect();
    const reads = new pg.Pool({ connectionString: options.connectionString, max: 4 });
    reads.on('error', () => undefined);
    const applier = await PgApplier.open(applyClient, options.group);
    return new SqlMachine(applyClient, reads, applier, [...options.replicated]);
  }

  appliedThrough(): Promise<number> {
    return this.#applier.appliedThrough();
  }

  admit(command: Command): { readonly refused: string } | undefined {
    if (command.op === 'paxos') return undefined; // seed 001's registers need no table
    if (command.op !== 'sql')
      return {
        refused: `unknown write operation ${JSON.stringify(command.op)}; the sql machine takes "sql"`,
      };
    const parsed = sqlCommand(command);
    if (typeof parsed === 'string') return { refused: parsed };
    try {
      const where = route(parsed.sql, { replicated: this.#replicated });
      if (where.kind !== 'replicate')
        return {
          refused: `not a write of a replicated table (${this.#replicated.join(', ')}); send it as a read ({"op":"query"}) to run it on one node`,
        };
    } catch (error) {
      return {
        refused:
          error instanceof SqlError ? `ERROR ${error.sqlState}: ${error.message}` : String(error),
      };
    }
    return undefined;
  }

  async apply(
    entries: readonly { readonly slot: number; readonly writes: readonly ClientWrite[] }[],
  ): Promise<Map<number, ReturnType<typeof outcomeResult>[]>> {
    const sqlEntries = entries.map(({ slot, writes }) => ({
      slot,
      writes: writes.map((write): SqlWrite => {
        const parsed = sqlCommand(write.command);
        // Admitted at the proposing node, so always well-formed; a malformed one fails alike everywhere.
        return typeof parsed === 'string'
          ? { sql: 'SELECT 1/0 AS malformed_write', clientId: write.clientId, seq: write.seq }
          : { sql: parsed.sql, params: parsed.params, clientId: write.clientId, seq: write.seq };
      }),
    }));
    const outcomes = await this.#applier.apply(sqlEntries);
    return new Map([...outcomes].map(([slot, list]) => [slot, list.map(outcomeResult)]));
  }

  async read(command: Command): Promise<PlainData> {
    if (command.op !== 'query')
      throw new Error(
        `unknown read operation ${JSON.stringify(command.op)}; the sql machine reads with "query"`,
      );
    const parsed = sqlCommand(command);
    if (typeof parsed === 'string') throw new Error(parsed);
    const where = route(parsed.sql, { replicated: this.#replicated });
    if (where.kind === 'replicate')
      throw new Error(
        'a write of a replicated table goes through the log: send it as {"op":"sql"}',
      );
    try {
      const result = await this.#reads.query(parsed.sql, [...parsed.params]);
      return { command: result.command, rowCount: result.rowCount ?? 0, rows: plain(result.rows) };
    } catch (error) {
      if (error instanceof pg.DatabaseError)
        throw new Error(`ERROR ${error.code}: ${error.message}`);
      throw error;
    }
  }

  /** md5 of every replicated table's rows, in a fixed order: equal tables, equal digests. */
  async digest(): Promise<string> {
    const parts: string[] = [];
    for (const table of [...this.#replicated].sort()) {
      const name = table
        .split('.')
        .map((part) => pg.escapeIdentifier(part))
        .join('.');
      const result = await this.#reads.query<{ sum: string | null }>(
        `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS sum FROM ${name} t`,
      );
      parts.push(result.rows[0]?.sum ?? '');
    }
    return parts.join('');
  }

  async close(): Promise<void> {
    await this.#applyClient.end().catch(() => undefined);
    await this.#reads.end().catch(() => undefined);
  }
}
