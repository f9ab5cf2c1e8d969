// Seed 000 with real processes and the embedded default: a nats-server and three
// `synod node start --machine sql` processes, each with the PostgreSQL server it starts in its
// own data directory (no --pg). The table is created on each node, as in pg_paxos; its writes
// go through the group's log; a node stopped and started again catches up.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SynodClient } from '@synod/client';
import { freePort, type NatsServer, startNatsServer } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];
const run = promisify(execFile);

describe('SQL groups of real processes on embedded PostgreSQL', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  let seq = 0;
  const sqlPorts = new Map<string, number>();
  /** The real psql, against a node's PostgreSQL wire front end (simple query protocol). */
  const psql = async (
    id: string,
    ...commands: string[]
  ): Promise<{ code: number; out: string; err: string }> => {
    const args = [
      '-h',
      '127.0.0.1',
      '-p',
      String(sqlPorts.get(id)),
      '-U',
      'postgres',
      '-d',
      'synod',
      '-At',
      '-v',
      'ON_ERROR_STOP=1',
    ];
    for (const command of commands) args.push('-c', command);
    return run('psql', args, { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }).then(
      ({ stdout, stderr }) => ({ code: 0, out: stdout, err: stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        out: error.stdout,
        err: error.stderr,
      }),
    );
  };

  const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> => {
    const reply = await group.transport.request(
      subject,
      new TextEncoder().encode(JSON.stringify(body)),
      { timeoutMs: 15_000 },
    );
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  };
  const sql = (id: string, text: string) =>
    ask(`synod.sqlgroup.node.${id}.write`, {
      clientId: 'seed-000',
      seq: ++seq,
      command: { op: 'sql', sql: text },
    });
  const query = (id: string, text: string) =>
    ask(`synod.sqlgroup.node.${id}.read`, {
      command: { op: 'query', sql: text },
      consistency: 'strong',
    });
  /** Until the node answers (its embedded server may still be starting). */
  const ready = (id: string) =>
    until(
      `node ${id} answering`,
      async () => (await query(id, 'SELECT 1 AS one')).ok === true,
      60_000,
    );

  beforeAll(async () => {
    server = await startNatsServer();
    for (const id of peers) sqlPorts.set(id, await freePort());
    group = await ProcessCluster.start('sqlgroup', peers, [server.url], (id) => [
      '--machine',
      'sql',
      '--replicate',
      'coordinates',
      '--sql-port',
      String(sqlPorts.get(id)),
    ]);
    for (const id of peers) await ready(id);
    for (const id of peers)
      expect(await query(id, 'CREATE TABLE coordinates (x int PRIMARY KEY, y int)')).toMatchObject({
        ok: true,
      });
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
  }, 120_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
  });

  it('runs seed 000 through the log, and a restarted node shows both rows', async () => {
    expect(await sql('a', 'INSERT INTO coordinates VALUES (3, 3)')).toMatchObject({ ok: true });
    expect(await sql('b', 'UPDATE coordinates SET x = x * 10')).toMatchObject({ ok: true });
    expect(await query('a', 'SELECT x, y FROM coordinates')).toMatchObject({
      result: { rows: [{ x: 30, y: 3 }] },
    });
    await group.kill('b');
    expect(await sql('a', 'INSERT INTO coordinates VALUES (4, 4)')).toMatchObject({ ok: true });
    group.startNode('b');
    await ready('b');
    expect(await query('b', 'SELECT x, y FROM coordinates ORDER BY x')).toMatchObject({
      result: {
        rows: [
          { x: 4, y: 4 },
          { x: 30, y: 3 },
        ],
      },
    });
    const client = new SynodClient({ transport: group.transport, group: 'sqlgroup' });
    await client.read({ op: 'query', sql: 'SELECT 1' }, 'linearizable');
    await until(
      'identical replicas',
      async () => new Set((await group.status()).map((n) => n.stateDigest)).size === 1,
      20_000,
    );
  }, 120_000);

  it('runs seed 000 with the real psql: the wire front end routes writes through the log', async () => {
    expect(await psql('a', 'TRUNCATE coordinates')).toMatchObject({ code: 0 });
    expect(await psql('a', 'INSERT INTO coordinates VALUES (3, 3)')).toMatchObject({
      code: 0,
      out: 'INSERT 0 1\n',
    });
    expect(await psql('b', 'UPDATE coordinates SET x = x * 10')).toMatchObject({
      code: 0,
      out: 'UPDATE 1\n',
    });
    expect((await psql('a', 'SELECT * FROM coordinates')).out).toBe('30|3\n');
    await group.kill('b');
    expect((await psql('a', 'INSERT INTO coordinates VALUES (4, 4)')).code).toBe(0);
    group.startNode('b');
    await ready('b');
    expect((await psql('b', 'SELECT * FROM coordinates ORDER BY x')).out).toBe('4|4\n30|3\n');
    // Per session: SET synod.consistency_model, then an optimistic read.
    expect(
      (
        await psql(
          'c',
          "SET synod.consistency_model TO 'optimistic'",
          'SHOW synod.consistency_model',
          'SELECT count(*) FROM coordinates',
        )
      ).out,
    ).toBe('SET\noptimistic\n2\n');
    // Postgres-style errors on the client's connection: a constraint, a volatile function, bad SQL.
    const duplicate = await psql('c', 'INSERT INTO coordinates VALUES (4, 40)');
    expect(duplicate.code).not.toBe(0);
    expect(duplicate.err).toMatch(
      /ERROR:\s+duplicate key value violates unique constraint "coordinates_pkey"/,
    );
    const volatile = await psql(
      'a',
      'INSERT INTO coordinates VALUES (5, extract(epoch FROM now()))',
    );
    expect(volatile.err).toMatch(/ERROR:\s+now\(\) in a write of a replicated table/);
    const invalid = await psql('a', 'INSERT INTO coordinates VALUES (');
    expect(invalid.err).toMatch(/ERROR:\s+syntax error at end of input/);
    // Nothing half applied, and the replicas still agree.
    expect((await psql('c', 'SELECT * FROM coordinates ORDER BY x')).out).toBe('4|4\n30|3\n');
    await until(
      'identical replicas',
      async () => new Set((await group.status()).map((n) => n.stateDigest)).size === 1,
      20_000,
    );
  }, 120_000);

  it('takes node-postgres unchanged: parameters over the extended protocol, writes replicated', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sqlPorts.get('a'),
      user: 'postgres',
      database: 'synod',
    });
    await client.connect();
    try {
      // node-postgres sends a query with parameters as Parse/Bind/Describe/Execute/Sync.
      const insert = await client.query('INSERT INTO coordinates VALUES ($1, $2)', [7, 70]);
      expect(insert.rowCount).toBe(1);
      const read = await client.query('SELECT x, y FROM coordinates WHERE x = $1', [7]);
      expect(read.rows).toEqual([{ x: 7, y: 70 }]);
      await expect(
        client.query('INSERT INTO coordinates VALUES ($1, $2)', [7, 71]),
      ).rejects.toMatchObject({
        code: '23505',
      });
      // The session goes on after an error, and the write reached every replica.
      expect((await client.query('SELECT count(*)::int AS n FROM coordinates')).rows).toEqual([
        { n: 3 },
      ]);
    } finally {
      await client.end();
    }
    expect((await psql('c', 'SELECT y FROM coordinates WHERE x = 7')).out).toBe('70\n');
  }, 30_000);
});
