// Several SQL groups on one database (issue 18): three `synod node start --machine sql
// --group north,south` processes, each with its embedded PostgreSQL. Each replicated table
// belongs to one group; psql writes through one front end per node, and each write goes
// through its table's group's log. A statement that would use two groups' tables is refused;
// a transaction across them commits through Paxos Commit (PREPARE TRANSACTION in each group)
// on every replica of both or on none, through SIGKILLs of its coordinator and of an RM.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, type NatsServer, startNatsServer } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const run = promisify(execFile);
const peers = ['a', 'b', 'c'];

describe('SQL groups north and south on one database per node (real processes)', () => {
  let server: NatsServer;
  let cluster: ProcessCluster;
  const sqlPorts = new Map<string, number>();

  /** The real psql against node `id`'s front end; each command is one -c. */
  const psql = async (id: string, ...commands: string[]) => {
    const args = ['-h', '127.0.0.1', '-p', String(sqlPorts.get(id)), '-U', 'postgres'];
    args.push('-d', 'synod', '-At', '-v', 'ON_ERROR_STOP=1');
    for (const command of commands) args.push('-c', command);
    return run('psql', args, { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }).then(
      ({ stdout }) => ({ code: 0, out: stdout, err: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        out: error.stdout,
        err: error.stderr,
      }),
    );
  };
  /** A node-postgres client on node `id`'s front end. */
  const connect = async (id: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sqlPorts.get(id),
      user: 'postgres',
      database: 'synod',
    });
    await client.connect();
    return client;
  };
  /**
   * Until every replica (read alone, optimistic) holds these accounts and orders, and none
   * holds a prepared transaction.
   */
  const everyReplica = (accounts: string, orders: string, timeoutMs = 30_000) =>
    until(
      `every replica with accounts ${JSON.stringify(accounts)} and orders ${JSON.stringify(orders)}, nothing prepared`,
      async () => {
        for (const id of peers) {
          const seen = await psql(
            id,
            "SET synod.consistency_model TO 'optimistic'",
            'SELECT id, balance FROM accounts ORDER BY id',
            'SELECT id, item FROM orders ORDER BY id',
            'SELECT count(*) FROM pg_prepared_xacts',
          );
          if (seen.out !== `SET\n${accounts}${orders}0\n`) return false;
        }
        return true;
      },
      timeoutMs,
    );
  /** What group `group` says its replicated tables are, on node `id`. */
  const tables = async (group: string, id: string): Promise<string[]> => {
    const answer = await cluster.ask(`synod.${group}.node.${id}.read`, {
      command: { op: 'tables' },
      consistency: 'strong',
    });
    return (answer.result as { tables?: string[] } | undefined)?.tables ?? [];
  };
  /** Every node's `group` status carries one state digest (its tables, read row by row). */
  const identical = (group: string) =>
    until(
      `identical ${group} replicas`,
      async () => {
        const statuses = await cluster.status(group);
        return (
          statuses.length === peers.length && new Set(statuses.map((s) => s.stateDigest)).size === 1
        );
      },
      30_000,
    );

  beforeAll(async () => {
    server = await startNatsServer();
    for (const id of peers) sqlPorts.set(id, await freePort());
    cluster = await ProcessCluster.start('north,south', peers, [server.url], (id) => [
      '--machine',
      'sql',
      '--replicate',
      'north:accounts,south:orders',
      '--sql-port',
      String(sqlPorts.get(id)),
    ]);
    // As pg_paxos has it: every node creates the tables; their writes then replicate.
    for (const id of peers)
      await until(
        `node ${id} takes psql`,
        async () =>
          (
            await psql(
              id,
              'CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, balance int NOT NULL)',
              'CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, item text NOT NULL)',
            )
          ).code === 0,
        90_000,
      );
    for (const group of ['north', 'south'])
      await until(
        `one ${group} leader`,
        async () => (await cluster.oneLeader(peers.length, group)) !== undefined,
        30_000,
      );
  }, 150_000);
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });

  it("writes each table through its own group's log, on every replica", async () => {
    expect(await tables('north', 'a')).toEqual(['accounts']);
    expect(await tables('south', 'a')).toEqual(['orders']);
    expect(await psql('a', 'INSERT INTO accounts VALUES (1, 100), (2, 50)')).toMatchObject({
      code: 0,
      out: 'INSERT 0 2\n',
    });
    expect(await psql('b', "INSERT INTO orders VALUES (1, 'tea')")).toMatchObject({
      code: 0,
      out: 'INSERT 0 1\n',
    });
    // A read may join both groups' tables: it runs on this node's database, after both
    // groups' strong-read barriers.
    for (const id of peers)
      expect(
        (
          await psql(
            id,
            'SELECT a.id, a.balance, o.item FROM accounts a JOIN orders o USING (id) ORDER BY 1',
          )
        ).out,
      ).toBe('1|100|tea\n');
    // Each write is in its own group's log: north's digest changed with accounts alone.
    await identical('north');
    await identical('south');
    const north = await cluster.status('north');
    const south = await cluster.status('south');
    expect(north[0]!.stateDigest).not.toBe(south[0]!.stateDigest);
    // No client may write a replicated table around the log, whichever group it belongs to.
    const direct = await psql('c', "DO $$ BEGIN INSERT INTO orders VALUES (9, 'x'); END $$");
    expect(direct.code).not.toBe(0);
  }, 60_000);

  it("refuses a statement of two groups' tables; a transaction across them commits on every replica of both, or on none", async () => {
    const statement = await psql(
      'a',
      'UPDATE accounts SET balance = balance + (SELECT count(*) FROM orders)',
    );
    expect(statement.code).not.toBe(0);
    expect(statement.err).toMatch(
      /ERROR:\s+a write uses the replicated tables of several groups \("accounts" of north; "orders" of south\)/,
    );
    // Through Paxos Commit: north's and south's parts each prepared at their slot.
    expect(
      await psql(
        'b',
        'BEGIN',
        'UPDATE accounts SET balance = balance - 10 WHERE id = 1',
        "INSERT INTO orders VALUES (2, 'coffee')",
        'COMMIT',
      ),
    ).toMatchObject({ code: 0, out: 'BEGIN\nUPDATE 1\nINSERT 0 1\nCOMMIT\n' });
    await everyReplica('1|90\n2|50\n', '1|tea\n2|coffee\n');
    // South's part loses a race: another client's row with its key is committed first, so
    // south's RM votes aborted at its slot (23505 there, not what the client saw), and north's
    // part, prepared, is rolled back.
    const first = await connect('a');
    const second = await connect('b');
    try {
      await first.query('BEGIN');
      await first.query('UPDATE accounts SET balance = balance - 10 WHERE id = 2');
      await first.query("INSERT INTO orders VALUES (5, 'first')");
      await second.query("INSERT INTO orders VALUES (5, 'second')");
      await expect(first.query('COMMIT')).rejects.toMatchObject({
        code: '40001',
        message: expect.stringMatching(/across groups north, south was aborted/),
      });
    } finally {
      await first.end();
      await second.end();
    }
    await everyReplica('1|90\n2|50\n', '1|tea\n2|coffee\n5|second\n');
    // A transaction within one group commits as one entry of its log, as before.
    expect(
      await psql(
        'c',
        'BEGIN',
        'UPDATE accounts SET balance = balance - 10 WHERE id = 1',
        'UPDATE accounts SET balance = balance + 10 WHERE id = 2',
        'COMMIT',
      ),
    ).toMatchObject({ code: 0 });
    await everyReplica('1|80\n2|60\n', '1|tea\n2|coffee\n5|second\n');
    // No client may use PostgreSQL's two-phase commit: it is the node's own.
    const own = await psql('a', 'BEGIN', 'SELECT 1', "PREPARE TRANSACTION 'mine'");
    expect(own.err).toMatch(
      /PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED are the node's own/,
    );
  }, 90_000);

  it('replicates a new table in the group named, and refuses one another group has', async () => {
    expect(
      await psql('a', 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)'),
    ).toMatchObject({ code: 0 });
    expect(await psql('a', "SELECT synod.replicate_table('items', 'south')")).toMatchObject({
      code: 0,
      out: 'items\n',
    });
    expect(await psql('b', "INSERT INTO items VALUES (1, 'cup')")).toMatchObject({ code: 0 });
    for (const id of peers) {
      await until(`items on ${id}`, async () => (await tables('south', id)).includes('items'));
      expect((await psql(id, 'SELECT name FROM items')).out).toBe('cup\n');
    }
    expect(await tables('north', 'a')).toEqual(['accounts']);
    // The front end refuses a table of another group, and so does the node that takes a
    // replicate write from any NATS client.
    const again = await psql('a', "SELECT synod.replicate_table('accounts', 'south')");
    expect(again.err).toMatch(/"accounts" is replicated by group north already/);
    const forged = await cluster.ask('synod.south.write', {
      clientId: 'replicate-twice',
      seq: 1,
      command: { op: 'replicate', table: 'accounts' },
    });
    expect(forged).toMatchObject({ ok: false });
    expect(JSON.stringify(forged)).toContain('is replicated by group north already');
    expect(await tables('south', 'b')).toEqual(['items', 'orders']);
    const unknown = await psql('a', "SELECT synod.replicate_table('items', 'east')");
    expect(unknown.err).toMatch(/this node serves no group "east": it serves north, south/);
  }, 60_000);

  it("catches a node killed with SIGKILL up on both groups' logs", async () => {
    await cluster.kill('c');
    expect(await psql('a', 'UPDATE accounts SET balance = balance + 1')).toMatchObject({
      code: 0,
    });
    expect(await psql('b', "INSERT INTO orders VALUES (3, 'milk')")).toMatchObject({ code: 0 });
    cluster.startNode('c');
    await everyReplica('1|81\n2|61\n', '1|tea\n2|coffee\n3|milk\n5|second\n', 90_000);
    await identical('north');
    await identical('south');
  }, 120_000);

  /** Every node killed and started again, with `env` (a failpoint, or none). */
  const restartAll = async (env: Record<string, string>): Promise<void> => {
    for (const id of peers) {
      await cluster.kill(id);
      cluster.startNode(id, env);
    }
    for (const id of peers)
      await until(`node ${id} back`, async () => (await psql(id, 'SELECT 1')).code === 0, 90_000);
    for (const group of ['north', 'south'])
      await until(
        `one ${group} leader`,
        async () => (await cluster.oneLeader(peers.length, group)) !== undefined,
        30_000,
      );
  };

  it('the coordinator SIGKILLed between prepare and outcome: committed on every replica of both groups', async () => {
    // Each node kills itself the moment a transaction's first coordinator there knows the
    // outcome, before any RM or the client is told (as etcd's gofail failpoints).
    await restartAll({ SYNOD_FAILPOINT: 'commit-coordinator-decided' });
    const coordinator = (await cluster.oneLeader(peers.length, 'north'))!;
    const via = peers.find((id) => id !== coordinator)!;
    await psql(
      via,
      'BEGIN',
      'UPDATE accounts SET balance = balance + 100 WHERE id = 1',
      "INSERT INTO orders VALUES (10, 'failpoint')",
      'COMMIT',
    );
    const child = cluster.processes.get(coordinator)!;
    await until('the coordinator is dead', async () => child.signalCode === 'SIGKILL', 20_000);
    // Both groups prepared before it decided, so the decision was commit: a coordinator taking
    // over finds every vote prepared, and the RMs apply it; the dead node catches up.
    await restartAll({});
    await everyReplica(
      '1|181\n2|61\n',
      '1|tea\n2|coffee\n3|milk\n5|second\n10|failpoint\n',
      60_000,
    );
  }, 300_000);

  it("south's RM SIGKILLed once its group prepared: restarted, its replica finishes its prepared transaction like the others", async () => {
    // The RM's node dies once its vote is in south's log, which it has applied: its own
    // database holds the prepared transaction, unknown to the coordinator. South's next
    // leader finishes the transaction, and the restarted replica applies the outcome to the
    // transaction PostgreSQL kept prepared across its restart.
    await restartAll({ SYNOD_FAILPOINT: 'commit-rm-prepared:south' });
    const rm = (await cluster.oneLeader(peers.length, 'south'))!;
    const via = peers.find((id) => id !== rm)!;
    await psql(
      via,
      'BEGIN',
      'UPDATE accounts SET balance = balance + 1000 WHERE id = 2',
      "INSERT INTO orders VALUES (11, 'rm')",
      'COMMIT',
    );
    const child = cluster.processes.get(rm)!;
    await until("south's RM is dead", async () => child.signalCode === 'SIGKILL', 20_000);
    await restartAll({});
    // Committed or aborted (whether the RM's vote reached the acceptors first is a race), but
    // alike on every replica of both groups, and nothing left prepared anywhere.
    const orders = '1|tea\n2|coffee\n3|milk\n5|second\n10|failpoint\n';
    await until(
      'the same outcome everywhere',
      async () => {
        for (const outcome of [
          ['1|181\n2|1061\n', `${orders}11|rm\n`],
          ['1|181\n2|61\n', orders],
        ] as const)
          if (
            await everyReplica(outcome[0], outcome[1], 1).then(
              () => true,
              () => false,
            )
          )
            return true;
        return false;
      },
      60_000,
    );
    await identical('north');
    await identical('south');
  }, 300_000);
});
