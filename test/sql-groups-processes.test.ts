// Several SQL groups on one database (issue 18): three `synod node start --machine sql
// --group north,south` processes, each with its embedded PostgreSQL. Each replicated table
// belongs to one group; psql writes through one front end per node, and each write goes
// through its table's group's log. A statement or transaction that would use two groups'
// tables is refused, since each group's replicas apply its log at their own pace.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, type NatsServer, startNatsServer } from '@synod/testkit';
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

  it("refuses a statement or transaction that would use two groups' tables, and applies none of it", async () => {
    const statement = await psql(
      'a',
      'UPDATE accounts SET balance = balance + (SELECT count(*) FROM orders)',
    );
    expect(statement.code).not.toBe(0);
    expect(statement.err).toMatch(
      /ERROR:\s+a write uses the replicated tables of several groups \("accounts" of north; "orders" of south\)/,
    );
    const transaction = await psql(
      'b',
      'BEGIN',
      'UPDATE accounts SET balance = balance - 10 WHERE id = 1',
      "INSERT INTO orders VALUES (2, 'coffee')",
      'COMMIT',
    );
    expect(transaction.code).not.toBe(0);
    expect(transaction.err).toMatch(
      /ERROR:\s+this transaction uses north's replicated tables and cannot use those of south/,
    );
    // A transaction within one group commits as before.
    expect(
      await psql(
        'c',
        'BEGIN',
        'UPDATE accounts SET balance = balance - 10 WHERE id = 1',
        'UPDATE accounts SET balance = balance + 10 WHERE id = 2',
        'COMMIT',
      ),
    ).toMatchObject({ code: 0 });
    for (const id of peers) {
      expect((await psql(id, 'SELECT id, balance FROM accounts ORDER BY id')).out).toBe(
        '1|90\n2|60\n',
      );
      expect((await psql(id, 'SELECT count(*) FROM orders')).out).toBe('1\n');
    }
  }, 60_000);

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
    await until(
      'c back, with both writes',
      async () =>
        (
          await psql(
            'c',
            "SELECT (SELECT sum(balance) FROM accounts) || '/' || (SELECT count(*) FROM orders)",
          )
        ).out === '152/2\n',
      90_000,
    );
    await identical('north');
    await identical('south');
  }, 120_000);
});
