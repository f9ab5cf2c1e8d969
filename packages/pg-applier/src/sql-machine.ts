import type { ClientWrite, Command, PlainData } from '@synod/protocol';

/** The node runtime's admission shape (structural: pg-applier does not depend on @synod/node). */
type Admission = { readonly refused: string } | { readonly command: Command };

import pg from 'pg';
import { PgApplier, type SqlWrite, type WriteOutcome } from './applier.js';
import { loadParser } from './classify.js';
import { SqlError } from './errors.js';
import { route } from './guard.js';
import {
  assertDefinition,
  assertTableName,
  loadReplicated,
  quoteTable,
  replicateStatement,
  tableDefinition,
  tableKey,
} from './replicated-tables.js';
import { installSqlSnapshot, takeSqlSnapshot } from './sql-snapshot.js';

/** What a write or read command of the SQL machine carries. */
interface SqlCommand {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** COPY ... FROM STDIN's rows (text or csv). */
  readonly copy?: string;
}

function sqlCommand(command: Command): SqlCommand | string {
  const sql = command.sql;
  if (typeof sql !== 'string' || sql.trim() === '') return `${command.op} needs a string "sql"`;
  const params = command.params ?? [];
  if (!Array.isArray(params)) return '"params" must be an array';
  const copy = command.copy;
  if (copy !== undefined && typeof copy !== 'string') return '"copy" must be a string';
  return copy === undefined ? { sql, params } : { sql, params, copy };
}

/** The apply connection (named in pg_stat_activity) and its applier. */
async function connectApplier(
  connectionString: string,
  group: string,
): Promise<{ client: pg.Client; applier: PgApplier }> {
  const client = new pg.Client({ connectionString, application_name: 'synod-apply' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { client, applier: await PgApplier.open(client, group) };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

const refusal = (error: unknown): string =>
  error instanceof SqlError ? `ERROR ${error.sqlState}: ${error.message}` : String(error);

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
        result: {
          command: outcome.command,
          rowCount: outcome.rowCount,
          rows: plain(outcome.rows),
          ...(outcome.fields === undefined ? {} : { fields: plain(outcome.fields) }),
        },
      }
    : { ok: false, message: `ERROR ${outcome.sqlState}: ${outcome.message}` };
}

export interface SqlMachineOptions {
  /** `postgres://user@host:port/db` of this node's own database. */
  readonly connectionString: string;
  readonly group: string;
  /**
   * Tables replicated from the start (the same on every node). More are replicated at run
   * time with a `replicate` write, which every replica records in `synod.replicated`.
   */
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
 * the two (ARCHITECTURE.md: cli depends on node and pg-applier, not one on the other).
 */
export class SqlMachine {
  readonly name = 'sql';
  readonly #connectionString: string;
  #applyClient: pg.Client;
  #applier: PgApplier;
  /** The apply connection failed: the next apply() opens another. */
  #broken = false;
  readonly #reads: pg.Pool;
  readonly #replicated: Set<string>;
  readonly #group: string;

  private constructor(
    connectionString: string,
    applyClient: pg.Client,
    reads: pg.Pool,
    applier: PgApplier,
    group: string,
    replicated: Iterable<string>,
  ) {
    this.#connectionString = connectionString;
    this.#applyClient = applyClient;
    this.#watch(applyClient);
    this.#reads = reads;
    this.#applier = applier;
    this.#group = group;
    this.#replicated = new Set([...replicated].map(tableKey));
  }

  static async open(options: SqlMachineOptions): Promise<SqlMachine> {
    await loadParser();
    const { client, applier } = await connectApplier(options.connectionString, options.group);
    const reads = new pg.Pool({
      connectionString: options.connectionString,
      max: 4,
      application_name: 'synod-read',
    });
    reads.on('error', () => undefined);
    // Tables named at start get the check `synod table replicate` makes (serial, identity,
    // volatile defaults), when they exist already: replicas would diverge on them.
    for (const table of options.replicated) {
      try {
        await tableDefinition(client, table);
      } catch (error) {
        // A table not created yet is checked by nobody (README, "Known gaps").
        if (error instanceof SqlError && error.sqlState === '42P01') continue;
        await client.end().catch(() => undefined);
        await reads.end().catch(() => undefined);
        throw error;
      }
    }
    const replicated = [...options.replicated, ...(await loadReplicated(client, options.group))];
    return new SqlMachine(
      options.connectionString,
      client,
      reads,
      applier,
      options.group,
      replicated,
    );
  }

  #watch(client: pg.Client): void {
    // A dropped connection fails the apply call, which the node retries; it must not crash.
    const broken = (): void => {
      if (client === this.#applyClient) this.#broken = true;
    };
    client.on('error', broken);
    client.on('end', broken);
  }

  appliedThrough(): Promise<number> {
    return this.#applier.appliedThrough();
  }

  /**
   * A new apply connection when the last one broke (the database restarted, the backend was
   * terminated): a pg client does not reconnect, and the node retries apply() until it can.
   */
  async #reconnectIfBroken(): Promise<void> {
    if (!this.#broken) return;
    await this.#applyClient.end().catch(() => undefined);
    const { client, applier } = await connectApplier(this.#connectionString, this.#group);
    this.#applyClient = client;
    this.#watch(client);
    this.#applier = applier;
    this.#broken = false;
  }

  /** The replicated tables, as this node has applied them (live: the front end routes by it). */
  get replicatedTables(): ReadonlySet<string> {
    return this.#replicated;
  }

  admit(command: Command): Admission | undefined | Promise<Admission> {
    if (command.op === 'paxos') return undefined; // seed 001's registers need no table
    if (command.op === 'replicate') return this.#admitReplicate(command);
    if (command.op !== 'sql')
      return {
        refused: `unknown write operation ${JSON.stringify(command.op)}; the sql machine takes "sql" and "replicate"`,
      };
    const parsed = sqlCommand(command);
    if (typeof parsed === 'string') return { refused: parsed };
    try {
      const where = route(parsed.sql, { replicated: this.#replicated });
      if (where.kind !== 'replicate')
        return {
          refused: `not a write of a replicated table (${[...this.#replicated].join(', ') || 'none yet'}); send it as a read ({"op":"query"}) to run it on one node`,
        };
      if ((where.copy !== undefined) !== (parsed.copy !== undefined))
        return {
          refused:
            where.copy === undefined
              ? '"copy" carries the rows of a COPY ... FROM STDIN, and this is not one'
              : 'COPY ... FROM STDIN needs its rows, in "copy"',
        };
    } catch (error) {
      return { refused: refusal(error) };
    }
    return undefined;
  }

  /**
   * `{"op":"replicate","table":T}` enters the log with T's definition, read once from the
   * database of the node that takes the write, so a replica without T creates it alike. The
   * leader that node forwards it to checks the definition instead (it may lack T itself).
   */
  async #admitReplicate(command: Command): Promise<Admission> {
    const { table, definition } = command;
    try {
      assertTableName(table);
      if (definition !== undefined) {
        assertDefinition(table, definition);
        return { command: { op: 'replicate', table: tableKey(table), definition } };
      }
      const read = await tableDefinition(this.#reads, table);
      return { command: { op: 'replicate', table: tableKey(table), definition: read } };
    } catch (error) {
      return { refused: refusal(error) };
    }
  }

  async apply(
    entries: readonly { readonly slot: number; readonly writes: readonly ClientWrite[] }[],
  ): Promise<Map<number, ReturnType<typeof outcomeResult>[]>> {
    const sqlEntries = entries.map(({ slot, writes }) => ({
      slot,
      writes: writes.map((write): SqlWrite => {
        const parsed = this.#statement(write.command);
        // Admitted at the proposing node, so always well-formed; a malformed one fails alike everywhere.
        return typeof parsed === 'string'
          ? { sql: 'SELECT 1/0 AS malformed_write', clientId: write.clientId, seq: write.seq }
          : {
              sql: parsed.sql,
              params: parsed.params,
              ...(parsed.copy === undefined ? {} : { copy: parsed.copy }),
              clientId: write.clientId,
              seq: write.seq,
            };
      }),
    }));
    await this.#reconnectIfBroken();
    const outcomes = await this.#applier.apply(sqlEntries);
    const results = new Map<number, ReturnType<typeof outcomeResult>[]>();
    for (const { slot, writes } of entries) {
      const list = outcomes.get(slot);
      if (list === undefined) continue;
      results.set(
        slot,
        list.map((outcome, i) => {
          const command = writes[i]?.command;
          if (command?.op !== 'replicate' || !outcome.ok) return outcomeResult(outcome);
          // Committed: from now on this node routes the table's writes through the log.
          const table = tableKey(String(command.table));
          this.#replicated.add(table);
          return { ok: true, result: { replicated: table } };
        }),
      );
    }
    return results;
  }

  /** The statement a write runs on every replica. */
  #statement(command: Command): SqlCommand | string {
    if (command.op !== 'replicate') return sqlCommand(command);
    const { table, definition } = command;
    if (
      typeof table !== 'string' ||
      !Array.isArray(definition) ||
      !definition.every((d) => typeof d === 'string')
    )
      return 'malformed replicate entry';
    try {
      return { sql: replicateStatement(this.#group, table, definition as string[]), params: [] };
    } catch (error) {
      return refusal(error);
    }
  }

  async read(command: Command): Promise<PlainData> {
    if (command.op === 'tables') return { tables: [...this.#replicated].sort() };
    if (command.op !== 'query')
      throw new Error(
        `unknown read operation ${JSON.stringify(command.op)}; the sql machine reads with "query" and "tables"`,
      );
    const parsed = sqlCommand(command);
    if (typeof parsed === 'string') throw new Error(parsed);
    const where = route(parsed.sql, { replicated: this.#replicated });
    if (where.kind === 'replicate')
      throw new Error(
        'a write of a replicated table goes through the log: send it as {"op":"sql"}',
      );
    if ('copy' in where && where.copy !== undefined)
      throw new Error('COPY FROM STDIN or TO STDOUT runs through the SQL front end (--sql-port)');
    try {
      const result = await this.#reads.query(parsed.sql, [...parsed.params]);
      return { command: result.command, rowCount: result.rowCount ?? 0, rows: plain(result.rows) };
    } catch (error) {
      if (error instanceof pg.DatabaseError)
        throw new Error(`ERROR ${error.code}: ${error.message}`);
      throw error;
    }
  }

  /** Every replicated table's row count and checksum: equal tables, equal digests. */
  async digest(): Promise<string> {
    const parts: string[] = [];
    for (const table of [...this.#replicated].sort()) {
      const name = quoteTable(table);
      // Order-free (no sort of the whole table): the row count and the sum of every row's
      // 64-bit hash, a multiset checksum; a row twice or missing changes it.
      const result = await this.#reads.query<{ rows: string; sum: string | null }>(
        `SELECT count(*) AS rows,
                sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric) AS sum
           FROM ${name} t`,
      );
      parts.push(`${table}:${result.rows[0]?.rows ?? 0}:${result.rows[0]?.sum ?? 0}`);
    }
    return parts.join(' ');
  }

  /**
   * The replicated tables and sessions through the applied slot, for a peer behind this
   * node's compacted log (sql-snapshot.ts). Read on a connection of its own, at one moment.
   */
  async snapshot(): Promise<{ throughSlot: number; bytes: Uint8Array }> {
    const client = await this.#reads.connect();
    try {
      return await takeSqlSnapshot(client, this.#group, this.#replicated);
    } finally {
      client.release();
    }
  }

  /** Makes this database a peer's snapshot (unless it has applied past it already). */
  async install(snapshot: {
    readonly throughSlot: number;
    readonly bytes: Uint8Array;
  }): Promise<void> {
    await this.#reconnectIfBroken();
    const { installed, tables } = await installSqlSnapshot(
      this.#applyClient,
      this.#group,
      snapshot.bytes,
    );
    // The applier remembers the slot and sessions it last committed: those are gone now.
    this.#applier = await PgApplier.open(this.#applyClient, this.#group);
    if (installed) for (const table of tables) this.#replicated.add(tableKey(table));
  }

  async close(): Promise<void> {
    await this.#applyClient.end().catch(() => undefined);
    await this.#reads.end().catch(() => undefined);
  }
}
