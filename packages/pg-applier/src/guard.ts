import { type CopyInfo, classify, SIDE_EFFECT_FUNCTION, type StatementInfo } from './classify.js';
import { DeterminismError, SqlError } from './errors.js';
import { tableKey } from './replicated-tables.js';

export interface GuardOptions {
  /** The replicated tables, as `name` (schema public) or `schema.name`. */
  readonly replicated: Iterable<string>;
  /** Several statements in one string, all writes of replicated tables, as one log entry. */
  readonly allowMultipleStatements?: boolean;
  /** `classify(sql)`, when the caller has it already: the string is not parsed again. */
  readonly statements?: readonly StatementInfo[];
}

/**
 * Where a statement goes:
 * - `replicate`: through the group's log, then applied on every replica (writes of
 *   replicated tables);
 * - `read`: on this node, under the session's consistency model when it reads replicated
 *   tables (`replicated` true), or as is;
 * - `local`: on this node only, like a plain PostgreSQL (nothing replicated involved);
 * - `session` / `transaction`: SET and SHOW, BEGIN and COMMIT, for the front end;
 * - `empty`: no statement at all.
 *
 * `copy` marks a COPY FROM STDIN or TO STDOUT: its rows travel on the client's connection,
 * and a replicated one carries them in its log entry.
 */
export type Route =
  | {
      readonly kind: 'replicate';
      readonly tables: readonly string[];
      readonly copy?: CopyInfo;
    }
  | {
      readonly kind: 'read';
      readonly replicated: boolean;
      readonly tables: readonly string[];
      readonly copy?: CopyInfo;
    }
  | { readonly kind: 'local'; readonly copy?: CopyInfo }
  | { readonly kind: 'session' }
  | { readonly kind: 'transaction' }
  | { readonly kind: 'empty' };

const list = (names: readonly string[]): string => names.map((n) => `"${n}"`).join(', ');

/**
 * The determinism guard (README: "Rules"): classifies `sql` with PostgreSQL's parser and
 * says where it goes, or throws DeterminismError (SqlSyntaxError for invalid SQL) naming the
 * rule it breaks. Nothing runs here; call loadParser() once first.
 */
export function route(sql: string, options: GuardOptions): Route {
  const replicated = new Set([...options.replicated].map(tableKey));
  const statements = options.statements ?? classify(sql);
  if (statements.length === 0) return { kind: 'empty' };
  const touches = (s: StatementInfo): string[] =>
    s.tables.map(tableKey).filter((t) => replicated.has(t));
  if (statements.length > 1) {
    if (statements.some((s) => s.copy !== undefined))
      throw new SqlError(
        '0A000',
        'COPY FROM STDIN or TO STDOUT must be the only statement of its query',
      );
    const involved = statements.filter((s) => touches(s).length > 0 || s.kind === 'transaction');
    if (involved.length === 0) return { kind: 'local' };
    if (options.allowMultipleStatements !== true)
      throw new DeterminismError(
        'MULTIPLE_STATEMENTS',
        `${statements.length} statements in one query touch replicated tables; send them one at a time (or allow several statements explicitly)`,
      );
    const routes = statements.map((s) => routeOne(s, replicated));
    if (routes.some((r) => r.kind !== 'replicate'))
      throw new DeterminismError(
        'MULTIPLE_STATEMENTS',
        'several statements in one query must all be writes of replicated tables',
      );
    return {
      kind: 'replicate',
      tables: [...new Set(routes.flatMap((r) => (r.kind === 'replicate' ? r.tables : [])))],
    };
  }
  return routeOne(statements[0]!, replicated);
}

function routeOne(s: StatementInfo, replicated: ReadonlySet<string>): Route {
  const route = routeStatement(s, replicated);
  if (s.copy === undefined || route.kind === 'session' || route.kind === 'transaction')
    return route;
  if (s.copy.binary && route.kind === 'replicate')
    throw new SqlError(
      '0A000',
      'COPY of a replicated table in the binary format is not supported; use FORMAT text or csv',
    );
  return { ...route, copy: s.copy } as Route;
}

function routeStatement(s: StatementInfo, replicated: ReadonlySet<string>): Route {
  const tables = s.tables.map(tableKey);
  const mine = tables.filter((t) => replicated.has(t));
  switch (s.kind) {
    case 'session':
      return { kind: 'session' };
    case 'transaction':
      return { kind: 'transaction' };
    case 'read':
      return { kind: 'read', replicated: mine.length > 0, tables };
    case 'ddl': {
      // Creating a replicated table is how a node is set up (pg_paxos: create the table on
      // every node, then replicate it): only changing or dropping one is refused.
      if (s.node === 'CreateStmt') return { kind: 'local' };
      const changed = s.defines.map(tableKey).filter((t) => replicated.has(t));
      if (changed.length > 0)
        throw new DeterminismError(
          'DDL_ON_REPLICATED_TABLE',
          `${s.node.replace(/Stmt$/, '')} on replicated table ${list(changed)} is not replicated; change the table on every node with replication of it stopped`,
        );
      return { kind: 'local' };
    }
    case 'utility':
      if (mine.length > 0)
        throw new DeterminismError(
          'DDL_ON_REPLICATED_TABLE',
          `${s.node.replace(/Stmt$/, '')} on replicated table ${list(mine)} would bypass the log`,
        );
      return { kind: 'local' };
    case 'write': {
      if (mine.length === 0) return { kind: 'local' };
      if (s.locking)
        throw new DeterminismError(
          'LOCKING_READ',
          `SELECT ... FOR UPDATE/SHARE on replicated table ${list(mine)}: row locks are not replicated`,
        );
      const others = [...new Set(tables.filter((t) => !replicated.has(t)))];
      if (others.length > 0)
        throw new DeterminismError(
          'MIXED_TABLES',
          `a write of replicated table ${list([...new Set(mine)])} also uses ${list(others)}, which is not replicated: other replicas would see other rows there`,
        );
      const acting = s.functions.filter((f) => SIDE_EFFECT_FUNCTION.test(f));
      if (acting.length > 0)
        throw new DeterminismError(
          'SIDE_EFFECT_FUNCTION',
          `${acting.map((f) => `${f}()`).join(', ')} in a write of a replicated table would act on the apply session of every replica, not on rows`,
        );
      if (s.volatile.length > 0)
        throw new DeterminismError(
          'VOLATILE_FUNCTION',
          `${s.volatile.map((f) => `${f}()`).join(', ')} in a write of a replicated table would give each replica another value; compute it in the client and send it as a literal or parameter`,
        );
      return { kind: 'replicate', tables: [...new Set(mine)] };
    }
  }
}
