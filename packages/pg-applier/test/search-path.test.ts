import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];

describe('search_path through the SQL front end', () => {
  let group: SqlGroup;

  const session = (id: string) => group.session(id);
  const rowsOn = (id: string, sql: string) => group.rowsOn(id, sql);
  const eventually = async (check: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('not within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    group = await SqlGroup.withFrontEnds('paths', peers);
    const a = await session('a');
    await a.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
    await a.query("SELECT synod.replicate_table('t')");
    // A local table of the same name in another schema, on node a only. Clients may not
    // create schemas: the database's owner does, and lets the client role use it.
    const client = group.nodes.get('a')!.machine.roles.client;
    await group.onDatabase('a', `CREATE SCHEMA s2; GRANT USAGE, CREATE ON SCHEMA s2 TO ${client}`);
    await a.query('CREATE TABLE s2.t (id int PRIMARY KEY, v text)');
    // And a replicated table in a schema of its own.
    await group.onDatabase(
      'a',
      'CREATE SCHEMA app; CREATE TABLE app.notes (id int PRIMARY KEY, body text)',
    );
    await a.query("SELECT synod.replicate_table('app.notes')");
    await a.end();
  }, 90_000);
  afterAll(async () => {
    await group?.stop();
  });

  it('writes the local s2.t, not the replicated public.t, when s2 comes first', async () => {
    const a = await session('a');
    await a.query('SET search_path TO s2, public');
    await a.query("INSERT INTO t VALUES (1, 'meant for s2.t')");
    expect((await a.query('SELECT v FROM t')).rows).toEqual([{ v: 'meant for s2.t' }]);
    await a.query('SET search_path TO public');
    await a.query("INSERT INTO t VALUES (2, 'replicated')");
    await a.end();
    expect(await rowsOn('a', 'SELECT id FROM s2.t')).toEqual([{ id: 1 }]);
    for (const id of peers)
      await eventually(
        async () =>
          JSON.stringify(await rowsOn(id, 'SELECT id FROM public.t ORDER BY id')) === '[{"id":2}]',
      );
  }, 30_000);

  it('routes a write of app.notes through the log when the session reaches it by its search_path', async () => {
    const b = await session('b');
    await b.query('SET search_path TO app, public');
    const inserted = await b.query("INSERT INTO notes VALUES (1, 'through the log') RETURNING id");
    expect(inserted.rows).toEqual([{ id: 1 }]);
    // Under the strong model a read sees its own write; and so does every replica.
    expect((await b.query('SELECT body FROM notes')).rows).toEqual([{ body: 'through the log' }]);
    await b.end();
    for (const id of peers)
      await eventually(
        async () => JSON.stringify(await rowsOn(id, 'SELECT id FROM app.notes')) === '[{"id":1}]',
      );
  }, 30_000);

  it('writes a temporary table that shadows a replicated one on this session alone', async () => {
    const a = await session('a');
    await a.query('CREATE TEMP TABLE t (id int, v text)');
    await a.query("INSERT INTO t VALUES (99, 'temporary')");
    expect((await a.query('SELECT id FROM t')).rows).toEqual([{ id: 99 }]);
    await a.end();
    for (const id of peers)
      expect(await rowsOn(id, 'SELECT id FROM public.t WHERE id = 99')).toEqual([]);
  }, 30_000);

  it('leaves a query that names its tables in full, or no table, as it was', async () => {
    const c = await session('c');
    await c.query('SET search_path TO s2, public');
    // c has no s2 schema: t is public.t here, a replicated table, so this goes through the log.
    await c.query("INSERT INTO t VALUES (3, 'from c')");
    await c.query("INSERT INTO public.t VALUES (4, 'qualified')");
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
    for (const id of peers)
      await eventually(
        async () =>
          JSON.stringify(await rowsOn(id, 'SELECT id FROM public.t ORDER BY id')) ===
          '[{"id":2},{"id":3},{"id":4}]',
      );
  }, 30_000);
});
