// Replicating a table at run time: its definition, read from one database, recreates it on
// another alike; what replicas could not replay alike is refused, naming the column.
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertDefinition,
  DeterminismError,
  loadParser,
  SqlError,
  SqlMachine,
  tableDefinition,
} from '../src/index.js';

let server: Postgres;
let source: pg.Client;
let target: pg.Client;

const connect = async (database: string): Promise<pg.Client> => {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.user,
    database,
  });
  await client.connect();
  return client;
};

/** Columns and constraints as the catalog describes them: equal shapes, equal text. */
async function shape(client: pg.Client, table: string): Promise<string> {
  const columns = await client.query(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated,
            pg_get_expr(d.adbin, d.adrelid)
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [table],
  );
  const constraints = await client.query(
    `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
      WHERE conrelid = to_regclass($1) ORDER BY conname`,
    [table],
  );
  return JSON.stringify([columns.rows, constraints.rows]);
}

beforeAll(async () => {
  server = await startPostgres();
  await loadParser();
  const admin = await connect('postgres');
  await admin.query('CREATE DATABASE source');
  await admin.query('CREATE DATABASE target');
  await admin.end();
  source = await connect('source');
  target = await connect('target');
}, 60_000);
afterAll(async () => {
  await source?.end();
  await target?.end();
  await server?.stop();
});

describe('tableDefinition', () => {
  it('recreates a table on another database with the same columns and constraints', async () => {
    await source.query(`CREATE SCHEMA geo`);
    await source.query(`CREATE TABLE geo.points (
      id bigint PRIMARY KEY,
      label varchar(40) NOT NULL DEFAULT 'none',
      "Weird Name" numeric(10, 2),
      tags text[] DEFAULT '{}',
      doubled bigint GENERATED ALWAYS AS (id * 2) STORED,
      CONSTRAINT positive CHECK (id > 0),
      UNIQUE (label, "Weird Name"))`);
    const definition = await tableDefinition(source, 'geo.points');
    for (const statement of definition) await target.query(statement);
    expect(await shape(target, 'geo.points')).toBe(await shape(source, 'geo.points'));
    // The definition passes the leader's check, and running it again changes nothing.
    expect(() => assertDefinition('geo.points', definition)).not.toThrow();
    for (const statement of definition) await target.query(statement);
  });

  it('refuses identity columns and volatile defaults, naming the column', async () => {
    await source.query('CREATE TABLE counters (id serial PRIMARY KEY)');
    await source.query('CREATE TABLE stamped (id int, at timestamptz DEFAULT now())');
    await source.query('CREATE TABLE numbered (id int GENERATED ALWAYS AS IDENTITY)');
    await expect(tableDefinition(source, 'counters')).rejects.toThrow(
      /column "id" of "counters" defaults to nextval\(.*nextval\(\)/,
    );
    await expect(tableDefinition(source, 'stamped')).rejects.toThrow(
      /column "at" of "stamped" .*now\(\)/,
    );
    await expect(tableDefinition(source, 'numbered')).rejects.toBeInstanceOf(DeterminismError);
  });

  it('refuses a missing table, a view and a name it cannot hold, with their SQLSTATEs', async () => {
    await expect(tableDefinition(source, 'nowhere')).rejects.toMatchObject({ sqlState: '42P01' });
    await source.query('CREATE VIEW one AS SELECT 1 AS x');
    await expect(tableDefinition(source, 'one')).rejects.toThrow(/not a plain table/);
    for (const name of ['Points', 'a.b.c', 'x; DROP TABLE y', ''])
      await expect(tableDefinition(source, name)).rejects.toMatchObject({ sqlState: '42602' });
    await expect(tableDefinition(source, 'Points')).rejects.toBeInstanceOf(SqlError);
  });
});

describe('SqlMachine.open', () => {
  it('refuses a table named to replicate from the start whose default is volatile', async () => {
    await source.query('CREATE TABLE tickets (id serial PRIMARY KEY, label text)');
    const url = `postgres://${server.user}@${server.host}:${server.port}/source`;
    await expect(
      SqlMachine.open({ connectionString: url, group: 'start', replicated: ['tickets'] }),
    ).rejects.toThrow(/column "id" of "tickets" defaults to nextval/);
    // A table that does not exist yet, or one without volatile defaults, is fine.
    await source.query('CREATE TABLE plain_start (id int PRIMARY KEY)');
    const machine = await SqlMachine.open({
      connectionString: url,
      group: 'start',
      replicated: ['plain_start', 'not_yet_created'],
    });
    expect([...machine.replicatedTables].sort()).toEqual(['not_yet_created', 'plain_start']);
    await machine.close();
  });
});

describe('assertDefinition (the leader checks a forwarded definition)', () => {
  it('takes only CREATE TABLE of that table, without volatile functions', () => {
    const ok = ['CREATE TABLE IF NOT EXISTS "t" ("a" integer)'];
    expect(() => assertDefinition('t', ok)).not.toThrow();
    for (const bad of [
      ['DROP TABLE coordinates'],
      ['CREATE TABLE IF NOT EXISTS "u" ("a" integer)'],
      ['CREATE TABLE IF NOT EXISTS "t" ("a" integer DEFAULT random())'],
      ['CREATE TABLE IF NOT EXISTS "t" ("a" integer); DROP TABLE coordinates'],
      ['CREATE SCHEMA IF NOT EXISTS "t"', ...ok],
      'CREATE TABLE t (a int)',
      [1],
    ])
      expect(() => assertDefinition('t', bad), JSON.stringify(bad)).toThrow(DeterminismError);
    expect(() =>
      assertDefinition('s.t', ['CREATE SCHEMA IF NOT EXISTS "s"', 'CREATE TABLE "s"."t" (a int)']),
    ).not.toThrow();
  });
});
