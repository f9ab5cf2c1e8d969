import { SynodClient, SynodError } from '@synod/client';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import pg from 'pg';
import { classify, isCatalogTable, type StatementInfo } from './classify.js';
import { DeterminismError, SqlError } from './errors.js';
import { type Route, route } from './guard.js';
import { resolveNames } from './qualify.js';
import { describeStatement, type StatementDescription } from './statement-describe.js';
import type { ExtendedHost } from './wire-extended.js';
import { type FrontEndGroup, FrontEndGroups } from './wire-groups.js';
import { encoder, tag } from './wire-messages.js';
import type { Result } from './wire-result.js';
import { CONSISTENCIES, type Consistency, type Session } from './wire-session.js';
import { consistencyStatement, replicateTableCall, textField } from './wire-statements.js';
import { transactionStatement } from './wire-transaction.js';

/** What the statement runner needs of the front end's options. */
export interface RunnerOptions {
  readonly group: string;
  /** This node: strong reads wait until it has applied what a majority accepted. */
  readonly nodeId: string;
  /** This node's NATS connection (writes go to the group's leader through it). */
  readonly transport: Transport;
  /** The replicated tables; a live set (the SQL machine's) follows tables replicated later. */
  readonly replicated: Iterable<string>;
  /**
   * Hands writes to this node in-process (NodeRuntime.write) instead of over NATS: the same
   * path, without two trips through nats-server per write. Over NATS when not given.
   */
  readonly local?: (write: Uint8Array) => Promise<Uint8Array>;
  /**
   * Asks this node for a read in-process (NodeRuntime.read): the consistency barrier before a
   * read then costs no trip through nats-server. Over NATS when not given.
   */
  readonly localRead?: (read: Uint8Array) => Promise<Uint8Array>;
  /**
   * Where a client's transaction on replicated tables runs before it commits through the log
   * (the apply role: SqlMachine.transactionConnectionString). Without it, such a transaction
   * is refused.
   */
  readonly transactionConnectionString?: string;
  /**
   * The other groups this node serves on the same database (a node of several groups): their
   * tables' writes go through their own logs (wire-groups.ts). The group above is the default.
   */
  readonly moreGroups?: readonly FrontEndGroup[];
}

/**
 * Where each statement of a logged-in client goes, and what it gives (wire.ts reads and writes
 * the messages): the determinism guard routes it; a write of a replicated table goes through
 * the log, a read waits for the session's consistency model and runs on this node's database,
 * a transaction block goes to wire-transaction.ts, the front end's own statements are
 * answered here.
 */
export class StatementRunner implements ExtendedHost {
  readonly #o: RunnerOptions;
  readonly groups: FrontEndGroups;

  constructor(options: RunnerOptions) {
    this.#o = options;
    this.groups = new FrontEndGroups([
      {
        group: options.group,
        replicated: options.replicated,
        ...(options.local === undefined ? {} : { local: options.local }),
        ...(options.localRead === undefined ? {} : { localRead: options.localRead }),
      },
      ...(options.moreGroups ?? []),
    ]);
  }

  /**
   * Runs one query string (several statements in the simple protocol, one with parameters in
   * the extended one) where the determinism guard routes it. Throws what the client is to be
   * told as an error (SqlError, pg's DatabaseError, SynodError). A COPY over the connection
   * (simple protocol only) comes back as a `copy` result, run by the caller.
   */
  async execute(
    sql: string,
    params: readonly (string | null)[],
    db: pg.Client,
    session: Session,
    simple = false,
  ): Promise<Result[]> {
    // Names as this session resolves them (its search_path), the way every replica will too.
    const statements = classify(sql);
    for (const s of statements) {
      const kind = s.kind === 'transaction' ? s.transaction?.kind : undefined;
      if (kind === 'prepare' || kind === 'commit_prepared' || kind === 'rollback_prepared')
        throw new SqlError(
          '0A000',
          "PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED are the node's own (transactions across groups): a client's prepared transaction would hold what the log's writes wait for",
        );
    }
    const resolved = await resolveNames(sql, statements, db, session.path);
    const inBlock = session.transaction.kind !== 'none';
    let where = this.#route(resolved, resolved === sql ? statements : undefined, inBlock);
    sql = resolved;
    // This node may be behind the log and not know yet that a table is replicated: a write
    // it would run alone here first catches up (strong or linearizable), then is routed again,
    // so it cannot go around the log of a table replicated a moment ago.
    // So may a read of a table it does not know as replicated: under strong or linearizable
    // it catches up first too (reads of the system catalogs, or of no table, need not).
    const unknownRead =
      where.kind === 'read' && !where.replicated && where.tables.some((t) => !isCatalogTable(t));
    if ((where.kind === 'local' || unknownRead) && session.consistency !== 'optimistic') {
      await this.#barrier(session.consistency, this.groups.all);
      where = this.#route(sql, undefined, inBlock);
    }
    if (where.kind === 'empty') return [{ empty: true, fields: [], rows: [], tag: '' }];
    const inTransaction = await transactionStatement({
      sql,
      params,
      // Parsed before the names were resolved: resolving changes names, not what it does.
      info: statements.length === 1 ? statements[0] : undefined,
      where,
      db,
      session,
      groups: this.groups,
      connectionString: this.#o.transactionConnectionString,
      barrier: (groups) =>
        session.consistency === 'optimistic'
          ? Promise.resolve()
          : this.#barrier(session.consistency, groups),
    });
    if (inTransaction !== undefined) return inTransaction;
    const own = where.kind === 'session' ? consistencyStatement(sql) : undefined;
    if (own !== undefined) {
      if ('set' in own) {
        const wanted = own.set as Consistency;
        if (!CONSISTENCIES.includes(wanted))
          throw new SqlError(
            '22023',
            `synod.consistency_model must be one of ${CONSISTENCIES.join(', ')}`,
          );
        session.consistency = wanted;
        return [{ fields: [], rows: [], tag: 'SET' }];
      }
      return [
        {
          fields: [textField('synod.consistency_model')],
          rows: [[session.consistency]],
          tag: 'SHOW',
        },
      ];
    }
    if ('copy' in where && where.copy !== undefined) {
      if (!simple)
        throw new SqlError(
          '0A000',
          'COPY FROM STDIN or TO STDOUT works in the simple query protocol only',
        );
      if (where.kind === 'read' && where.replicated && session.consistency !== 'optimistic')
        await this.#barrier(session.consistency, this.groups.owning(where.tables));
      const replicate =
        where.kind === 'replicate' ? this.groups.writer(where.tables, 'a COPY').group : undefined;
      return [{ fields: [], rows: [], tag: '', copy: { info: where.copy, replicate, sql } }];
    }
    const call = where.kind === 'read' ? replicateTableCall(sql) : undefined;
    if (call !== undefined) {
      if (session.transaction.kind !== 'none')
        throw new SqlError(
          '0A000',
          'synod.replicate_table() cannot run inside a transaction block',
        );
      const target = this.#replicateTarget(call.group);
      // Through this node, whose database has the table: it reads the definition here.
      // A table with many rows stages them through the log before the write is answered.
      const via = new SynodClient({
        transport: this.#o.transport,
        group: target.group,
        via: this.#o.nodeId,
        timeoutMs: 120_000,
        ...(target.local === undefined ? {} : { local: target.local }),
      });
      const answer = await via.replicateTable(call.table);
      const replicated = String((answer.result as { replicated: string }).replicated);
      return [{ fields: [textField('replicate_table')], rows: [[replicated]], tag: 'SELECT 1' }];
    }
    if (where.kind === 'replicate') {
      const group = this.groups.writer(where.tables).group;
      const answer = await session.client(group).write({ op: 'sql', sql, params: [...params] });
      const result = answer.result as {
        command: string;
        rowCount: number;
        rows?: Record<string, string | null>[];
        fields?: Omit<pg.FieldDef, 'format'>[];
      };
      // RETURNING: the applier keeps returned values as text, ready for DataRow.
      const fields = (result.fields ?? []).map((f): pg.FieldDef => ({ ...f, format: 'text' }));
      const rows = (result.rows ?? []).map((row) => fields.map((f) => row[f.name] ?? null));
      return [{ fields, rows, tag: tag(result.command, result.rowCount) }];
    }
    if (where.kind === 'read' && where.replicated && session.consistency !== 'optimistic')
      await this.#barrier(session.consistency, this.groups.owning(where.tables));
    const results = await db.query({
      text: sql,
      values: [...params],
      rowMode: 'array',
    } as pg.QueryArrayConfig);
    // SET, RESET, or the end of a block (SET LOCAL): reported settings may have changed.
    if (where.kind === 'session' || where.kind === 'transaction') session.settingsStale = true;
    return ((Array.isArray(results) ? results : [results]) as pg.QueryArrayResult[]).map(
      (result) => ({
        fields: result.fields,
        rows: result.rows as (string | null)[][],
        tag: tag(result.command, result.rowCount),
      }),
    );
  }

  /**
   * The guard's route; inside a transaction block, a locking read of replicated tables
   * (SELECT ... FOR UPDATE) is a read: the transaction is re-run at its slot, where the locks
   * are the applier's.
   */
  #route(sql: string, statements: StatementInfo[] | undefined, inBlock: boolean): Route {
    try {
      return route(sql, {
        replicated: this.groups.replicated,
        ...(statements === undefined ? {} : { statements }),
      });
    } catch (error) {
      if (!inBlock || !(error instanceof DeterminismError) || error.rule !== 'LOCKING_READ')
        throw error;
      const s = (statements ?? classify(sql))[0]!;
      return { kind: 'read', replicated: true, tables: s.tables };
    }
  }

  /**
   * A prepared statement's parameter and result types, as this node's database sees them.
   * The front end's own statements (SET/SHOW synod.consistency_model,
   * synod.replicate_table()) are described here. A table this node does not have yet (it is
   * behind the log) is waited for as a read of it would be.
   */
  async describe(
    sql: string,
    declared: readonly number[],
    db: pg.Client,
    session: Session,
  ): Promise<StatementDescription> {
    if (replicateTableCall(sql) !== undefined)
      return { params: declared, fields: [textField('replicate_table')] };
    const own = consistencyStatement(sql);
    if (own !== undefined)
      return {
        params: declared,
        fields: 'show' in own ? [textField('synod.consistency_model')] : undefined,
      };
    // A statement the determinism guard refuses fails here, as PostgreSQL fails at Parse.
    this.#route(sql, undefined, session.transaction.kind !== 'none');
    try {
      return await describeStatement(db, sql, declared);
    } catch (error) {
      if (
        !(error instanceof pg.DatabaseError) ||
        error.code !== '42P01' ||
        session.consistency === 'optimistic'
      )
        throw error;
      await this.#barrier(session.consistency, this.groups.all);
      return describeStatement(db, sql, declared);
    }
  }

  /**
   * The group a `synod.replicate_table()` call replicates in: the one it names, else the
   * default. (A table another group here has is refused by the SQL machine's admission, as
   * from any client.)
   */
  #replicateTarget(group: string | undefined): FrontEndGroup {
    const target = group === undefined ? this.groups.default : this.groups.named(group);
    if (target === undefined)
      throw new SqlError(
        '22023',
        `this node serves no group ${JSON.stringify(group)}: it serves ${this.groups.all.map((g) => g.group).join(', ')}`,
      );
    return target;
  }

  /**
   * Waits until this node serves reads at the session's consistency (strong or linearizable)
   * in each of `groups` (those whose tables the statement reads; all when it may read a table
   * this node does not know as replicated yet).
   */
  async #barrier(consistency: Consistency, groups: readonly FrontEndGroup[]): Promise<void> {
    await Promise.all(groups.map((group) => this.#groupBarrier(consistency, group)));
  }

  async #groupBarrier(consistency: Consistency, group: FrontEndGroup): Promise<void> {
    const request = encoder.encode(
      JSON.stringify({ command: { op: 'query', sql: 'SELECT 1' }, consistency }),
    );
    const local = group.localRead;
    const data =
      local !== undefined
        ? await local(request)
        : (
            await this.#o.transport.request(
              groupSubjects(group.group).endpoint(this.#o.nodeId, 'read'),
              request,
              { timeoutMs: 10_000 },
            )
          ).data;
    const answer = JSON.parse(new TextDecoder().decode(data)) as {
      ok: boolean;
      error?: { code: string; message: string };
    };
    if (!answer.ok) throw new SynodError('NO_QUORUM', answer.error?.message ?? 'no answer');
  }
}
