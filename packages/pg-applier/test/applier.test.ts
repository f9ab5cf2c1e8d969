// The applier against a real, throwaway PostgreSQL: committed SQL applied in slot order,
// exactly once, atomically with the applied slot; failures are outcomes, the same everywhere.
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgApplier, SlotGapError, type SqlEntry, type SqlWrite } from '../src/index.js';

let server: Postgres;
const clients: pg.Client[] = [];

async function connect(database = 'postgres'): Promise<pg.Client> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.user,
    database,
  });
  // A backend terminated on purpose (below) must not fail the run as an unhandled error.
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

/** A checksum of a table's rows, in primary-key order: equal tables, equal sums. */
async function checksum(client: pg.Client, table: string): Promise<string> {
  const result = await client.query<{ sum: string | null }>(
    `SELECT md5(string_agg(t::text, ',' ORDER BY t.x)) AS sum FROM ${table} t`,
  );
  return result.rows[0]?.sum ?? 'empty';
}

/**
 * How the suite's writes carry their values: as parameters (applied one statement at a
 * time), or written into the SQL (a batch then goes in two round trips: two-trips.ts).
 */
type Values = 'parameters' | 'literals';
let values: Values = 'parameters';

/** A write of `sql` with numeric `params`, in the current suite's style. */
const write = (
  sql: string,
  params: readonly number[],
  session?: { clientId: string; seq: number },
): SqlWrite =>
  values === 'parameters'
    ? { sql, params, ...session }
    : { sql: sql.replace(/\$(\d+)/g, (_, n: string) => String(params[Number(n) - 1])), ...session };

const insert = (x: number, y: number, session?: { clientId: string; seq: number }): SqlWrite =>
  write('INSERT INTO coordinates (x, y) VALUES ($1, $2)', [x, y], session);

beforeAll(async () => {
  server = await startPostgres();
  const admin = await connect();
  await admin.query('CREATE DATABASE replica_b');
}, 60_000);
afterAll(async () => {
  for (const client of clients) await client.end().catch(() => undefined);
  await server?.stop();
});

describe.each<Values>(['parameters', 'literals'])('PgApplier, values as %s', (style) => {
  let db: pg.Client;
  let applier: PgApplier;
  let group = 0;

  beforeEach(async () => {
    values = style;
    db = await connect();
    await db.query('DROP TABLE IF EXISTS coordinates');
    await db.query('CREATE TABLE coordinates (x int PRIMARY KEY, y int NOT NULL)');
    applier = await PgApplier.open(db, `${style}-g${++group}`);
  });

  it('applies entries in slot order and records the applied slot with them', async () => {
    expect(await applier.appliedThrough()).toBe(-1);
    const outcomes = await applier.apply([
      { slot: 1, writes: [insert(2, 2)] },
      { slot: 0, writes: [insert(1, 1)] },
      {
        slot: 2,
        writes: [write('UPDATE coordinates SET y = y * 10 WHERE x = $1 RETURNING y', [1])],
      },
    ]);
    expect(await applier.appliedThrough()).toBe(2);
    expect(outcomes.get(2)).toEqual([
      {
        ok: true,
        command: 'UPDATE',
        rowCount: 1,
        rows: [{ y: '10' }],
        fields: [expect.objectContaining({ name: 'y', dataTypeID: 23 })],
      },
    ]);
    expect((await db.query('SELECT x, y FROM coordinates ORDER BY x')).rows).toEqual([
      { x: 1, y: 10 },
      { x: 2, y: 2 },
    ]);
  });

  it('skips entries already applied: applying the same entries again changes nothing', async () => {
    const entries: SqlEntry[] = [
      { slot: 0, writes: [insert(1, 1)] },
      { slot: 1, writes: [{ sql: 'UPDATE coordinates SET y = y + 1' }] },
    ];
    await applier.apply(entries);
    const again = await applier.apply(entries);
    expect(again.size).toBe(0);
    expect((await db.query('SELECT y FROM coordinates')).rows).toEqual([{ y: 2 }]);
  });

  it('makes a failing write its outcome: rolled back alone, the entry still applied', async () => {
    const outcomes = await applier.apply([
      { slot: 0, writes: [insert(1, 1)] },
      { slot: 1, writes: [insert(1, 5), insert(3, 3), { sql: 'SELECT 1/0' }] },
    ]);
    const [duplicate, ok, division] = outcomes.get(1)!;
    expect(duplicate).toMatchObject({ ok: false, sqlState: '23505' });
    expect((duplicate as { message: string }).message).toMatch(/coordinates_pkey/);
    expect(ok).toMatchObject({ ok: true, command: 'INSERT', rowCount: 1 });
    expect(division).toMatchObject({ ok: false, sqlState: '22012' });
    expect(await applier.appliedThrough()).toBe(1);
    expect((await db.query('SELECT x, y FROM coordinates ORDER BY x')).rows).toEqual([
      { x: 1, y: 1 },
      { x: 3, y: 3 },
    ]);
  });

  it('applies a retried client write once and gives the retry the first outcome', async () => {
    await applier.apply([{ slot: 0, writes: [insert(1, 1, { clientId: 'c1', seq: 7 })] }]);
    // The client did not hear back, and its write was chosen again in a later slot.
    const retried = await applier.apply([
      {
        slot: 1,
        writes: [
          insert(1, 1, { clientId: 'c1', seq: 7 }),
          insert(9, 9, { clientId: 'c1', seq: 6 }),
        ],
      },
    ]);
    expect(retried.get(1)![0]).toMatchObject({ ok: true, command: 'INSERT', rowCount: 1 });
    expect(retried.get(1)![1]).toMatchObject({ ok: false, sqlState: '22023' });
    expect((await db.query('SELECT count(*)::int AS n FROM coordinates')).rows).toEqual([{ n: 1 }]);
  });

  it('refuses a hole in the log and applies nothing of that call', async () => {
    await applier.apply([{ slot: 0, writes: [insert(1, 1)] }]);
    await expect(
      applier.apply([
        { slot: 1, writes: [insert(2, 2)] },
        { slot: 3, writes: [insert(4, 4)] },
      ]),
    ).rejects.toBeInstanceOf(SlotGapError);
    expect(await applier.appliedThrough()).toBe(0);
    expect((await db.query('SELECT count(*)::int AS n FROM coordinates')).rows).toEqual([{ n: 1 }]);
  });

  it('loses a batch whole when its connection dies mid-way: no entry half applied', async () => {
    await applier.apply([{ slot: 0, writes: [insert(1, 1)] }]);
    const pid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const killer = await connect();
    // Its outcome is taken at once: the failure may come before the test looks at it.
    const batch = applier
      .apply([
        { slot: 1, writes: [insert(2, 2)] },
        { slot: 2, writes: [{ sql: 'SELECT pg_sleep(10)' }] },
        { slot: 3, writes: [insert(3, 3)] },
      ])
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await killer.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await batch).toBeInstanceOf(Error);
    db = await connect();
    const reopened = await PgApplier.open(db, `${style}-g${group}`);
    expect(await reopened.appliedThrough()).toBe(0);
    expect((await db.query('SELECT x FROM coordinates ORDER BY x')).rows).toEqual([{ x: 1 }]);
    // The batch applies in full when it is given again.
    await reopened.apply([
      { slot: 1, writes: [insert(2, 2)] },
      { slot: 2, writes: [{ sql: 'SELECT 1' }] },
      { slot: 3, writes: [insert(3, 3)] },
    ]);
    expect(await reopened.appliedThrough()).toBe(3);
  }, 30_000);

  it('applies only what is left when another applier moved the slot since its last commit', async () => {
    await applier.apply([{ slot: 0, writes: [insert(1, 1, { clientId: 'c1', seq: 1 })] }]);
    // A second applier of the same group and database (a node restarted while the first's
    // backend still ran) applies slot 1; the first one's remembered slot is now behind.
    const other = await PgApplier.open(await connect(), `${style}-g${group}`);
    await other.apply([{ slot: 1, writes: [insert(2, 2, { clientId: 'c1', seq: 2 })] }]);
    const outcomes = await applier.apply([
      { slot: 1, writes: [insert(2, 2, { clientId: 'c1', seq: 2 })] },
      { slot: 2, writes: [insert(3, 3, { clientId: 'c1', seq: 3 })] },
    ]);
    expect([...outcomes.keys()]).toEqual([2]);
    expect(await applier.appliedThrough()).toBe(2);
    // And with a hole as it sees it: slot 4 after its slot 2, while the other applied 3.
    await other.apply([{ slot: 3, writes: [insert(4, 4)] }]);
    expect([...(await applier.apply([{ slot: 4, writes: [insert(5, 5)] }])).keys()]).toEqual([4]);
    expect((await db.query('SELECT x FROM coordinates ORDER BY x')).rows.map((r) => r.x)).toEqual([
      1, 2, 3, 4, 5,
    ]);
  });

  it('leaves two replicas identical when they apply the same log, failures included', async () => {
    const b = await connect('replica_b');
    await b.query('DROP TABLE IF EXISTS coordinates');
    await b.query('CREATE TABLE coordinates (x int PRIMARY KEY, y int NOT NULL)');
    const replicaB = await PgApplier.open(b, `${style}-g${group}`);
    const log: SqlEntry[] = Array.from({ length: 40 }, (_, slot) => ({
      slot,
      writes: [
        insert(slot % 7, slot), // collides every 7 slots: a 23505 on both replicas
        write('UPDATE coordinates SET y = y + $1 WHERE x % 3 = 0', [slot]),
      ],
    }));
    // Replica A applies in one go, replica B in uneven batches: same state either way.
    await applier.apply(log);
    for (let i = 0; i < log.length; i += 6) await replicaB.apply(log.slice(i, i + 6));
    expect(await checksum(b, 'coordinates')).toBe(await checksum(db, 'coordinates'));
    expect(await replicaB.appliedThrough()).toBe(39);
  });
});
