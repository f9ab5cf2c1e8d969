// Seed 000's demo on real parts, without psql yet: three node runtimes over a real
// nats-server, each applying the group's log to its own PostgreSQL database with the SQL
// machine. Writes enter through any node; replicas end identical, failures included.
import { waitFor, whileLeaderMoves } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlFrontEnd } from '../src/index.js';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];

describe('SQL replicated through a group (seed 000)', () => {
  let group: SqlGroup;
  let seq = 0;

  const url = (id: string) => group.url(id);
  const startNode = async (id: string): Promise<void> => {
    await group.startNode(id);
  };
  const stopNode = (id: string): Promise<void> => group.stopNode(id);
  const ask = (subject: string, body: unknown) => group.ask(subject, body);
  /** A write through node `id`, retried as a client would while leadership settles. */
  const sql = async (id: string, text: string, params: unknown[] = []) => {
    const body = {
      clientId: 'psql-stand-in',
      seq: ++seq,
      command: { op: 'sql', sql: text, params },
    };
    return whileLeaderMoves(() => ask(`synod.mokka.node.${id}.write`, body));
  };
  const query = (id: string, text: string, consistency = 'strong') =>
    ask(`synod.mokka.node.${id}.read`, { command: { op: 'query', sql: text }, consistency });
  const digests = async (): Promise<Set<string>> => new Set(await group.digests());

  beforeAll(async () => {
    group = await SqlGroup.start('mokka', peers, { peers, replicated: ['coordinates'] });
    // As in pg_paxos, each node creates the table; its writes are then replicated.
    for (const id of peers)
      await group.onDatabase(id, 'CREATE TABLE coordinates (x int PRIMARY KEY, y int NOT NULL)');
    for (const id of peers) await startNode(id);
    await group.leaderKnown();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  it('runs seed 000: insert on a, update on b, read on a; b down, insert, b back with both rows', async () => {
    expect(await sql('a', 'INSERT INTO coordinates VALUES ($1, $2)', [3, 3])).toMatchObject({
      ok: true,
      result: { command: 'INSERT', rowCount: 1 },
    });
    expect(await sql('b', 'UPDATE coordinates SET x = x * 10')).toMatchObject({
      ok: true,
      result: { command: 'UPDATE', rowCount: 1 },
    });
    expect(await query('a', 'SELECT x, y FROM coordinates')).toMatchObject({
      ok: true,
      result: { rows: [{ x: 30, y: 3 }] },
    });
    await stopNode('b');
    expect(await sql('a', 'INSERT INTO coordinates VALUES (4, 4)')).toMatchObject({ ok: true });
    await startNode('b');
    expect(await query('b', 'SELECT x, y FROM coordinates ORDER BY x')).toMatchObject({
      ok: true,
      result: {
        rows: [
          { x: 4, y: 4 },
          { x: 30, y: 3 },
        ],
      },
    });
    await waitFor('identical replicas', async () => (await digests()).size === 1, 10_000, 50);
  }, 60_000);

  it('reports a constraint violation with its SQLSTATE and keeps the replicas identical', async () => {
    const answer = await sql('c', 'INSERT INTO coordinates VALUES (4, 40)');
    expect(answer).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(answer.error).toMatchObject({
      sqlState: '23505',
      message: expect.stringMatching(/^duplicate key/),
    });
    expect(await query('a', 'SELECT y FROM coordinates WHERE x = 4', 'linearizable')).toMatchObject(
      {
        result: { rows: [{ y: 4 }] },
      },
    );
    await waitFor('identical replicas', async () => (await digests()).size === 1, 10_000, 50);
  }, 30_000);

  it('replicates a table at run time: created on one node, made on the others, kept on restart', async () => {
    // Made on a node that does not lead: the leader lacks the table and checks the definition.
    const leader = group.nodes.get('a')!.runtime.leader;
    const maker = peers.find((id) => id !== leader)!;
    const db = new pg.Client({ connectionString: url(maker) });
    await db.connect();
    await db.query(
      `CREATE TABLE points (id int PRIMARY KEY, label text NOT NULL DEFAULT 'none',
                            CONSTRAINT positive CHECK (id > 0))`,
    );
    await db.query('CREATE TABLE counters (id serial PRIMARY KEY)');
    await db.end();
    const write = (id: string, command: Record<string, unknown>) =>
      whileLeaderMoves(() =>
        ask(`synod.mokka.node.${id}.write`, { clientId: 'admin', seq: ++seq, command }),
      );
    expect(await write(maker, { op: 'replicate', table: 'points' })).toMatchObject({
      ok: true,
      result: { replicated: 'points' },
    });
    // A strong read on c applies through the replicate entry: c now routes points via the log.
    expect(
      await ask('synod.mokka.node.c.read', { command: { op: 'tables' }, consistency: 'strong' }),
    ).toMatchObject({ result: { tables: ['coordinates', 'points'] } });
    expect(await sql('c', 'INSERT INTO points (id) VALUES (1)')).toMatchObject({ ok: true });
    const negative = await sql('b', 'INSERT INTO points VALUES (-1, $1)', ['x']);
    expect(negative.error).toMatchObject({
      sqlState: '23514',
      message: expect.stringMatching(/"positive"/),
    });
    for (const id of peers)
      expect(await query(id, 'SELECT id, label FROM points')).toMatchObject({
        result: { rows: [{ id: 1, label: 'none' }] },
      });
    // b was started with only coordinates; it remembers points from its database.
    await stopNode('b');
    await startNode('b');
    expect(
      await ask('synod.mokka.node.b.read', {
        command: { op: 'tables' },
        consistency: 'optimistic',
      }),
    ).toMatchObject({ result: { tables: ['coordinates', 'points'] } });
    await waitFor('identical replicas', async () => (await digests()).size === 1, 10_000, 50);
    // Refused before the log: a serial column, a missing table, a definition made up by hand.
    const serial = await write(maker, { op: 'replicate', table: 'counters' });
    expect((serial.error as { message: string }).message).toMatch(/nextval\(\)/);
    const missing = await write('c', { op: 'replicate', table: 'points2' });
    expect(missing.error).toMatchObject({ sqlState: '42P01' });
    const forged = await write('c', {
      op: 'replicate',
      table: 'points2',
      definition: ['DROP TABLE coordinates'],
    });
    expect((forged.error as { message: string }).message).toMatch(/bad definition/);
    expect(await query('a', 'SELECT count(*)::int AS n FROM coordinates')).toMatchObject({
      result: { rows: [{ n: 2 }] },
    });
  }, 60_000);

  it('keeps applying after its database restarts: the apply connection is opened again', async () => {
    await group.postgres.restart();
    expect(await sql('a', 'INSERT INTO coordinates VALUES (9, 9)')).toMatchObject({ ok: true });
    for (const id of peers)
      expect(await query(id, 'SELECT y FROM coordinates WHERE x = 9')).toMatchObject({
        ok: true,
        result: { rows: [{ y: 9 }] },
      });
    await waitFor('identical replicas', async () => (await digests()).size === 1, 10_000, 50);
    await sql('a', 'DELETE FROM coordinates WHERE x = 9');
  }, 60_000);

  it('makes a lagging node catch up before it reads or writes alone: a just-replicated table goes through the log', async () => {
    // A follower's wire front end, and that follower held back: a lock on its applied slot
    // stalls its applier. (Not the leader: it answers writes once it has applied them.)
    const leader = group.nodes.get('a')!.runtime.leader!;
    const lagger = peers.find((id) => id !== leader)!;
    const c = group.nodes.get(lagger)!;
    const frontEnd = await SqlFrontEnd.start({
      port: 0,
      group: 'mokka',
      nodeId: lagger,
      transport: c.transport,
      connectionString: url(lagger),
      replicated: c.machine.replicatedTables,
    });
    const holder = new pg.Client({ connectionString: url(lagger) });
    const psqlOnC = new pg.Client({
      host: '127.0.0.1',
      port: frontEnd.port,
      user: 'postgres',
      database: 'synod',
    });
    try {
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query("SELECT slot FROM synod.applied WHERE group_name = 'mokka' FOR UPDATE");
      const db = new pg.Client({ connectionString: url(leader) });
      await db.connect();
      await db.query('CREATE TABLE late (id int PRIMARY KEY)');
      await db.end();
      expect(
        await whileLeaderMoves(() =>
          ask(`synod.mokka.node.${leader}.write`, {
            clientId: 'admin',
            seq: ++seq,
            command: { op: 'replicate', table: 'late' },
          }),
        ),
      ).toMatchObject({ ok: true });
      expect(c.machine.replicatedTables.has('late')).toBe(false);
      // Run alone on the lagging node, this read would fail there (no table yet: 42P01), and
      // this insert would also reach no other node.
      await psqlOnC.connect();
      const read = psqlOnC.query('SELECT count(*)::int AS n FROM late');
      const insert = psqlOnC.query('INSERT INTO late VALUES (1)');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.query('ROLLBACK');
      expect((await read).rows).toEqual([{ n: 0 }]);
      expect((await insert).rowCount).toBe(1);
      expect(await query(leader, 'SELECT id FROM late')).toMatchObject({
        result: { rows: [{ id: 1 }] },
      });
    } finally {
      await holder.end().catch(() => undefined);
      await psqlOnC.end().catch(() => undefined);
      await frontEnd.stop();
    }
  }, 60_000);

  it('refuses what replicas could not replay alike, before it enters the log', async () => {
    const volatile = await sql(
      'a',
      'INSERT INTO coordinates VALUES (5, extract(epoch FROM now())::int)',
    );
    expect(volatile).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect((volatile.error as { message: string }).message).toMatch(/now\(\)/);
    const invalid = await sql('a', 'INSERT INTO coordinates VALUES (6,');
    expect(invalid.error).toMatchObject({
      sqlState: '42601',
      message: expect.stringMatching(/^syntax error/),
    });
    const local = await sql('a', 'CREATE TABLE scratch (a int)');
    expect((local.error as { message: string }).message).toMatch(
      /not a write of a replicated table/,
    );
    expect(await query('b', 'SELECT count(*)::int AS n FROM coordinates')).toMatchObject({
      result: { rows: [{ n: 2 }] },
    });
  }, 30_000);
});
