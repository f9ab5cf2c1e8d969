// Replicating a table that already has rows makes the copies equal: its rows travel in the
// replicate entry with its definition, and every replica ends with exactly those rows, whether
// it had no such table, an empty one, or other rows. A table whose rows do not fit in one log
// entry is refused, and nothing is replicated.
import type { ClientWrite, Command } from '@synod/protocol';
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REPLICATED_ROWS_BYTES, SqlMachine } from '../src/index.js';

let server: Postgres;
const url = (database: string): string =>
  `postgres://${server.user}@${server.host}:${server.port}/${database}`;
const replicas = ['origin', 'empty', 'other'] as const;
const machines = new Map<string, SqlMachine>();
let slot = 0;

const onDatabase = async (database: string, sql: string): Promise<unknown[]> => {
  const db = new pg.Client({ connectionString: url(database) });
  await db.connect();
  try {
    return (await db.query(sql)).rows;
  } finally {
    await db.end();
  }
};

/** One log entry, applied by every replica in the same slot; the outcomes, by replica. */
const applyEverywhere = async (write: ClientWrite): Promise<unknown[]> => {
  const at = slot++;
  const outcomes: unknown[] = [];
  for (const name of replicas) {
    const results = await machines.get(name)!.apply([{ slot: at, writes: [write] }]);
    outcomes.push(results.get(at)?.[0]);
  }
  return outcomes;
};

const replicate = async (table: string): Promise<Command> => {
  const admitted = await machines.get('origin')!.admit({ op: 'replicate', table });
  if (admitted === undefined || 'refused' in admitted) throw new Error(JSON.stringify(admitted));
  return admitted.command;
};

beforeAll(async () => {
  server = await startPostgres();
  for (const name of replicas) await onDatabase('postgres', `CREATE DATABASE ${name}`);
  for (const name of replicas)
    machines.set(
      name,
      await SqlMachine.open({ connectionString: url(name), group: 'rows', replicated: [] }),
    );
}, 60_000);
afterAll(async () => {
  for (const machine of machines.values()) await machine.close();
  await server?.stop();
});

describe('replicating a table with rows', () => {
  it('gives every replica exactly the rows of the node that took the request', async () => {
    await onDatabase('origin', 'CREATE TABLE kept (id int PRIMARY KEY, label text, n numeric)');
    await onDatabase(
      'origin',
      "INSERT INTO kept VALUES (1, 'one', 1.5), (2, 'two''s', NULL), (3, NULL, 3)",
    );
    // Another replica has the table already, with rows of its own.
    await onDatabase('other', 'CREATE TABLE kept (id int PRIMARY KEY, label text, n numeric)');
    await onDatabase('other', "INSERT INTO kept VALUES (1, 'stale', 0), (9, 'only here', 9)");
    const command = await replicate('kept');
    const outcomes = await applyEverywhere({ clientId: 'op', seq: 1, command });
    expect(outcomes).toEqual(replicas.map(() => ({ ok: true, result: { replicated: 'kept' } })));
    const rows = await Promise.all(
      replicas.map((name) => onDatabase(name, 'SELECT * FROM kept ORDER BY id')),
    );
    expect(rows[0]).toHaveLength(3);
    expect(rows[1]).toEqual(rows[0]);
    expect(rows[2]).toEqual(rows[0]);
    const digests = await Promise.all(replicas.map((name) => machines.get(name)!.digest()));
    expect(new Set(digests).size).toBe(1);
  });

  it('does not replace the rows of a table replicated already: a second replicate changes nothing', async () => {
    const again = await replicate('kept'); // rows as of now, on origin
    await applyEverywhere({
      clientId: 'w',
      seq: 1,
      command: { op: 'sql', sql: "INSERT INTO kept VALUES (4, 'after', 4)" },
    });
    await applyEverywhere({ clientId: 'op', seq: 2, command: again });
    for (const name of replicas)
      expect(await onDatabase(name, 'SELECT id FROM kept ORDER BY id')).toEqual([
        { id: 1 },
        { id: 2 },
        { id: 3 },
        { id: 4 },
      ]);
  });

  it('refuses a table whose rows do not fit in one log entry, naming the limit', async () => {
    await onDatabase('origin', 'CREATE TABLE big (id int PRIMARY KEY, body text)');
    await onDatabase(
      'origin',
      `INSERT INTO big SELECT i, repeat('x', 1000) FROM generate_series(1, ${Math.ceil(MAX_REPLICATED_ROWS_BYTES / 1000) + 10}) i`,
    );
    const admitted = await machines.get('origin')!.admit({ op: 'replicate', table: 'big' });
    expect(admitted).toMatchObject({ refused: expect.stringMatching(/^ERROR 54000: .*big/) });
    expect((await machines.get('origin')!.read({ op: 'tables' })) as object).toEqual({
      tables: ['kept'],
    });
  });

  it('refuses rows that are not a JSON array when a node forwards a replicate entry', async () => {
    const command = await replicate('kept');
    const forged = await machines.get('empty')!.admit({ ...command, rows: '{"not": "rows"}' });
    expect(forged).toMatchObject({ refused: expect.stringMatching(/JSON array/) });
  });
});
