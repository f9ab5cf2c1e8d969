// Issue 14's attack list against real processes: three `synod node start --machine sql`
// processes, each with its own embedded PostgreSQL, and the real psql on node a's front end.
// Every way around the log fails with PostgreSQL's own 42501 (or the guard's 0A000), nothing
// reaches beyond the database, and afterwards the replicas are identical and every node still
// applies the log.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const run = promisify(execFile);
const peers = ['a', 'b', 'c'];
const PROOF = '/tmp/synod-attack-proof';

describe('SQL least privilege on node processes (embedded PostgreSQL)', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  const sqlPorts = new Map<string, number>();
  let nextId = 100;

  const psql = (id: string, command: string) =>
    run(
      'psql',
      [
        ...['-h', '127.0.0.1', '-p', String(sqlPorts.get(id)), '-U', 'app', '-d', 'synod'],
        ...['-At', '-v', 'ON_ERROR_STOP=1', '-c', command],
      ],
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
    ).then(
      ({ stdout }) => ({ ok: true, out: stdout.trim() }),
      (error: { stdout: string; stderr: string }) => ({
        ok: false,
        out: `${error.stdout}${error.stderr}`,
      }),
    );
  const query = (id: string, sql: string) =>
    group.ask(`synod.attacks.node.${id}.read`, {
      command: { op: 'query', sql },
      consistency: 'strong',
    });
  /** A write through the log, then the same rows on every node. */
  const stillOneTable = async (): Promise<void> => {
    const id = nextId++;
    expect(await psql('b', `INSERT INTO t VALUES (${id}, 'through the log')`)).toMatchObject({
      ok: true,
    });
    await until(
      'every node has the same rows of t',
      async () => {
        const answers = await Promise.all(
          peers.map((p) => query(p, 'SELECT id, v FROM t ORDER BY id')),
        );
        const rows = answers.map((a) => JSON.stringify((a.result as { rows: unknown }).rows));
        return rows.every((r) => r === rows[0]) && rows[0]!.includes(`"id":${id}`);
      },
      15_000,
    );
  };

  beforeAll(async () => {
    await rm(PROOF, { force: true });
    server = await startNatsServer();
    for (const id of peers) sqlPorts.set(id, await freePort());
    group = await ProcessCluster.start('attacks', peers, [server.url], (id) => [
      '--machine',
      'sql',
      '--replicate',
      't',
      '--sql-port',
      String(sqlPorts.get(id)),
    ]);
    for (const id of peers)
      await until('node answering', async () => (await query(id, 'SELECT 1')).ok === true, 60_000);
    // As pg_paxos has it: the table on every node, its writes then replicate.
    for (const id of peers)
      expect(await psql(id, 'CREATE TABLE t (id int PRIMARY KEY, v text)')).toMatchObject({
        ok: true,
      });
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
    await stillOneTable();
  }, 120_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
    await rm(PROOF, { force: true });
  });

  it('refuses every path around the log, and nothing reaches beyond the database', async () => {
    const attacks = [
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ INSERT INTO t VALUES (1, 'f') $$; SELECT f();",
      "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (2, 'p'); END $$; CALL p();",
      "DO $$ BEGIN INSERT INTO t VALUES (3, 'do'); END $$;",
      'CREATE FUNCTION d() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ DELETE FROM t $$; SELECT d();',
      "DO $$ BEGIN EXECUTE 'CREATE VIEW tv AS SELECT * FROM t'; END $$; INSERT INTO tv VALUES (4, 'view');",
      'ALTER TABLE t DISABLE TRIGGER ALL',
      'UPDATE synod.applied SET slot = slot - 3',
      'SET ROLE postgres',
      'SET SESSION AUTHORIZATION postgres',
      'CREATE EXTENSION IF NOT EXISTS file_fdw',
      `COPY (SELECT 1) TO PROGRAM 'touch ${PROOF}'`,
      `COPY t FROM PROGRAM 'touch ${PROOF}'`,
      "SELECT lo_import('/etc/hostname')",
    ];
    for (const attack of attacks) {
      const result = await psql('a', attack);
      expect(result.ok, attack).toBe(false);
      expect(result.out, attack).toMatch(
        /permission denied|must be superuser|not replicated|bypass the log|not allowed|only superusers/,
      );
    }
    const read = await query('a', `COPY (SELECT 1) TO PROGRAM 'touch ${PROOF}'`);
    expect(read.ok).toBe(false);
    expect(existsSync(PROOF)).toBe(false);
    await stillOneTable();
  }, 60_000);

  it("a table changed behind a node's back is found by synod sql verify, and repaired", async () => {
    // As the node's own superuser (its secret, its socket): what an operator with --pg could do.
    const dataDir = join(group.dir, 'c', 'postgres', 'data');
    const socket = (await readdir(dataDir)).find((f) => /^\.s\.PGSQL\.\d+$/.test(f))!;
    const secret = (await readFile(join(group.dir, 'c', 'postgres', 'secret'), 'utf8')).trim();
    await run(
      'psql',
      ['-h', dataDir, '-p', socket.split('.').at(-1)!, '-U', 'postgres', '-d', 'synod'].concat([
        '-c',
        'DELETE FROM t',
      ]),
      { env: { ...process.env, PGPASSWORD: secret } },
    );
    const counts = async () =>
      Promise.all(
        peers.map(async (p) => {
          const answer = await query(p, 'SELECT count(*)::int AS n FROM t');
          return (answer.result as { rows: { n: number }[] }).rows[0]!.n;
        }),
      );
    const before = await counts();
    expect(before[2]).toBe(0);
    expect(before[0]).toBeGreaterThan(0);
    const { stdout } = await run(process.execPath, [
      SYNOD,
      ...['sql', 'verify', '--group', 'attacks', '--nats', server.url],
    ]);
    expect(stdout).toMatch(/^verified group attacks at slot \d+: t:\d+:-?\d+ users:0:0\n/);
    await until(
      'node c has its rows back',
      async () => {
        const now = await counts();
        return now.every((n) => n === before[0]);
      },
      15_000,
    );
    const statuses = await group.status();
    const c = statuses.find((n) => n.node === 'c') as unknown as {
      consistency: { verdict: string } | null;
    };
    expect(c.consistency?.verdict).toBe('differs');
    await stillOneTable();
  }, 60_000);
});
