// SQL transactions across groups through SIGKILLs (issue 18): four node-postgres clients move
// money between north's and south's accounts, each transfer one BEGIN ... COMMIT over both
// groups' tables with a marker row in each, while a random `--machine sql --group north,south`
// process is SIGKILLed and started again. Checked on every replica at the end: a transfer's
// markers are in both groups or in neither, in both when its client was told COMMIT, in
// neither when it was told the transaction aborted; the balances sum to what they started
// with; PostgreSQL holds nothing prepared. With a planted bug (an RM that commits on its own
// vote), the same checker finds a transfer applied in one group only.
import { freePort, type NatsServer, startNatsServer } from '@synod/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];
const ACCOUNTS = 3;
const START = 100;
const TOTAL = START * ACCOUNTS * 2;

type Told = 'committed' | 'aborted' | 'unknown';

describe('SQL transfers across two groups through SIGKILLs of node processes', () => {
  let server: NatsServer;
  let cluster: ProcessCluster;
  const sqlPorts = new Map<string, number>();
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });

  const connect = async (id: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sqlPorts.get(id),
      user: 'postgres',
      database: 'synod',
      connectionTimeoutMillis: 3_000,
      query_timeout: 20_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  /** `sql` on node `id`'s own database, alone (no strong-read wait): rows as arrays of text. */
  const onReplica = async (id: string, sql: string): Promise<string[][]> => {
    const client = await connect(id);
    try {
      await client.query("SET synod.consistency_model TO 'optimistic'");
      const result = await client.query({ text: sql, rowMode: 'array' });
      return result.rows.map((row: unknown[]) => row.map(String));
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  /** One transfer between an account of each group, through a random node; what it was told. */
  const transfer = async (id: string, amount: number): Promise<Told> => {
    const from = Math.random() < 0.5 ? 'n' : 's';
    const to = from === 'n' ? 's' : 'n';
    let client: pg.Client;
    try {
      client = await connect(peers[Math.floor(Math.random() * peers.length)]!);
    } catch {
      return 'aborted'; // nothing was sent
    }
    let committing = false;
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE accounts_${from} SET balance = balance - $1 WHERE id = $2`, [
        amount,
        Math.floor(Math.random() * ACCOUNTS),
      ]);
      await client.query(`UPDATE accounts_${to} SET balance = balance + $1 WHERE id = $2`, [
        amount,
        Math.floor(Math.random() * ACCOUNTS),
      ]);
      await client.query('INSERT INTO transfers_n VALUES ($1)', [id]);
      await client.query('INSERT INTO transfers_s VALUES ($1)', [id]);
      committing = true;
      await client.query('COMMIT');
      return 'committed';
    } catch (error) {
      // Before COMMIT nothing left this node (the statements ran tentatively); at COMMIT, only
      // the coordinator's abort is an answer: a lost node or a timeout may have committed.
      if (!committing) return 'aborted';
      const e = error as { code?: string; message?: string };
      return e.code === '40001' && /was aborted/.test(e.message ?? '') ? 'aborted' : 'unknown';
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  /**
   * Every violation of all-or-nothing on every replica: a transfer in one group and not the
   * other or on some replicas only, a committed one missing, an aborted one applied, a sum
   * that moved, a transaction left prepared.
   */
  const violations = async (told: ReadonlyMap<string, Told>): Promise<string[]> => {
    const found: string[] = [];
    const markers = new Map<string, Set<string>>();
    for (const node of peers)
      for (const group of ['n', 's']) {
        const rows = await onReplica(node, `SELECT id FROM transfers_${group}`);
        markers.set(`${group}@${node}`, new Set(rows.map((r) => r[0]!)));
      }
    for (const [id, answer] of told) {
      const seen = new Set([...markers.values()].map((ids) => ids.has(id)));
      if (seen.size > 1) found.push(`transfer ${id} applied in one group or on some replicas only`);
      const applied = seen.has(true);
      if (answer === 'committed' && !applied) found.push(`transfer ${id} told committed, lost`);
      if (answer === 'aborted' && applied) found.push(`transfer ${id} told aborted, applied`);
    }
    for (const node of peers) {
      const [[sum]] = (await onReplica(
        node,
        'SELECT (SELECT sum(balance) FROM accounts_n) + (SELECT sum(balance) FROM accounts_s)',
      )) as [[string]];
      if (Number(sum) !== TOTAL) found.push(`${node}: balances sum to ${sum}`);
    }
    const prepared = async (): Promise<string[]> => {
      const left: string[] = [];
      for (const node of peers) {
        const [[n]] = (await onReplica(node, 'SELECT count(*) FROM pg_prepared_xacts')) as [
          [string],
        ];
        if (n !== '0') left.push(`${node}: ${n} transactions still prepared`);
      }
      return left;
    };
    const deadline = Date.now() + 20_000;
    let left = await prepared();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      left = await prepared();
    }
    found.push(...left);
    return found;
  };

  /** Every node answers and both groups' replicas hold one state. */
  const settled = () => {
    // What each node last said, for the error if they never agree.
    const seen = new Map<string, string>();
    return until(
      'every replica caught up',
      async () => {
        for (const group of ['north', 'south']) {
          const replies = await cluster.status(group);
          seen.set(
            group,
            replies
              .map((r) => `${r.node}: applied ${r.appliedThrough}, ${r.stateDigest.slice(0, 8)}`)
              .join('; '),
          );
          const digests = new Set(replies.map((r) => r.stateDigest));
          if (replies.length !== peers.length || digests.size !== 1) return false;
        }
        for (const id of peers) await onReplica(id, 'SELECT 1');
        return true;
      },
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${[...seen].map(([g, s]) => `${g} [${s}]`).join(' ')}`);
    });
  };

  it('applies each transfer in both groups or in neither, on every replica, and loses no committed one', async () => {
    server = await startNatsServer();
    for (const id of peers) sqlPorts.set(id, await freePort());
    cluster = await ProcessCluster.start('north,south', peers, [server.url], (id) => [
      '--machine',
      'sql',
      '--replicate',
      'north:accounts_n,north:transfers_n,south:accounts_s,south:transfers_s',
      '--sql-port',
      String(sqlPorts.get(id)),
    ]);
    for (const id of peers)
      await until(
        `node ${id} takes the tables`,
        async () => {
          const client = await connect(id);
          try {
            for (const g of ['n', 's']) {
              await client.query(
                `CREATE TABLE IF NOT EXISTS accounts_${g} (id int PRIMARY KEY, balance int NOT NULL)`,
              );
              await client.query(`CREATE TABLE IF NOT EXISTS transfers_${g} (id text PRIMARY KEY)`);
            }
            return true;
          } finally {
            await client.end().catch(() => undefined);
          }
        },
        90_000,
      );
    await until(
      'accounts opened',
      async () => {
        const client = await connect('a');
        try {
          for (const g of ['n', 's'])
            await client.query(
              `INSERT INTO accounts_${g} SELECT i, ${START} FROM generate_series(0, ${ACCOUNTS - 1}) i ON CONFLICT DO NOTHING`,
            );
          return true;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      30_000,
    );
    const told = new Map<string, Told>();
    let running = true;
    const clients = [0, 1, 2, 3].map(async (c) => {
      for (let n = 0; running; n++) {
        const id = `${c}-${n}`;
        told.set(id, 'unknown');
        told.set(id, await transfer(id, 1 + (n % 7)));
      }
    });
    // The nemesis: SIGKILL a random node, start it again, four times.
    for (let round = 0; round < 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const victim = peers[Math.floor(Math.random() * peers.length)]!;
      await cluster.kill(victim);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      cluster.startNode(victim);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    running = false;
    await Promise.all(clients);
    await settled();
    const count = (what: Told) => [...told.values()].filter((t) => t === what).length;
    console.log(
      `sql bank: ${count('committed')} committed, ${count('aborted')} aborted, ${count('unknown')} unknown`,
    );
    expect(count('committed'), 'transfers committed').toBeGreaterThan(10);
    expect(await violations(told)).toEqual([]);
  }, 240_000);

  it('with an RM that commits on its own vote (a planted bug), the same checker finds a transfer in one group only', async () => {
    for (const id of peers) {
      await cluster.kill(id);
      cluster.startNode(id, { SYNOD_COMMIT_PLANT: 'rm-commits-on-own-vote' });
    }
    await settled();
    // South's part reads how many accounts south has; another client adds one (with nothing
    // in it) before COMMIT, so south votes aborted at its slot. North's planted RM commits on
    // its own vote unless the coordinator's abort reaches it first, a race either can win; so
    // up to ten, until the checker sees one.
    const told = new Map<string, Told>();
    let found: string[] = [];
    for (let i = 0; i < 10 && found.length === 0; i++) {
      const id = `planted-${i}`;
      const first = await connect('a');
      const second = await connect('b');
      try {
        await first.query('BEGIN');
        await first.query('UPDATE accounts_n SET balance = balance - 10 WHERE id = 0');
        await first.query('SELECT count(*) FROM accounts_s');
        await first.query('UPDATE accounts_s SET balance = balance + 10 WHERE id = 0');
        await first.query('INSERT INTO transfers_n VALUES ($1)', [id]);
        await first.query('INSERT INTO transfers_s VALUES ($1)', [id]);
        await second.query('INSERT INTO accounts_s VALUES ($1, 0)', [100 + i]);
        await expect(first.query('COMMIT')).rejects.toMatchObject({ code: '40001' });
        told.set(id, 'aborted');
      } finally {
        await first.end().catch(() => undefined);
        await second.end().catch(() => undefined);
      }
      await settled();
      found = await violations(told);
    }
    const last = [...told.keys()].at(-1);
    expect(found).toContain(`transfer ${last} applied in one group or on some replicas only`);
    expect(found).toContain(`transfer ${last} told aborted, applied`);
    expect(found.some((f) => f.includes(`balances sum to ${TOTAL - 10}`))).toBe(true);
  }, 240_000);
});
