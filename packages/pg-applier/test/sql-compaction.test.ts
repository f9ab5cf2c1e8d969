// SQL nodes compact their log (issue 5): the database is the snapshot. Three node runtimes
// over a real nats-server, each with its own PostgreSQL database, compact every 20 slots; a
// node that was down while the others compacted catches up from a peer's SQL snapshot; a node
// that joins later gets the tables that way too; a whole-group restart keeps everything.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeRuntime } from '@synod/node';
import { waitFor, whileLeaderMoves } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlGroup } from './sql-group.js';

const founders = ['a', 'b', 'c'];
const EVERY = 20;
const RETAIN = 5;

describe('SQL nodes compact their log', () => {
  let group: SqlGroup;
  let dir: string;
  let seq = 0;
  let rows = 0;

  const startNode = async (id: string, join_ = false): Promise<NodeRuntime> =>
    (await group.startNode(id, join_ ? { join: true } : {})).runtime;
  const stopNode = (id: string): Promise<void> => group.stopNode(id);
  const ask = (subject: string, body: unknown) => group.ask(subject, body);
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
  const statuses = () => [...group.nodes.values()].map((n) => n.runtime.status());
  const converged = async (what: string): Promise<void> => {
    let digests: string[] = [];
    await waitFor(
      what,
      async () => {
        digests = await group.digests();
        return digests.length === group.nodes.size && new Set(digests).size === 1;
      },
      30_000,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${digests.join(' | ')}`);
    });
  };

  beforeAll(async () => {
    group = await SqlGroup.start(
      'squash',
      [...founders, 'd'],
      {
        peers: founders,
        replicated: [],
        snapshotEvery: EVERY,
        retainSlots: RETAIN,
      },
      'compact',
    );
    dir = group.dir;
    await group.onDatabase('a', 'CREATE TABLE points (id int PRIMARY KEY, label text NOT NULL)');
    for (const id of founders) await startNode(id);
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
    await group?.stop();
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
    for (const id of [...group.nodes.keys()]) await stopNode(id);
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
