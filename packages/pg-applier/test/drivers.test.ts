// The drivers applications use, unchanged, against the SQL front end: Debian's psycopg2 (it
// needs the ParameterStatus set a PostgreSQL server sends, and cancels with PQcancel), knex
// (transactions with RETURNING, and a migration that makes and fills a table before it is
// replicated). The reported settings are checked against a real PostgreSQL 15's.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@synod/testkit';
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPORTED_SETTINGS } from '../src/wire-startup.js';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];
const PSYCOPG2 = fileURLToPath(new URL('./clients/psycopg2_client.py', import.meta.url));

/** Debian's python3, which has Debian's psycopg2 (.ci/run installs it). */
function python(...args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/python3',
      [PSYCOPG2, ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error === null
          ? resolve(JSON.parse(stdout) as Record<string, unknown>)
          : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
}

describe('drivers against the SQL front end', () => {
  let group: SqlGroup;
  const knexes: Knex[] = [];
  const dsn = (id: string) =>
    `host=127.0.0.1 port=${group.frontEnds.get(id)!.port} user=postgres dbname=postgres`;
  const knex = (id: string): Knex => {
    const k = knexFactory({
      client: 'pg',
      connection: {
        host: '127.0.0.1',
        port: group.frontEnds.get(id)!.port,
        user: 'postgres',
        database: 'postgres',
      },
      pool: { min: 0, max: 2 },
    });
    knexes.push(k);
    return k;
  };
  const until = (what: string, check: () => Promise<boolean>) => waitFor(what, check, 15_000, 50);

  beforeAll(async () => {
    group = await SqlGroup.withFrontEnds('drivers', peers);
    const a = await group.session('a');
    await a.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await a.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
    await a.query("SELECT synod.replicate_table('notes')");
    await a.query("SELECT synod.replicate_table('accounts')");
    await a.query('INSERT INTO accounts VALUES (1, 100), (2, 100)');
    await a.end();
  }, 90_000);
  afterAll(async () => {
    for (const k of knexes) await k.destroy();
    await group?.stop();
  });

  it('psycopg2 connects and gets the settings a PostgreSQL 15 server reports', async () => {
    const ours = await python('params', dsn('a'));
    const { host, port, user } = group.postgres;
    const real = await python('params', `host=${host} port=${port} user=${user} dbname=postgres`);
    expect(ours.encoding).toBe('UTF8');
    expect(ours.server_version).toMatch(/^15\.\d+ \(synod\)$/);
    expect(ours.server_version_number).toBe(real.server_version_number);
    expect(ours.is_superuser).toBe('off'); // the front end's sessions never are
    // The rest as the real server has them (is_superuser and server_version are checked above).
    for (const name of REPORTED_SETTINGS.filter(
      (n) => n !== 'is_superuser' && n !== 'server_version',
    ))
      expect([name, ours[name]]).toEqual([name, real[name]]);
  }, 60_000);

  it('psycopg2 runs a transaction through one node and reads it back through another', async () => {
    expect(await python('txn', dsn('a'), dsn('b'))).toEqual({
      returned: 500,
      rows: [[500, 'from python!']],
    });
  }, 60_000);

  it('a reported setting changed by SET is reported again, as PostgreSQL does', async () => {
    const answer = await python('set', dsn('b'));
    expect(answer.after).toBe('Asia/Tokyo');
    expect(answer.before).not.toBe('Asia/Tokyo');
  }, 60_000);

  it('psycopg2 cancels a running query (BackendKeyData, then a CancelRequest)', async () => {
    const outcome = await python('cancel', dsn('c'));
    expect(outcome).toMatchObject({ cancelled: true, code: '57014', after: 1 });
    expect(outcome.seconds as number).toBeLessThan(10);
  }, 60_000);

  it('psql: Ctrl-C (SIGINT) cancels the running query', async () => {
    const started = Date.now();
    const psql = spawn(
      'psql',
      [
        ...['-h', '127.0.0.1', '-p', String(group.frontEnds.get('a')!.port), '-U', 'postgres'],
        ...['-d', 'postgres', '-c', 'SELECT pg_sleep(20)'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    psql.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => psql.kill('SIGINT'), 1_000);
    const code = await new Promise<number | null>((resolve) => psql.on('exit', resolve));
    clearTimeout(timer);
    expect(stderr).toMatch(/canceling statement due to user request/);
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

  it('knex: a transaction with RETURNING, its read deciding its write, applied on every node', async () => {
    const k = knex('a');
    const moved = await k.transaction(async (trx) => {
      const [note] = await trx('notes').insert({ id: 600, body: 'knex' }).returning(['id', 'body']);
      const from = await trx('accounts').where({ id: 1 }).first('balance');
      await trx('accounts')
        .where({ id: 1 })
        .update({ balance: from.balance - 30 });
      await trx('accounts').where({ id: 2 }).increment('balance', 30);
      return note;
    });
    expect(moved).toEqual({ id: 600, body: 'knex' });
    const c = knex('c');
    await until(
      'the transfer on node c',
      async () => (await c('accounts').where({ id: 1 }).first('balance'))?.balance === 70,
    );
    expect(await c('accounts').orderBy('id').select('id', 'balance')).toEqual([
      { id: 1, balance: 70 },
      { id: 2, balance: 130 },
    ]);
    expect(await c('notes').where({ id: 600 }).first('body')).toEqual({ body: 'knex' });
  }, 60_000);

  it('knex: a failing transaction is rolled back everywhere', async () => {
    const k = knex('b');
    await expect(
      k.transaction(async (trx) => {
        await trx('notes').insert({ id: 601, body: 'never' });
        await trx('notes').insert({ id: 600, body: 'duplicate' });
      }),
    ).rejects.toMatchObject({ code: '23505' });
    for (const id of peers)
      expect(await group.rowsOn(id, 'SELECT id FROM notes WHERE id = 601')).toEqual([]);
  }, 60_000);

  it('knex: a migration makes and fills a table, which is then replicated with its rows', async () => {
    const k = knex('b');
    await k.migrate.latest({
      migrationSource: {
        getMigrations: async () => ['001_ledger'],
        getMigrationName: (name: string) => name,
        getMigration: async () => ({
          up: async (db: Knex) => {
            await db.schema.createTable('ledger', (t) => {
              t.integer('id').primary();
              t.string('entry').notNullable();
            });
            await db('ledger').insert([
              { id: 1, entry: 'opened' },
              { id: 2, entry: 'funded' },
            ]);
          },
          down: async (db: Knex) => db.schema.dropTable('ledger'),
        }),
      },
    });
    await k.raw("SELECT synod.replicate_table('ledger')");
    const ledger = (id: string) =>
      group.rowsOn(id, 'SELECT id, entry FROM ledger ORDER BY id').then(
        (rows) => JSON.stringify(rows),
        () => 'no table',
      );
    for (const id of peers)
      await until(
        `the ledger's rows on ${id}`,
        async () => (await ledger(id)) === '[{"id":1,"entry":"opened"},{"id":2,"entry":"funded"}]',
      );
    // Its writes now go through the log, from a knex transaction on another node.
    await knex('c').transaction(async (trx) => {
      await trx('ledger').insert({ id: 3, entry: 'replicated' });
    });
    for (const id of peers)
      await until(`row 3 on ${id}`, async () => (await ledger(id)).includes('"id":3'));
  }, 60_000);
});
