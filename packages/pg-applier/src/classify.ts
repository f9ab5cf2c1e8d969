import { loadModule, parseSync } from 'libpg-query';
import { SqlSyntaxError } from './errors.js';

/**
 * What one SQL statement does, as PostgreSQL's own grammar (libpg_query) parses it:
 * - `read`: a SELECT (or an EXPLAIN without ANALYZE) that changes nothing;
 * - `write`: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, a SELECT with a data-modifying WITH,
 *   a locking SELECT (FOR UPDATE/SHARE) or one that calls nextval()/setval();
 * - `ddl`: anything that defines or changes schema objects (CREATE, ALTER, DROP, ...);
 * - `transaction`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...;
 * - `session`: SET, RESET, SHOW;
 * - `utility`: everything else (VACUUM, COPY to or from a server file, LISTEN, ...).
 *
 * COPY ... FROM STDIN is a write of its table, COPY ... TO STDOUT a read: their data travels
 * on the client's connection (see `copy`).
 */
export type StatementKind = 'read' | 'write' | 'ddl' | 'transaction' | 'session' | 'utility';

export interface StatementInfo {
  readonly kind: StatementKind;
  /** The parse node's name, e.g. InsertStmt. */
  readonly node: string;
  /** Every table the statement names (CTE names excluded), as written: schema.name or name. */
  readonly tables: readonly string[];
  /** Those named without a schema, each with where its name starts in the query (bytes). */
  readonly unqualified: readonly { readonly name: string; readonly at: number }[];
  /** The tables it writes (the targets of INSERT, UPDATE, DELETE, MERGE, TRUNCATE). */
  readonly writes: readonly string[];
  /** Tables (and other relations) a DDL statement creates, changes or drops. */
  readonly defines: readonly string[];
  /** Every function called, lower case, schema dropped; SQL value functions by their SQL name. */
  readonly functions: readonly string[];
  /** The functions among them whose result differs between replicas or runs. */
  readonly volatile: readonly string[];
  /** Whether it takes row locks (SELECT ... FOR UPDATE/SHARE). */
  readonly locking: boolean;
  /** A COPY whose data travels on the client's connection (FROM STDIN, TO STDOUT). */
  readonly copy?: CopyInfo;
  /** A transaction statement: what it does, and the savepoint it names. */
  readonly transaction?: TransactionInfo;
  /** SET, RESET or SHOW: the setting's name, lower case (`transaction` for SET TRANSACTION). */
  readonly setting?: string;
}

export interface TransactionInfo {
  /**
   * begin (BEGIN, START TRANSACTION), commit (COMMIT, END), rollback (ROLLBACK, ABORT),
   * savepoint, release, rollback_to, or what else PostgreSQL's grammar says (prepare, ...).
   */
  readonly kind: string;
  readonly savepoint?: string;
}

export interface CopyInfo {
  /** FROM STDIN (the client sends rows) or TO STDOUT (the client gets them). */
  readonly direction: 'in' | 'out';
  /** FORMAT binary: the data is PostgreSQL's binary COPY format, not text. */
  readonly binary: boolean;
  /** The table copied, as written; undefined for COPY (query) TO STDOUT. */
  readonly table?: string;
  /** The column list, when the statement names one. */
  readonly columns?: readonly string[];
}

/**
 * Functions whose result depends on when, where or how often they run: replaying them on
 * another replica, or later, gives another result. Built-ins only; a user-defined volatile
 * function cannot be told from its call (it needs the catalog).
 */
export const VOLATILE_FUNCTIONS: ReadonlySet<string> = new Set([
  'now',
  'current_timestamp',
  'current_time',
  'current_date',
  'localtime',
  'localtimestamp',
  'clock_timestamp',
  'statement_timestamp',
  'transaction_timestamp',
  'timeofday',
  'random',
  'random_normal',
  'setseed',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
  'txid_current',
  'pg_current_xact_id',
  'pg_backend_pid',
  'inet_client_addr',
  'inet_client_port',
  'inet_server_addr',
  'inet_server_port',
  'current_user',
  'session_user',
  'user',
  'current_role',
  'pg_sleep',
]);

/**
 * Built-in functions that act outside the statement's rows: on the session (set_config), on
 * other sessions (pg_terminate_backend), on locks held past the statement (advisory locks),
 * on time (pg_sleep_for), on files or large objects, on the server, on the node's own
 * bookkeeping (synod.expect_applied locks the applied slot). Run by the applier at a
 * slot, one would change or stall the apply session, alike on every replica.
 */
export const SIDE_EFFECT_FUNCTION =
  /^(set_config|pg_sleep(_for|_until)?|pg_terminate_backend|pg_cancel_backend|pg_(try_)?advisory_.*|pg_notify|lo_.*|dblink.*|pg_read_.*|pg_ls_.*|pg_stat_file|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_create_.*|pg_drop_.*|pg_logical_.*|pg_replication_.*|pg_promote|pg_log_backend_memory_contexts|pg_import_system_collations|expect_applied)$/;

/** Sequence functions: calling one changes the sequence, so even a SELECT of it is a write. */
const SEQUENCE_WRITERS = new Set(['nextval', 'setval']);

/** SQLValueFunction operators, by the SQL name they are written with. */
const VALUE_FUNCTIONS: Readonly<Record<string, string>> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const SESSION_NODES = new Set(['VariableSetStmt', 'VariableShowStmt', 'DiscardStmt']);
/** Statements that run something but define nothing: not DDL even though they end in Stmt. */
const UTILITY_NODES = new Set([
  'VacuumStmt',
  'CopyStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'LoadStmt',
  'CheckPointStmt',
  'LockStmt',
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'DoStmt',
  'CallStmt',
  'ClusterStmt',
  'ReindexStmt',
  'ConstraintsSetStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'DeclareCursorStmt',
]);

let loaded: Promise<void> | undefined;

/** Loads the parser (WebAssembly, ~40 ms once); classify() needs it. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

type Json = { readonly [key: string]: unknown };

interface Found {
  tables: Set<string>;
  unqualified: { name: string; at: number }[];
  ctes: Set<string>;
  writes: Set<string>;
  functions: Set<string>;
  locking: boolean;
}

/** PostgreSQL's own catalogs (psql's \d reads them): never replicated, never waited for. */
export function isCatalogTable(table: string): boolean {
  return /^(pg_catalog\.|information_schema\.|pg_)/i.test(table);
}

/** The statements in `sql`, each classified. Throws SqlSyntaxError for what PostgreSQL would refuse to parse. */
export function classify(sql: string): StatementInfo[] {
  let tree: { stmts?: { stmt: Json }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (error) {
    if (error instanceof Error && error.message.includes('not initialized'))
      throw new Error('call loadParser() before classify()');
    const details = (error as { sqlDetails?: { message?: string; cursorPosition?: number } })
      .sqlDetails;
    // libpg_query counts from 0; PostgreSQL (and psql) report positions from 1.
    const at = details?.cursorPosition;
    throw new SqlSyntaxError(details?.message ?? String(error), at === undefined ? at : at + 1);
  }
  return (tree.stmts ?? []).map(({ stmt }) => classifyStatement(stmt));
}

/**
 * The text of each statement in `sql`, as the parser cut it (without the semicolons): a
 * query string of several statements run one by one, as PostgreSQL runs a simple query.
 */
export function statementTexts(sql: string): string[] {
  const tree = parseSync(sql) as { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  const bytes = Buffer.from(sql);
  return (tree.stmts ?? []).map(({ stmt_location: at = 0, stmt_len: length = 0 }) =>
    bytes
      .subarray(at, length === 0 ? bytes.length : at + length)
      .toString()
      .trim(),
  );
}

const TRANSACTION_KINDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback_to',
};

function classifyStatement(stmt: Json): StatementInfo {
  const [node, body] = Object.entries(stmt)[0] as [string, Json];
  const found: Found = {
    tables: new Set(),
    unqualified: [],
    ctes: new Set(),
    writes: new Set(),
    functions: new Set(),
    locking: false,
  };
  walk(body, found, node);
  const tables = [...found.tables].filter((t) => !found.ctes.has(t));
  const functions = [...found.functions];
  const volatile = functions.filter((f) => VOLATILE_FUNCTIONS.has(f));
  const copy = node === 'CopyStmt' ? copyInfo(body) : undefined;
  if (copy?.direction === 'in' && copy.table !== undefined) found.writes.add(copy.table);
  const kind =
    copy === undefined ? kindOf(node, body, found) : copy.direction === 'in' ? 'write' : 'read';
  return {
    kind,
    node,
    tables,
    unqualified: found.unqualified.filter((u) => !found.ctes.has(u.name)),
    writes: [...found.writes],
    defines: kind === 'ddl' ? definedObjects(node, body, tables) : [],
    functions,
    volatile,
    locking: found.locking,
    ...(copy === undefined ? {} : { copy }),
    ...(node === 'TransactionStmt' ? { transaction: transactionInfo(body) } : {}),
    ...(SESSION_NODES.has(node) && typeof body.name === 'string'
      ? { setting: body.name.toLowerCase() }
      : {}),
  };
}

function transactionInfo(body: Json): TransactionInfo {
  const kind = String(body.kind);
  const savepoint = body.savepoint_name;
  return {
    kind: TRANSACTION_KINDS[kind] ?? kind.replace(/^TRANS_STMT_/, '').toLowerCase(),
    ...(typeof savepoint === 'string' ? { savepoint } : {}),
  };
}

/** A COPY over the client's connection; undefined for one to or from a server file or program. */
function copyInfo(body: Json): CopyInfo | undefined {
  if (body.filename !== undefined || body.is_program === true) return undefined;
  const format = ((body.options as Json[] | undefined) ?? [])
    .map((o) => o.DefElem as Json | undefined)
    .find((d) => d?.defname === 'format');
  const binary = ((format?.arg as Json | undefined)?.String as Json | undefined)?.sval === 'binary';
  const relation = body.relation as Json | undefined;
  const columns = (body.attlist as Json[] | undefined)?.map((a) =>
    String((a.String as Json | undefined)?.sval),
  );
  return {
    direction: body.is_from === true ? 'in' : 'out',
    binary,
    ...(relation === undefined ? {} : { table: tableName(relation) }),
    ...(columns === undefined ? {} : { columns }),
  };
}

function kindOf(node: string, body: Json, found: Found): StatementKind {
  if (node === 'SelectStmt')
    return found.writes.size > 0 ||
      found.locking ||
      [...found.functions].some((f) => SEQUENCE_WRITERS.has(f))
      ? 'write'
      : 'read';
  if (WRITE_NODES.has(node) || node === 'TruncateStmt') return 'write';
  if (node === 'TransactionStmt') return 'transaction';
  if (SESSION_NODES.has(node)) return 'session';
  if (node === 'ExplainStmt') {
    // EXPLAIN ANALYZE runs the statement: it is whatever the statement is.
    const analyze = ((body.options as Json[] | undefined) ?? []).some(
      (o) => (o.DefElem as Json | undefined)?.defname === 'analyze',
    );
    const inner = body.query as Json;
    return analyze ? classifyStatement(inner).kind : 'read';
  }
  if (UTILITY_NODES.has(node)) return 'utility';
  return 'ddl';
}

/** What a DDL statement acts on: its RangeVars, or a DROP's object names. */
function definedObjects(node: string, body: Json, tables: readonly string[]): string[] {
  if (node !== 'DropStmt') return [...tables];
  return ((body.objects as Json[] | undefined) ?? []).flatMap((object) => {
    const items = (object.List as Json | undefined)?.items as Json[] | undefined;
    if (items === undefined) return [];
    const parts = items.map((i) => (i.String as Json | undefined)?.sval);
    return parts.every((p): p is string => typeof p === 'string') ? [parts.join('.')] : [];
  });
}

/** A table the walk met: its name, and where it is named without a schema. */
function named(rangeVar: Json, found: Found): string {
  if (typeof rangeVar.schemaname !== 'string' && typeof rangeVar.location === 'number')
    found.unqualified.push({ name: String(rangeVar.relname), at: rangeVar.location });
  return tableName(rangeVar);
}

function tableName(rangeVar: Json): string {
  const relname = String(rangeVar.relname);
  return typeof rangeVar.schemaname === 'string' ? `${rangeVar.schemaname}.${relname}` : relname;
}

/**
 * Collects tables, CTE names, write targets, functions and locking clauses, everywhere in
 * the tree. `parent` is the node type whose fields `value` holds (write targets are the
 * `relation` of an INSERT, UPDATE, DELETE or MERGE, and the `relations` of a TRUNCATE, at any
 * depth: a data-modifying WITH is a write too).
 */
function walk(value: unknown, found: Found, parent = ''): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, found, parent);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [name, child] of Object.entries(value as Json)) {
    const node = child as Json;
    if (name === 'RangeVar') found.tables.add(named(node, found));
    else if (name === 'CommonTableExpr') found.ctes.add(String(node.ctename));
    else if (name === 'LockingClause') found.locking = true;
    else if (name === 'FuncCall') {
      const parts = (node.funcname as Json[]).map((p) =>
        String((p.String as Json | undefined)?.sval ?? ''),
      );
      found.functions.add(parts.at(-1)!.toLowerCase());
    } else if (name === 'SQLValueFunction') {
      const op = String(node.op);
      found.functions.add(VALUE_FUNCTIONS[op] ?? op.toLowerCase());
    } else if (name === 'relation' && 'relname' in node) {
      // A bare RangeVar (not wrapped in {RangeVar: ...}) in a statement's `relation` field.
      found.tables.add(named(node, found));
      if (WRITE_NODES.has(parent)) found.writes.add(tableName(node));
    } else if (name === 'relations' && parent === 'TruncateStmt') {
      for (const target of child as Json[]) found.writes.add(tableName(target.RangeVar as Json));
    }
    walk(child, found, name);
  }
}
