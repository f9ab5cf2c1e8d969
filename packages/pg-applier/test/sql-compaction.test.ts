// SQL nodes compact their log (issue 5): the database is the snapshot. Three node runtimes
// over a real nats-server, each with its own PostgreSQL database, compact every 20 slots; a
// node that was down while the others compacted catches up from a peer's SQL snapshot; a node
// that joins later gets the tables that way too; a whole-group restart keeps everything.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeRuntime } from '@synod/node';
import {
  type NatsServer,
  type Postgres,
  startNatsServer,
  startPostgres,
  waitFor,
  whileLeaderMoves,
} from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlMachine } from '../src/index.js';

const founders = ['a', 'b', 'c'];
const fast = { heartbeatMs: 30, electionMinMs: 100, electionMaxMs: 200, phaseTimeoutMs: 150 };
const EVERY = 20;
const RETAIN = 5;

describe('SQL nodes compact their log', () => {
  let nats: NatsServer;
  let postgres: Postgres;
  let dir: string;
  let client: Transport;
  const nodes = new Map<string, { runtime: NodeRuntime; transport: Transport }>();
  let seq = 0;
  let rows = 0;

  const url = (id: string) =>
    `postgres://${postgres.user}@${postgres.host}:${postgres.port}/compact_${id}`;
  const startNode = async (id: string, join_ = false): Promise<NodeRuntime> => {
    const transport = await connectNats({ servers: nats.url, name: id });
    const machine = await SqlMachine.open({
      connectionString: url(id),
      group: 'squash',
      replicated: [],
    });
    const runtime = await NodeRuntime.start({
      group: 'squash',
      nodeId: id,
      peers: founders,
      ...(join_ ? { join: true } : {}),
      transport,
      dataDir: join(dir, id),
      leaderTiming: fast,
      asyncMachine: machine,
      snapshotEvery: EVERY,
      retainSlots: RETAIN,
    });
    nodes.set(id, { runtime, transport });
    return runtime;
  };
  const stopNode = async (id: string): Promise<void> => {
    const node = nodes.get(id)!;
    nodes.delete(id);
    await node.runtime.stop();
    await node.transport.close();
  };
  const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> => {
    const reply = await client.request(subject, new TextEncoder().encode(JSON.stringify(body)), {
      timeoutMs: 10_000,
    });
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  };
  const write = (command: Record<string, unknown>) =>
    whileLeaderMoves(() => ask('synod.squash.write', { clientId: 'writer', seq: ++seq, command }));
  const insertMany = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      rows++;
      const answer = await write({
        op: 'sql',
        sql: 'INSERT INTO points VALUES ($1, $2)',
        params: [String(rows), `p${rows}`],
      });
      expect(answer, `insert ${rows}`).toMatchObject({ ok: true });
    }
  };
  const statuses = () => [...nodes.values()].map((n) => n.runtime.status());
  const converged = async (what: string): Promise<void> => {
    let digests: string[] = [];
    await waitFor(
      what,
      async () => {
        const answer = await client.gather(
          'synod.squash.status',
          new TextEncoder().encode('{"digest":true}'),
          {
            timeoutMs: 2_000,
            maxReplies: nodes.size,
            map: (m) =>
              (JSON.parse(new TextDecoder().decode(m.data)) as { stateDigest: string }).stateDigest,
            until: (replies) => replies.length === nodes.size,
          },
        );
        digests = [...answer.replies];
        return digests.length === nodes.size && new Set(digests).size === 1;
      },
      30_000,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${digests.join(' | ')}`);
    });
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    postgres = await startPostgres();
    dir = await mkdtemp(join(tmpdir(), 'synod-sql-compaction-'));
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    for (const id of [...founders, 'd']) await admin.query(`CREATE DATABASE compact_${id}`);
    await admin.end();
    const db = new pg.Client({ connectionString: url('a') });
    await db.connect();
    await db.query('CREATE TABLE points (id int PRIMARY KEY, label text NOT NULL)');
    await db.end();
    for (const id of founders) await startNode(id);
    client = await connectNats({ servers: nats.url, name: 'client' });
    const replicated = await whileLeaderMoves(() =>
      ask('synod.squash.node.a.write', {
        clientId: 'admin',
        seq: 1,
        command: { op: 'replicate', table: 'points' },
      }),
    );
    expect(replicated).toMatchObject({ ok: true });
    // A node that has not applied the replicate entry yet refuses the table's writes.
    for (const id of founders)
      await waitFor(
        `${id} replicates points`,
        async () => {
          const answer = await ask(`synod.squash.node.${id}.read`, {
            command: { op: 'tables' },
            consistency: 'optimistic',
          });
          return JSON.stringify(answer.result ?? {}).includes('points');
        },
        10_000,
        20,
      );
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    for (const id of [...nodes.keys()]) await stopNode(id);
    await nats?.stop();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('forgets the log below what the database applied: the acceptor file stays small', async () => {
    await insertMany(80);
    await converged('identical replicas');
    for (const status of statuses()) {
      expect(status.compactedThrough, status.node).toBeGreaterThan(40);
      const bytes = (await stat(join(dir, status.node, 'squash.acceptor.log'))).size;
      // 80 uncompacted accept records of these inserts would be over 12 KB.
      expect(bytes, status.node).toBeLessThan(9_000);
    }
  }, 90_000);

  it('a node that was down while its peers compacted catches up from a SQL snapshot', async () => {
    await stopNode('c');
    await insertMany(60);
    const c = await startNode('c');
    await converged('c caught up');
    expect(c.status().snapshotsInstalled).toBeGreaterThanOrEqual(1);
    const others = statuses().filter((s) => s.node !== 'c');
    expect(Math.min(...others.map((s) => s.compactedThrough))).toBeGreaterThan(100);
  }, 90_000);

  it('a node that joins after compaction gets the table and its rows from a snapshot', async () => {
    const d = await startNode('d', true);
    await converged('d joined with every row');
    expect(d.status().members).toEqual(['a', 'b', 'c', 'd']);
    expect(d.status().snapshotsInstalled).toBeGreaterThanOrEqual(1);
    const count = await ask('synod.squash.node.d.read', {
      command: { op: 'query', sql: 'SELECT count(*)::int AS n FROM points' },
      consistency: 'strong',
    });
    expect(count).toMatchObject({ ok: true, result: { rows: [{ n: rows }] } });
  }, 90_000);

  it('a whole-group restart starts from each node own restart point and loses nothing', async () => {
    for (const id of [...nodes.keys()]) await stopNode(id);
    for (const id of [...founders, 'd']) await startNode(id, id === 'd');
    await insertMany(3);
    await converged('identical after the restart');
    const count = await ask('synod.squash.node.b.read', {
      command: { op: 'query', sql: 'SELECT count(*)::int AS n FROM points' },
      consistency: 'strong',
    });
    expect(count).toMatchObject({ ok: true, result: { rows: [{ n: rows }] } });
  }, 90_000);
});
