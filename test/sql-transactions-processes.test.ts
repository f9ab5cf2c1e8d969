// Transactions on replicated tables against real node processes: clients on every node's
// front end commit two-row transactions while the leader is killed with SIGKILL and started
// again. No half transaction anywhere: every node has both rows of a transaction or neither,
// every acknowledged COMMIT is there, and the replicas end identical.
import {
  freePort,
  type NatsServer,
  type Postgres,
  startNatsServer,
  startPostgres,
} from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];

describe('transactions on node processes, the leader killed with SIGKILL', () => {
  let server: NatsServer;
  let postgres: Postgres;
  let group: ProcessCluster;
  const sqlPorts = new Map<string, number>();
  const database = (id: string) => {
    const { user, host, port } = postgres;
    return `postgres://${user}@${host}:${port}/txn_${id}`;
  };
  const connect = async (id: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sqlPorts.get(id)!,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 5_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  const rowsOn = async (id: string): Promise<{ k: number; part: string }[]> => {
    const db = new pg.Client({ connectionString: database(id) });
    await db.connect();
    try {
      return (await db.query('SELECT k, part FROM pairs ORDER BY k, part')).rows;
    } finally {
      await db.end();
    }
  };

  beforeAll(async () => {
    server = await startNatsServer();
    postgres = await startPostgres();
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    for (const id of peers) await admin.query(`CREATE DATABASE txn_${id}`);
    await admin.end();
    for (const id of peers) sqlPorts.set(id, await freePort());
    group = await ProcessCluster.start('txnprocs', peers, [server.url], (id) => [
      ...['--machine', 'sql', '--replicate', 'pairs', '--pg', database(id)],
      ...['--sql-port', String(sqlPorts.get(id))],
    ]);
    for (const id of peers)
      await until(
        `node ${id} answering`,
        async () => {
          try {
            const client = await connect(id);
            await client.query(
              'CREATE TABLE IF NOT EXISTS pairs (k int, part text, PRIMARY KEY (k, part))',
            );
            await client.end();
            return true;
          } catch {
            return false;
          }
        },
        60_000,
      );
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
  }, 120_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
    await postgres?.stop();
  });

  it('leaves no half transaction anywhere, and loses no acknowledged COMMIT', async () => {
    const acked = new Set<number>();
    let next = 0;
    let writing = true;
    let failures = 0;
    const worker = async (w: number): Promise<void> => {
      let at = w % peers.length;
      let client: pg.Client | undefined;
      while (writing) {
        const k = next++;
        try {
          client ??= await connect(peers[at]!);
          await client.query('BEGIN');
          await client.query("INSERT INTO pairs VALUES ($1, 'first')", [k]);
          await client.query("INSERT INTO pairs VALUES ($1, 'second')", [k]);
          await client.query('COMMIT');
          acked.add(k);
        } catch {
          // Its node died, or the commit was not acknowledged: the outcome is unknown. The
          // checks below hold for it either way (both rows or neither).
          failures++;
          await client?.end().catch(() => undefined);
          client = undefined;
          at = (at + 1) % peers.length;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await client?.end().catch(() => undefined);
    };
    const workers = Array.from({ length: 4 }, (_, w) => worker(w));
    for (let round = 0; round < 2; round++) {
      const before = acked.size;
      await until('commits going on', async () => acked.size >= before + 10, 30_000);
      const leader = await group.oneLeader();
      await group.kill(leader!);
      const atKill = acked.size;
      await until('commits while it is down', async () => acked.size >= atKill + 10, 30_000);
      group.startNode(leader!);
      await until(
        `node ${leader} answering`,
        async () => {
          try {
            await (await connect(leader!)).end();
            return true;
          } catch {
            return false;
          }
        },
        60_000,
      );
    }
    writing = false;
    await Promise.all(workers);
    let all: string[] = [];
    await until(
      'identical replicas',
      async () => {
        all = await Promise.all(peers.map(async (id) => JSON.stringify(await rowsOn(id))));
        return all.every((r) => r === all[0]);
      },
      60_000,
    );
    const rows = JSON.parse(all[0]!) as { k: number; part: string }[];
    const parts = new Map<number, string[]>();
    for (const { k, part } of rows) parts.set(k, [...(parts.get(k) ?? []), part]);
    for (const [k, list] of parts) expect([k, list]).toEqual([k, ['first', 'second']]);
    for (const k of acked) expect(parts.has(k), `acknowledged transaction ${k}`).toBe(true);
    expect(acked.size).toBeGreaterThan(20);
    console.log(`transactions: ${acked.size} acknowledged, ${failures} failed or unknown`);
  }, 240_000);
});
