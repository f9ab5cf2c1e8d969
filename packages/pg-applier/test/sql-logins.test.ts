// The SQL front end beyond loopback: --sql-listen on another address (127.0.0.2 here, never a
// real interface), users kept in the group's log with SCRAM-SHA-256 verifiers, and TLS. psql
// and node-postgres log in with a password, over TLS with sslmode=require and verify-full; a
// wrong password, an unknown user and a login before any user exists are refused.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeCertificates } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scramVerifier } from '../src/index.js';
import { SqlGroup } from './sql-group.js';

const run = promisify(execFile);
const peers = ['a', 'b', 'c'];
const HOST = '127.0.0.2';

describe('logins to the SQL front end', () => {
  let group: SqlGroup;
  let dir: string;

  const psql = async (env: Record<string, string>, user: string, sql: string) =>
    run(
      'psql',
      [
        `host=${HOST} port=${group.frontEnds.get('a')!.port} user=${user} dbname=postgres ${env.CONNINFO ?? ''}`,
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        sql,
      ],
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...env } },
    ).then(
      ({ stdout }) => ({ ok: true, out: stdout.trim() }),
      (error: { stderr: string }) => ({ ok: false, out: error.stderr }),
    );
  const addUser = async (name: string, password: string): Promise<void> => {
    const answer = await group.ask(`synod.${group.group}.write`, {
      clientId: `admin-${name}`,
      seq: 1,
      command: { op: 'sqluser', name, scram: await scramVerifier(password) },
    });
    expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'synod-logins-'));
    // A CA, and a certificate for HOST signed by it (server.pem, server-key.pem).
    await makeCertificates(dir, {
      server: { subject: `/CN=${HOST}`, extensions: `subjectAltName=IP:${HOST}\n` },
    });
    const tls = {
      cert: await readFile(join(dir, 'server.pem')),
      key: await readFile(join(dir, 'server-key.pem')),
    };
    group = await SqlGroup.start('logins', peers, { peers, replicated: [] });
    for (const id of peers) await group.startNodeWithFrontEnd(id, {}, { host: HOST, tls });
    await group.leaderKnown();
  }, 90_000);
  afterAll(async () => {
    await group?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('on an address chosen with --sql-listen, nobody gets in before a user exists', async () => {
    const result = await psql({ PGPASSWORD: 'anything' }, 'postgres', 'SELECT 1');
    expect(result.ok).toBe(false);
    expect(result.out).toMatch(/password authentication failed|authentication/);
  });

  it('a user added through the log logs in on every node, with TLS as psql and node-postgres ask', async () => {
    await addUser('alice', 's3cret-Alice');
    // Applied everywhere once the write is answered by its node; give the others a moment.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ok = await psql(
      { PGPASSWORD: 's3cret-Alice', PGSSLMODE: 'require' },
      'alice',
      'SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid() UNION ALL SELECT current_user, true',
    );
    expect(ok.ok, ok.out).toBe(true);
    const verified = await psql(
      {
        PGPASSWORD: 's3cret-Alice',
        PGSSLMODE: 'verify-full',
        PGSSLROOTCERT: join(dir, 'ca.pem'),
      },
      'alice',
      'SELECT 1',
    );
    expect(verified).toEqual({ ok: true, out: '1' });
    for (const id of peers) {
      const client = new pg.Client({
        host: HOST,
        port: group.frontEnds.get(id)!.port,
        user: 'alice',
        password: 's3cret-Alice',
        database: 'postgres',
        ssl: { ca: await readFile(join(dir, 'ca.pem'), 'utf8'), servername: HOST },
      });
      await client.connect();
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      await client.end();
    }
  }, 30_000);

  it('refuses a wrong password and an unknown user alike, and a removed user', async () => {
    const wrong = await psql({ PGPASSWORD: 'not-it' }, 'alice', 'SELECT 1');
    const unknown = await psql({ PGPASSWORD: 's3cret-Alice' }, 'mallory', 'SELECT 1');
    for (const refused of [wrong, unknown]) {
      expect(refused.ok).toBe(false);
      expect(refused.out).toMatch(/password authentication failed/);
    }
    const answer = await group.ask(`synod.${group.group}.write`, {
      clientId: 'admin-remove',
      seq: 1,
      command: { op: 'sqluser', name: 'alice', remove: true },
    });
    expect(answer).toMatchObject({ ok: true });
    const removed = await psql({ PGPASSWORD: 's3cret-Alice' }, 'alice', 'SELECT 1');
    expect(removed.ok).toBe(false);
  }, 30_000);

  it('refuses a user add that carries no verifier, or a bad name', async () => {
    for (const command of [
      { op: 'sqluser', name: 'bob', scram: { salt: 'x' } },
      { op: 'sqluser', name: 'bad name; DROP', scram: await scramVerifier('pw') },
    ]) {
      const answer = await group.ask(`synod.${group.group}.write`, {
        clientId: 'admin-bad',
        seq: Date.now(),
        command,
      });
      expect(answer).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    }
  });
});
