import { parseSync, scanSync } from 'libpg-query';
import pg from 'pg';

type Json = { readonly [key: string]: unknown };

/**
 * Which rows a `LIMIT` or `OFFSET` keeps depends on their order, and without an ORDER BY
 * that orders them totally, on the order PostgreSQL meets them: each replica holds the same
 * rows in its own physical order, so a transaction re-run at its slot could keep other rows
 * on one replica than on another, and the replicas would decide differently. The statement
 * is run with the rows of every relation it reads as the last sort keys
 * (`ORDER BY <its own keys>, ROW(t.*)`): among the answers PostgreSQL may give, always the
 * same one. Both the front end's tentative run and every replica's run use this text.
 *
 * Only a top-level SELECT of named relations is rewritten; a set operation, a LIMIT inside a
 * subquery, or a relation without a name (a function without an alias) is left as it is
 * (packages/pg-applier/README.md, "Transactions", says what that leaves open). A column whose
 * type has no ordering (json, xml, point) makes the statement fail with PostgreSQL's 42883.
 */
export function withTotalOrder(sql: string): string {
  let stmts: { stmt: Json }[];
  try {
    stmts = (parseSync(sql) as { stmts?: { stmt: Json }[] }).stmts ?? [];
  } catch {
    return sql; // PostgreSQL will say what is wrong with it
  }
  if (stmts.length !== 1) return sql;
  const select = stmts[0]!.stmt.SelectStmt as Json | undefined;
  if (select === undefined || (select.op !== undefined && select.op !== 'SETOP_NONE')) return sql;
  if (select.limitCount === undefined && select.limitOffset === undefined) return sql;
  const names = relationNames((select.fromClause as Json[] | undefined) ?? []);
  if (names === undefined || names.length === 0) return sql;
  const at = limitPosition(sql);
  if (at === undefined) return sql;
  const keys = names.map((name) => `ROW(${name}.*)`).join(', ');
  const bytes = Buffer.from(sql);
  const insert = select.sortClause === undefined ? ` ORDER BY ${keys} ` : `, ${keys} `;
  return `${bytes.subarray(0, at).toString()}${insert}${bytes.subarray(at).toString()}`;
}

/** The names a FROM list's relations go by (their aliases), or undefined if one has none. */
function relationNames(from: readonly Json[]): string[] | undefined {
  const names: string[] = [];
  for (const item of from) {
    const found = relationName(item);
    if (found === undefined) return undefined;
    names.push(...found);
  }
  return names;
}

function relationName(item: Json): string[] | undefined {
  const alias = (node: Json): string | undefined =>
    ((node.alias as Json | undefined)?.aliasname as string | undefined) ?? undefined;
  if (item.RangeVar !== undefined) {
    const r = item.RangeVar as Json;
    const own = alias(r);
    if (own !== undefined) return [pg.escapeIdentifier(own)];
    const relation = pg.escapeIdentifier(String(r.relname));
    return [
      typeof r.schemaname === 'string'
        ? `${pg.escapeIdentifier(r.schemaname)}.${relation}`
        : relation,
    ];
  }
  if (item.JoinExpr !== undefined) {
    const j = item.JoinExpr as Json;
    const own = alias(j);
    if (own !== undefined) return [pg.escapeIdentifier(own)];
    const left = relationName(j.larg as Json);
    const right = relationName(j.rarg as Json);
    return left === undefined || right === undefined ? undefined : [...left, ...right];
  }
  for (const kind of ['RangeSubselect', 'RangeFunction', 'RangeTableFunc']) {
    if (item[kind] === undefined) continue;
    const own = alias(item[kind] as Json);
    return own === undefined ? undefined : [pg.escapeIdentifier(own)];
  }
  return undefined;
}

/** Where the top level's LIMIT, OFFSET, FETCH or FOR (locking) clause starts, in bytes. */
function limitPosition(sql: string): number | undefined {
  const bytes = Buffer.from(sql);
  const tokens = (scanSync(sql) as { tokens: { start: number; end: number }[] }).tokens;
  let depth = 0;
  for (const { start, end } of tokens) {
    const text = bytes.subarray(start, end).toString().toLowerCase();
    if (text === '(') depth++;
    else if (text === ')') depth--;
    else if (depth === 0 && ['limit', 'offset', 'fetch', 'for'].includes(text)) return start;
  }
  return undefined;
}
