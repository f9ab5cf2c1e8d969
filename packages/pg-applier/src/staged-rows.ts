import type { Command } from '@synod/protocol';
import pg from 'pg';
import { SqlError } from './errors.js';

/**
 * A table whose rows are more than one log entry carries is replicated in parts: the node
 * that takes `synod table replicate` reads the rows at one moment (one REPEATABLE READ
 * snapshot) and puts them in the log as `stage` writes, each a JSON array of rows under the
 * entry limit; every replica keeps them in `synod.staged`, which is replicated state like the
 * tables (in snapshots too). The `replicate` entry then names the stage and its part count:
 * in its one transaction every replica replaces the table's rows with the staged ones and
 * drops the stage. All or nothing: a stage whose parts are not all there fails the replicate
 * alike on every replica, and nothing is replaced. A stage never finished (its node died) is
 * dropped by the first stage write STALE_AFTER_SLOTS slots later.
 */

/** A replicate entry's rows when they came in parts: the stage's id and its part count. */
export type StagedRows = {
  readonly id: string;
  readonly parts: number;
};

/**
 * Most bytes of one part: the most row data a replicate entry carries inline too, under the
 * node's default write limit (256 KiB) with room for the rest of the entry.
 */
export const MAX_STAGE_BYTES = 192 * 1024;
/** Most parts of one stage: with parts of 192 KiB, tables of up to about 384 MiB as JSON. */
export const MAX_STAGE_PARTS = 2048;
/** A stage older than this many slots when another stage write is applied is dropped. */
const STALE_AFTER_SLOTS = 20_000;
const STAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a `stage` write, from a client or the log: `{"op":"stage","id","part","rows"}`. */
export function stageCommand(
  command: Command,
  maxPartBytes: number,
): { op: 'stage'; id: string; part: number; rows: string } {
  const { id, part, rows } = command;
  if (typeof id !== 'string' || !STAGE_ID.test(id))
    throw new SqlError('22023', 'a stage write\'s "id" is 1 to 64 letters, digits, _ or -');
  if (
    typeof part !== 'number' ||
    !Number.isSafeInteger(part) ||
    part < 0 ||
    part >= MAX_STAGE_PARTS
  )
    throw new SqlError(
      '22023',
      `a stage write's "part" is a whole number below ${MAX_STAGE_PARTS}`,
    );
  if (typeof rows !== 'string' || rows.length > maxPartBytes || !rows.startsWith('['))
    throw new SqlError(
      '22023',
      'a stage write\'s "rows" is a JSON array of rows, within the entry limit',
    );
  try {
    if (!Array.isArray(JSON.parse(rows))) throw new Error('not an array');
  } catch {
    throw new SqlError('22023', 'a stage write\'s "rows" is a JSON array of rows');
  }
  return { op: 'stage', id, part, rows };
}

/** A staged replicate's rows, as a replicate entry names them. */
export function stagedRows(staged: unknown): StagedRows {
  const s = staged as Partial<StagedRows> | undefined;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.id !== 'string' ||
    !STAGE_ID.test(s.id) ||
    typeof s.parts !== 'number' ||
    !Number.isSafeInteger(s.parts) ||
    s.parts < 1 ||
    s.parts > MAX_STAGE_PARTS
  )
    throw new SqlError('22023', 'a replicate entry\'s "staged" is {"id":stage,"parts":count}');
  return { id: s.id, parts: s.parts };
}

/** The statement a replica runs for a stage write at `slot`: one statement, literals only. */
export function stageStatement(
  group: string,
  slot: number,
  stage: { readonly id: string; readonly part: number; readonly rows: string },
): string {
  const g = pg.escapeLiteral(group);
  return `WITH stale AS (DELETE FROM synod.staged WHERE group_name = ${g} AND slot < ${slot - STALE_AFTER_SLOTS})
INSERT INTO synod.staged (group_name, stage_id, part, slot, rows)
VALUES (${g}, ${pg.escapeLiteral(stage.id)}, ${stage.part}, ${slot}, ${pg.escapeLiteral(stage.rows)})
ON CONFLICT DO NOTHING`;
}

/**
 * PL/pgSQL for a replicate entry's DO block: fail unless every part is there, replace the
 * table's rows with the staged ones, drop the stage.
 */
export function copyStagedRows(
  group: string,
  table: { readonly key: string; readonly name: string },
  columns: readonly string[],
  staged: StagedRows,
): string {
  const name = table.name;
  const matches = (prefix: string): string =>
    `${prefix}group_name = ${pg.escapeLiteral(group)} AND ${prefix}stage_id = ${pg.escapeLiteral(staged.id)}`;
  const where = matches('');
  const list = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
  const rowList = columns.map((c) => `r.${pg.escapeIdentifier(c)}`).join(', ');
  const insert =
    columns.length === 0
      ? ''
      : `EXECUTE ${pg.escapeLiteral(`INSERT INTO ${name} (${list}) SELECT ${rowList} FROM synod.staged s, json_populate_recordset(NULL::${name}, s.rows::json) r WHERE ${matches('s.')}`)};`;
  return [
    `IF (SELECT count(*) FROM synod.staged WHERE ${where}) <> ${staged.parts} THEN RAISE EXCEPTION 'the rows of % were staged in ${staged.parts} parts and not all of them are in the log; replicate it again', ${pg.escapeLiteral(table.key)} USING ERRCODE = '55000'; END IF;`,
    `EXECUTE ${pg.escapeLiteral(`DELETE FROM ${name}`)};`,
    insert,
    `DELETE FROM synod.staged WHERE ${where};`,
  ].join(' ');
}

/**
 * The columns a table's rows are copied by, in order: its stored ones (a stored generated
 * column is computed again where the rows arrive). `name` is the quoted name.
 */
export async function storedColumns(client: pg.ClientBase, name: string): Promise<string[]> {
  const columns = await client.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
      ORDER BY attnum`,
    [name],
  );
  return columns.rows.map((c) => c.name);
}

/**
 * A table's rows read at one moment, as JSON arrays of at most `maxPartBytes` each (a row
 * larger than that is refused), and its stored columns. `table.name` is the quoted name.
 */
export async function readRowParts(
  client: pg.ClientBase,
  table: { readonly key: string; readonly name: string },
  maxPartBytes: number,
): Promise<{ columns: string[]; parts: string[] }> {
  const { name, key } = table;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const columns = await storedColumns(client, name);
    await client.query(
      `DECLARE synod_rows NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS r FROM ${name} t`,
    );
    const parts: string[] = [];
    let part: string[] = [];
    let bytes = 2;
    for (;;) {
      const batch = await client.query<{ r: string }>('FETCH 1000 FROM synod_rows');
      for (const { r } of batch.rows) {
        const size = Buffer.byteLength(r);
        if (size + 2 > maxPartBytes)
          throw new SqlError(
            '54000',
            `a row of "${key}" is ${size} bytes as JSON, more than one log entry carries (${maxPartBytes})`,
          );
        if (bytes + size + 1 > maxPartBytes) {
          parts.push(`[${part.join(',')}]`);
          part = [];
          bytes = 2;
        }
        part.push(r);
        bytes += size + 1;
      }
      if (batch.rows.length === 0) break;
    }
    if (part.length > 0 || parts.length === 0) parts.push(`[${part.join(',')}]`);
    if (parts.length > MAX_STAGE_PARTS)
      throw new SqlError(
        '54000',
        `the rows of "${key}" need ${parts.length} log entries, more than the ${MAX_STAGE_PARTS} one replicate takes: replicate it empty and copy its rows in through the front end, in parts`,
      );
    await client.query('COMMIT');
    return { columns, parts };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
