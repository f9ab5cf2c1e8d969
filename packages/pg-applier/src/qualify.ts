import pg from 'pg';
import type { StatementInfo } from './classify.js';

/**
 * What a session's search path is known to be: `public` alone (its names resolve as the
 * applier's do), something else, or unknown (a statement since may have changed it).
 */
export interface SessionPath {
  publicOnly: boolean | undefined;
}

/** Reads and writes that call no function cannot change the search path; anything else may. */
function leavesPathAlone(statements: readonly StatementInfo[]): boolean {
  return statements.every(
    (s) => (s.kind === 'read' || s.kind === 'write') && s.functions.length === 0,
  );
}

/**
 * `statements` (classify(sql)) as the session resolves its names: `sql` itself while the
 * session's search path is `public` alone (known from one catalog query, asked again only
 * after a statement that may have changed it: SET, a DO block, a function call), else
 * qualifyNames' rewrite. A DDL statement is left alone: `CREATE TABLE t` makes t in the
 * first schema of the search path, whatever `t` resolves to now.
 */
export async function resolveNames(
  sql: string,
  statements: readonly StatementInfo[],
  db: pg.ClientBase,
  path: SessionPath,
): Promise<string> {
  path.publicOnly ??= await searchesPublicOnly(db);
  const plain = statements.every((s) => s.kind === 'read' || s.kind === 'write');
  const resolved = path.publicOnly || !plain ? sql : await qualifyNames(sql, statements, db);
  if (!leavesPathAlone(statements)) path.publicOnly = undefined;
  return resolved;
}

/** The session's search path is pg_catalog and public alone: no temporary table shadows either. */
async function searchesPublicOnly(db: pg.ClientBase): Promise<boolean> {
  const result = await db.query<{ schemas: string }>(
    "SELECT array_to_string(current_schemas(true), ',') AS schemas",
  );
  return result.rows[0]?.schemas === 'pg_catalog,public';
}

/**
 * `sql` with each table it names without a schema written as the session resolves it, when
 * that is not `public`: a replicated write is applied on every replica with the search path
 * `public`, so it must name the relation the session meant (`SET search_path TO s2, public;
 * INSERT INTO t` writes s2.t), and the guard must see which table that is. Unchanged (and no
 * query) when it names no table without a schema; names that resolve to nothing stay as
 * written, and the statement fails or routes as before.
 */
export async function qualifyNames(
  sql: string,
  statements: readonly StatementInfo[],
  db: pg.ClientBase,
): Promise<string> {
  const names = statements.flatMap((s) => s.unqualified);
  if (names.length === 0) return sql;
  const distinct = [...new Set(names.map((n) => n.name))];
  const resolved = await db.query<{ name: string; schema: string | null }>(
    `SELECT x.name, n.nspname AS schema
       FROM unnest($1::text[]) AS x(name)
       LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(x.name))
       LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`,
    [distinct],
  );
  const schemas = new Map<string, string>();
  for (const row of resolved.rows) {
    if (row.schema === null || row.schema === 'public') continue;
    // A temporary table: pg_temp names the session's own temporary schema.
    schemas.set(row.name, row.schema.startsWith('pg_temp_') ? 'pg_temp' : row.schema);
  }
  if (schemas.size === 0) return sql;
  const bytes = Buffer.from(sql, 'utf8');
  const parts: Buffer[] = [];
  let from = 0;
  for (const { name, at } of [...names].sort((a, b) => a.at - b.at)) {
    const schema = schemas.get(name);
    if (schema === undefined) continue;
    parts.push(bytes.subarray(from, at), Buffer.from(`${pg.escapeIdentifier(schema)}.`, 'utf8'));
    from = at;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts).toString('utf8');
}
