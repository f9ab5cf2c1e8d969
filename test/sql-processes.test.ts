// Seed 000 with real processes and the embedded default: a nats-server and three
// `synod node start --machine sql` processes, each with the PostgreSQL server it starts in its
// own data directory (no --pg). The table is created on each node, as in pg_paxos; its writes
// go through the group's log; a node stopped and started again catches up.
import { SynodClient } from '@synod/client';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];

describe('SQL groups of real processes on embedded PostgreSQL', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  let seq = 0;

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
    group = await ProcessCluster.start(
      'sqlgroup',
      peers,
      [server.url],
      ['--machine', 'sql', '--replicate', 'coordinates'],
    );
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
});
