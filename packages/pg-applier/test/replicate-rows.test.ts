// Replicating a table that already has rows makes the copies equal: its rows travel in the
// replicate entry with its definition, and every replica ends with exactly those rows, whether
// it had no such table, an empty one, or other rows. A table whose rows do not fit in one log
// entry travels in parts (stage writes) that the replicate entry takes all or nothing; a
// replica that joins mid-way gets the parts in its snapshot.
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

  const bigTable = async (table: string, rows: number): Promise<void> => {
    await onDatabase('origin', `CREATE TABLE ${table} (id int PRIMARY KEY, body text)`);
    await onDatabase(
      'origin',
      `INSERT INTO ${table} SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, ${rows}) i`,
    );
  };
  const rowsNeeded = Math.ceil((MAX_REPLICATED_ROWS_BYTES * 3.5) / 1000);

  it('without a way to log its own writes, refuses a table larger than one entry, naming the limit', async () => {
    await bigTable('big', Math.ceil(MAX_REPLICATED_ROWS_BYTES / 1000) + 10);
    const admitted = await machines.get('origin')!.admit({ op: 'replicate', table: 'big' });
    expect(admitted).toMatchObject({ refused: expect.stringMatching(/big/), sqlState: '54000' });
    expect((await machines.get('origin')!.read({ op: 'tables' })) as object).toEqual({
      tables: ['kept'],
    });
  });

  it('stages a larger table in parts through the log, and every replica ends with exactly its rows', async () => {
    await bigTable('large', rowsNeeded);
    await onDatabase('other', 'CREATE TABLE large (id int PRIMARY KEY, body text)');
    await onDatabase('other', "INSERT INTO large VALUES (-1, 'only here')");
    const origin = machines.get('origin')!;
    const parts: Command[] = [];
    origin.logWrite = async (command, clientId, seq) => {
      parts.push(command);
      const outcomes = await applyEverywhere({ clientId, seq, command });
      expect(outcomes.every((o) => (o as { ok: boolean }).ok)).toBe(true);
    };
    try {
      const command = await replicate('large');
      expect(parts.length).toBeGreaterThanOrEqual(4);
      expect(command).toMatchObject({ staged: { parts: parts.length } });
      const late = await Promise.all(
        replicas.map((name) => onDatabase(name, 'SELECT count(*)::int AS n FROM synod.staged')),
      );
      expect(late).toEqual(replicas.map(() => [{ n: parts.length }]));
      const outcomes = await applyEverywhere({ clientId: 'op', seq: 3, command });
      expect(outcomes).toEqual(replicas.map(() => ({ ok: true, result: { replicated: 'large' } })));
    } finally {
      origin.logWrite = undefined;
    }
    for (const name of replicas) {
      expect(
        await onDatabase(name, 'SELECT count(*)::int AS n, min(id) AS low FROM large'),
      ).toEqual([{ n: rowsNeeded, low: 1 }]);
      expect(await onDatabase(name, 'SELECT count(*)::int AS n FROM synod.staged')).toEqual([
        { n: 0 },
      ]);
    }
    const digests = await Promise.all(replicas.map((name) => machines.get(name)!.digest()));
    expect(new Set(digests).size).toBe(1);
  });

  it('fails a replicate whose parts are not all in the log alike on every replica, replacing nothing', async () => {
    await bigTable('partial', rowsNeeded);
    const origin = machines.get('origin')!;
    origin.logWrite = async (command, clientId, seq) => {
      if (command.part === 1) return; // lost: its node died mid-way, say
      await applyEverywhere({ clientId, seq, command });
    };
    try {
      const command = await replicate('partial');
      const outcomes = await applyEverywhere({ clientId: 'op', seq: 4, command });
      expect(new Set(outcomes.map((o) => JSON.stringify(o))).size).toBe(1);
      expect(outcomes[0]).toMatchObject({
        ok: false,
        sqlState: '55000',
        message: expect.stringMatching(/not all of them/),
      });
    } finally {
      origin.logWrite = undefined;
    }
    expect(((await origin.read({ op: 'tables' })) as { tables: string[] }).tables).not.toContain(
      'partial',
    );
    expect(await onDatabase('empty', "SELECT to_regclass('partial') IS NULL AS gone")).toEqual([
      { gone: true },
    ]);
  });

  it('carries staged parts in a snapshot, so a replica that joins mid-way applies the replicate alike', async () => {
    await onDatabase('postgres', 'CREATE DATABASE late');
    const late = await SqlMachine.open({
      connectionString: url('late'),
      group: 'rows',
      replicated: [],
    });
    try {
      await bigTable('joined', rowsNeeded);
      const origin = machines.get('origin')!;
      origin.logWrite = async (command, clientId, seq) => {
        await applyEverywhere({ clientId, seq, command });
      };
      let command: Command;
      try {
        command = await replicate('joined');
      } finally {
        origin.logWrite = undefined;
      }
      await late.install(await machines.get('empty')!.snapshot());
      const at = slot++;
      const results = await late.apply([
        { slot: at, writes: [{ clientId: 'op', seq: 5, command }] },
      ]);
      expect(results.get(at)?.[0]).toEqual({ ok: true, result: { replicated: 'joined' } });
      expect(await onDatabase('late', 'SELECT count(*)::int AS n FROM joined')).toEqual([
        { n: rowsNeeded },
      ]);
    } finally {
      await late.close();
    }
  });

  it('refuses rows that are not a JSON array when a node forwards a replicate entry', async () => {
    const command = await replicate('kept');
    const forged = await machines.get('empty')!.admit({ ...command, rows: '{"not": "rows"}' });
    expect(forged).toMatchObject({ refused: expect.stringMatching(/JSON array/) });
  });
});
