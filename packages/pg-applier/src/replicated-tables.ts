import pg from 'pg';
import { classify } from './classify.js';
import { DeterminismError, SqlError } from './errors.js';
import { copyStagedRows, readRowParts, type StagedRows, storedColumns } from './staged-rows.js';

/** `public.t` and `t` name one table (the default search path). */
export function tableKey(table: string): string {
  return table.startsWith('public.') ? table.slice('public.'.length) : table;
}

/** `t` or `schema.t`, each part a plain lower-case identifier (as PostgreSQL folds them). */
const TABLE_NAME = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$/;

/** Refuses a name the replicated-table catalog cannot hold unambiguously (SQLSTATE 42602). */
export function assertTableName(table: unknown): asserts table is string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table) || table.length > 127)
    throw new SqlError(
      '42602',
      `invalid table name ${JSON.stringify(table)}: write it as name or schema.name, in lower case, as PostgreSQL folds unquoted names`,
    );
}

/** The table's name as SQL: each part quoted, `public.` dropped. */
export const quoteTable = (table: string): string =>
  tableKey(table)
    .split('.')
    .map((part) => pg.escapeIdentifier(part))
    .join('.');

/** A table's schema (`public` when it names none) and its name within it. */
export function tableParts(table: string): { schema: string; relation: string } {
  const key = tableKey(table);
  const dot = key.indexOf('.');
  return dot < 0
    ? { schema: 'public', relation: key }
    : { schema: key.slice(0, dot), relation: key.slice(dot + 1) };
}

/** The grants that leave `table` readable by `client` (a role) and writable by its owner alone. */
export function readOnlyGrants(table: string, client: string): string[] {
  const name = quoteTable(table);
  return [
    `REVOKE ALL ON ${name} FROM PUBLIC, ${pg.escapeIdentifier(client)}`,
    `GRANT SELECT ON ${name} TO ${pg.escapeIdentifier(client)}`,
  ];
}

/** CREATE SCHEMA of a schema-qualified table's schema; none for a table in public. */
const schemaStatements = (key: string): string[] =>
  key.includes('.')
    ? [`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(key.split('.')[0]!)}`]
    : [];

interface ColumnRow {
  readonly name: string;
  readonly type: string;
  readonly not_null: boolean;
  readonly identity: string;
  readonly generated: string;
  readonly expr: string | null;
}

/**
 * The statements that create `table` as it is in this database, for the replicas where it
 * does not exist yet: columns with their types, NOT NULL, defaults and stored generated
 * columns, and the primary key, unique and check constraints (not foreign keys, indexes,
 * triggers or grants). Refuses, naming the column, what replicas could not replay alike: an
 * identity column or a default that calls a volatile function (serial's nextval(), now()),
 * because each replica would compute its own value, and a sequence is not rolled back with
 * a transaction that a crash undoes.
 */
export async function tableDefinition(
  client: pg.ClientBase | pg.Pool,
  table: string,
): Promise<string[]> {
  assertTableName(table);
  const key = tableKey(table);
  const relation = await client.query<{ oid: number; kind: string }>(
    'SELECT c.oid, c.relkind AS kind FROM pg_class c WHERE c.oid = to_regclass($1)',
    [quoteTable(key)],
  );
  const found = relation.rows[0];
  if (found === undefined)
    throw new SqlError(
      '42P01',
      `table "${key}" does not exist on this node: create it here first (replicating it creates it on the other nodes)`,
    );
  if (found.kind !== 'r')
    throw new DeterminismError(
      'DDL_ON_REPLICATED_TABLE',
      `"${key}" is not a plain table (relkind ${found.kind}); only plain tables are replicated`,
    );
  const columns = await client.query<ColumnRow>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS not_null, a.attidentity AS identity, a.attgenerated AS generated,
            pg_get_expr(d.adbin, d.adrelid) AS expr
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [found.oid],
  );
  const parts: string[] = [];
  for (const column of columns.rows) {
    if (column.identity !== '')
      throw new DeterminismError(
        'VOLATILE_FUNCTION',
        `column "${column.name}" of "${key}" is an identity column: its sequence would give each replica its own numbers; give the values in the writes`,
      );
    let part = `${pg.escapeIdentifier(column.name)} ${column.type}`;
    if (column.expr !== null) {
      const volatile = classify(`SELECT ${column.expr}`)[0]?.volatile ?? [];
      if (volatile.length > 0)
        throw new DeterminismError(
          'VOLATILE_FUNCTION',
          `column "${column.name}" of "${key}" defaults to ${column.expr}, which calls ${volatile.map((f) => `${f}()`).join(', ')}: each replica would compute its own value; drop the default and give the values in the writes`,
        );
      part +=
        column.generated === 's'
          ? ` GENERATED ALWAYS AS (${column.expr}) STORED`
          : ` DEFAULT ${column.expr}`;
    }
    if (column.not_null) part += ' NOT NULL';
    parts.push(part);
  }
  const constraints = await client.query<{ name: string; definition: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
      WHERE conrelid = $1 AND contype IN ('p', 'u', 'c') ORDER BY conname`,
    [found.oid],
  );
  for (const c of constraints.rows)
    parts.push(`CONSTRAINT ${pg.escapeIdentifier(c.name)} ${c.definition}`);
  return [
    ...schemaStatements(key),
    `CREATE TABLE IF NOT EXISTS ${quoteTable(key)} (${parts.join(', ')})`,
  ];
}

/**
 * Checks a definition that came with a `replicate` write (computed by the node that took it,
 * which forwarded it to the leader): only CREATE TABLE of that very table, preceded by
 * CREATE SCHEMA of its schema when it has one, with no volatile function anywhere.
 */
export function assertDefinition(
  table: string,
  definition: unknown,
): asserts definition is string[] {
  const key = tableKey(table);
  const bad = (why: string): never => {
    throw new DeterminismError('DDL_ON_REPLICATED_TABLE', `bad definition for "${key}": ${why}`);
  };
  if (!Array.isArray(definition) || !definition.every((d) => typeof d === 'string'))
    bad('not a list of statements');
  const statements = definition as string[];
  const schema = schemaStatements(key);
  if (statements.length !== schema.length + 1) bad(`${statements.length} statements`);
  if (schema.length > 0 && statements[0] !== schema[0]) bad('not its schema first');
  const parsed = classify(statements.at(-1)!);
  const create = parsed[0];
  if (parsed.length !== 1 || create?.node !== 'CreateStmt') bad('not one CREATE TABLE');
  if (create!.defines.length !== 1 || tableKey(create!.defines[0]!) !== key)
    bad(`it creates ${create!.defines.join(', ')}`);
  if (create!.volatile.length > 0)
    bad(`it calls ${create!.volatile.map((f) => `${f}()`).join(', ')}`);
}

/**
 * The one statement a replica runs to apply a `replicate` entry: create the table if it is
 * not there (its schema too, when it is missing), take away what would run on this replica
 * alone when the table is written (its rules, its user triggers), leave it readable but not
 * writable by `readers` (the client role) when given, and record it in `synod.replicated`,
 * in the entry's transaction. It has the same outcome on every replica that has the table or
 * can create it. Built at each replica from the entry's table and definition: the role
 * names are this node's.
 */
export function replicateStatement(
  group: string,
  table: string,
  definition: readonly string[],
  options: {
    readonly readers?: string;
    /**
     * The table's rows as the node that took the request had them: every replica ends with
     * exactly these, unless the table was replicated already (then nothing is replaced).
     */
    readonly content?: TableContent;
  } = {},
): string {
  const key = tableKey(table);
  const name = quoteTable(key);
  const { schema, relation } = tableParts(key);
  const createSchema = schemaStatements(key);
  const exec = (statement: string): string => `EXECUTE ${pg.escapeLiteral(statement)};`;
  const body = [
    ...definition.map((statement) =>
      createSchema.includes(statement)
        ? // Only when missing: creating a schema needs CREATE on the database, which the
          // apply role lacks (the node made the schema before it applies the entry).
          `IF to_regnamespace(${pg.escapeLiteral(pg.escapeIdentifier(schema))}) IS NULL THEN ${exec(statement)} END IF;`
        : exec(statement),
    ),
    `FOR r IN SELECT rulename FROM pg_rules WHERE schemaname = ${pg.escapeLiteral(schema)} AND tablename = ${pg.escapeLiteral(relation)} LOOP EXECUTE format('DROP RULE %I ON %s', r.rulename, ${pg.escapeLiteral(name)}); END LOOP;`,
    exec(`ALTER TABLE ${name} DISABLE TRIGGER USER`),
    ...(options.readers === undefined ? [] : readOnlyGrants(key, options.readers).map(exec)),
    ...(options.content === undefined ? [] : [copyRows(group, key, name, options.content)]),
    `INSERT INTO synod.replicated (group_name, table_name) VALUES (${pg.escapeLiteral(group)}, ${pg.escapeLiteral(key)}) ON CONFLICT DO NOTHING;`,
  ].join(' ');
  // Dollar quoting cannot be escaped: a body holding the tag would end the block early.
  if (body.includes('$synod$'))
    throw new SqlError('42601', 'a table definition holding "$synod$" cannot be replicated');
  return `DO $synod$ DECLARE r record; BEGIN ${body} END $synod$`;
}

/**
 * A replicate entry's rows: its stored columns, and the rows as a JSON array, or the stage
 * that holds them in parts (staged-rows.ts).
 */
export type TableContent =
  | { readonly columns: readonly string[]; readonly rows: string }
  | { readonly columns: readonly string[]; readonly staged: StagedRows };

/** A table's rows at one moment, as JSON arrays of at most `maxPartBytes`, and its columns. */
export function readRowsInParts(
  client: pg.ClientBase,
  table: string,
  maxPartBytes: number,
): Promise<{ columns: string[]; parts: string[] }> {
  const key = tableKey(table);
  return readRowParts(client, { key, name: quoteTable(key) }, maxPartBytes);
}

/** A table's rows as a snapshot carries them: its stored columns, and the rows as JSON. */
export async function readRows(
  client: pg.ClientBase,
  table: string,
): Promise<{ columns: string[]; rows: string }> {
  const name = quoteTable(table);
  const columns = await storedColumns(client, name);
  const rows = await client.query<{ rows: string }>(
    `SELECT coalesce(json_agg(t), '[]')::text AS rows FROM ${name} t`,
  );
  return { columns, rows: rows.rows[0]?.rows ?? '[]' };
}

/** Replaces the table's rows with the entry's, the first time the table is replicated. */
function copyRows(group: string, key: string, name: string, content: TableContent): string {
  const first = `IF NOT EXISTS (SELECT 1 FROM synod.replicated WHERE group_name = ${pg.escapeLiteral(group)} AND table_name = ${pg.escapeLiteral(key)}) THEN`;
  if ('staged' in content)
    return `${first} ${copyStagedRows(group, { key, name }, content.columns, content.staged)} END IF;`;
  const insert = insertRowsStatement(name, content.columns);
  const run =
    insert === undefined
      ? ''
      : `EXECUTE ${pg.escapeLiteral(insert)} USING ${pg.escapeLiteral(content.rows)}::json;`;
  return `${first} ${`EXECUTE ${pg.escapeLiteral(deleteRowsStatement(name))};`} ${run} END IF;`;
}

/**
 * Empties a table (quoted `name`) before its rows are replaced: DELETE, not TRUNCATE, since a
 * local table may reference this one, and TRUNCATE refuses that.
 */
export const deleteRowsStatement = (name: string): string => `DELETE FROM ${name}`;

/**
 * Inserts rows given as a JSON array ($1) into a table (quoted `name`), each column with its
 * own type; undefined when there is no column to insert.
 */
export function insertRowsStatement(name: string, columns: readonly string[]): string | undefined {
  if (columns.length === 0) return undefined;
  const list = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
  return `INSERT INTO ${name} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::${name}, $1::json)`;
}

/** The tables a group replicated at run time, as this database has applied them. */
export async function loadReplicated(client: pg.ClientBase, group: string): Promise<string[]> {
  const result = await client.query<{ table_name: string }>(
    'SELECT table_name FROM synod.replicated WHERE group_name = $1 ORDER BY table_name',
    [group],
  );
  return result.rows.map((row) => row.table_name);
}
