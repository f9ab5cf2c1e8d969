// Seed 000 with real processes: a nats-server and three `synod node start --machine sql`
// processes, each applying the group's log to its own PostgreSQL: once with the embedded
// default (a server each node starts in its own data directory, no --pg), once with a real
// PostgreSQL server per node (--pg). The table is created on each node, as in pg_paxos, or
// on one node and replicated with `synod table replicate`; a node stopped and started again
// catches up, and one killed with SIGKILL while it applies a batch ends like the others.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SynodClient } from '@synod/client';
import {
  freePort,
  type NatsServer,
  type Postgres,
  startNatsServer,
  startPostgres,
} from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];
const run = promisify(execFile);

/** Where each node keeps its tables: an embedded server of its own, or one given with --pg. */
type Databases = 'embedded' | 'given';

describe.each<Databases>(['embedded', 'given'])(
  'SQL groups of real processes (%s PostgreSQL)',
  (databases) => {
    let server: NatsServer;
    /** With `given`: each node's own PostgreSQL server. */
    const postgres = new Map<string, Postgres>();
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

    const ask = (subject: string, body: unknown) => group.ask(subject, body);
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
    /**
     * Until every node answers status with one digest (a digest reads every row: on a big table
     * it takes a while); a timeout says what each node last reported, and `context`.
     */
    const identicalReplicas = async (timeoutMs: number, context = ''): Promise<void> => {
      let last: readonly {
        node: string;
        appliedThrough: number;
        commitIndex: number;
        stateDigest: string;
      }[] = [];
      await until(
        'identical replicas',
        async () => {
          const answer = await group.transport.gather(
            'synod.sqlgroup.status',
            new TextEncoder().encode('{"digest":true}'),
            {
              timeoutMs: 10_000,
              maxReplies: peers.length,
              map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as (typeof last)[number],
              until: (replies) => replies.length === peers.length,
            },
          );
          last = answer.replies;
          return (
            answer.replies.length === peers.length &&
            new Set(answer.replies.map((n) => n.stateDigest)).size === 1
          );
        },
        timeoutMs,
      ).catch((error: Error) => {
        const seen = last.map(
          (n) =>
            `${n.node}: applied ${n.appliedThrough}, commit ${n.commitIndex}, ${n.stateDigest}`,
        );
        throw new Error(`${error.message}; ${context}; ${seen.join('; ')}`);
      });
    };
    /** Until the node answers (its embedded server may still be starting). */
    const ready = (id: string) =>
      until(
        `node ${id} answering`,
        async () => (await query(id, 'SELECT 1 AS one')).ok === true,
        60_000,
      );

    beforeAll(async () => {
      server = await startNatsServer();
      if (databases === 'given')
        for (const [id, pgServer] of await Promise.all(
          peers.map(async (id) => [id, await startPostgres()] as const),
        ))
          postgres.set(id, pgServer);
      for (const id of peers) sqlPorts.set(id, await freePort());
      group = await ProcessCluster.start('sqlgroup', peers, [server.url], (id) => [
        '--machine',
        'sql',
        '--replicate',
        'coordinates',
        '--sql-port',
        String(sqlPorts.get(id)),
        ...(databases === 'given' ? ['--pg', postgres.get(id)!.url] : []),
      ]);
      for (const id of peers) await ready(id);
      for (const id of peers)
        expect(
          await query(id, 'CREATE TABLE coordinates (x int PRIMARY KEY, y int)'),
        ).toMatchObject({
          ok: true,
        });
      await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
    }, 120_000);
    afterAll(async () => {
      await group?.stop();
      await server?.stop();
      await Promise.all([...postgres.values()].map((p) => p.stop()));
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
      await identicalReplicas(20_000);
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
      // RETURNING rows of a replicated write reach psql.
      expect(
        (await psql('a', 'UPDATE coordinates SET y = y * 1 WHERE x = 4 RETURNING x, y')).out,
      ).toBe('4|4\nUPDATE 1\n'); // as psql shows it from PostgreSQL itself
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
      await identicalReplicas(20_000);
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
        // RETURNING rows come back from the log with their types: node-postgres parses them.
        const returned = await client.query(
          'UPDATE coordinates SET y = y + $1 WHERE x = $2 RETURNING x, y, y::text AS label',
          [0, 7],
        );
        expect(returned.rows).toEqual([{ x: 7, y: 70, label: '70' }]);
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

    it('replicates a table made on one node with synod table replicate: every node has it', async () => {
      expect(
        await query('a', 'CREATE TABLE bulk (k int NOT NULL, batch int NOT NULL)'),
      ).toMatchObject({
        ok: true,
      });
      // More rows than one log entry carries (about 1 MB as JSON): they travel in parts.
      expect(
        await query('a', 'INSERT INTO bulk SELECT i, -2 FROM generate_series(1, 40000) i'),
      ).toMatchObject({ ok: true });
      const synod = (...args: string[]) =>
        run(process.execPath, [
          SYNOD,
          'table',
          ...args,
          '--group',
          'sqlgroup',
          '--nats',
          server.url,
        ]);
      const done = await synod('replicate', 'bulk');
      expect(done.stdout).toMatch(
        /^replicated bulk in group sqlgroup \(slot \d+\)\n {2}a: replicating\n {2}b: replicating\n {2}c: replicating\n$/,
      );
      expect((await synod('list')).stdout).toBe(
        'a: bulk, coordinates\nb: bulk, coordinates\nc: bulk, coordinates\n',
      );
      // Its writes now go through the log from any node, psql included.
      expect((await psql('c', 'INSERT INTO bulk VALUES (0, -1)')).out).toBe('INSERT 0 1\n');
      expect((await psql('b', 'SELECT k, batch FROM bulk WHERE batch = -1')).out).toBe('0|-1\n');
      for (const id of peers)
        expect((await psql(id, 'SELECT count(*), sum(k) FROM bulk')).out).toBe('40001|800020000\n');
      // From psql, as pg_paxos's paxos_replicate_table: made on b, replicated through b.
      expect((await psql('b', 'CREATE TABLE tags (tag text PRIMARY KEY)')).code).toBe(0);
      expect((await psql('b', "SELECT synod.replicate_table('tags')")).out).toBe('tags\n');
      expect((await psql('c', "INSERT INTO tags VALUES ('red')")).out).toBe('INSERT 0 1\n');
      expect((await psql('a', 'SELECT tag FROM tags')).out).toBe('red\n');
      const nowhere = await psql('a', "SELECT synod.replicate_table('nowhere')");
      expect(nowhere.err).toMatch(/ERROR:\s+table "nowhere" does not exist on this node/);
      const refused = await synod('replicate', 'no_such_table').catch(
        (error: { code: number; stderr: string }) => error,
      );
      expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/42P01/) });
    }, 60_000);

    it('a node killed with SIGKILL while it applies a batch ends with the same tables as the others', async () => {
      const ROWS = 2_000;
      await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
      const leader = await group.oneLeader();
      const victim = peers.find((id) => id !== leader)!;
      const acked = new Set<number>();
      let next = 0;
      let writing = true;
      // Writers pause while the victim restarts: a few writes it missed are enough to catch
      // up on, and fewer rows keep the final comparison quick.
      let paused = false;
      const writer = async (k: number): Promise<void> => {
        const client = new SynodClient({
          transport: group.transport,
          group: 'sqlgroup',
          clientId: `bulk-${databases}-${k}`,
          timeoutMs: 5_000,
        });
        while (writing) {
          if (paused) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            continue;
          }
          const batch = next++;
          await client.write({
            op: 'sql',
            sql: `INSERT INTO bulk SELECT g, ${batch} FROM generate_series(1, ${ROWS}) g`,
          });
          acked.add(batch);
        }
      };
      const writers = Array.from({ length: 6 }, (_, k) => writer(k));
      // With its own server (--pg) we can see the victim's apply transaction running a write,
      // and kill the node then; the embedded server is the node's, so there we kill under load.
      const victimDb =
        databases === 'given'
          ? new pg.Client({ connectionString: postgres.get(victim)!.url })
          : undefined;
      victimDb?.on('error', () => undefined);
      await victimDb?.connect();
      let killedMidBatch = 0;
      for (let round = 0; round < 2; round++) {
        const ackedBefore = acked.size;
        await until('writes going on', async () => acked.size >= ackedBefore + 3, 30_000);
        if (victimDb !== undefined)
          await until(
            'the victim applying a batch',
            async () =>
              (
                await victimDb.query(
                  `SELECT 1 FROM pg_stat_activity WHERE application_name = 'synod-apply'
                   AND state = 'active' AND query LIKE '%INSERT INTO bulk%'`,
                )
              ).rowCount === 1,
            30_000,
            1,
          );
        await group.kill(victim);
        if (victimDb !== undefined) killedMidBatch++;
        const ackedAtKill = acked.size;
        await until(
          'writes while the victim is down',
          async () => acked.size >= ackedAtKill + 12,
          30_000,
        );
        paused = true;
        group.startNode(victim);
        await ready(victim);
        paused = false;
      }
      writing = false;
      await Promise.all(writers);
      await victimDb?.end();
      if (databases === 'given') expect(killedMidBatch).toBe(2);
      await identicalReplicas(60_000, `acked ${acked.size} of ${next}`);
      // Every acknowledged write is there, whole, once; any other write whole or not at all.
      const counts = new Map<string, string>();
      for (const id of peers) {
        const answer = await query(
          id,
          'SELECT batch, count(*)::int AS n FROM bulk WHERE batch >= 0 GROUP BY batch ORDER BY batch',
        );
        const rows = (answer.result as { rows: { batch: number; n: number }[] }).rows;
        for (const { batch, n } of rows) expect(n, `batch ${batch} on ${id}`).toBe(ROWS);
        const present = new Set(rows.map((r) => r.batch));
        for (const batch of acked)
          expect(present.has(batch), `acked batch ${batch} on ${id}`).toBe(true);
        counts.set(id, JSON.stringify(rows));
      }
      expect(new Set(counts.values()).size).toBe(1);
    }, 180_000);
  },
);
