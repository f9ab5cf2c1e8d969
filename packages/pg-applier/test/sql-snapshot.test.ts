// A SQL node's snapshot, for a peer behind a compacted log: taken from one database at its
// applied slot, installed into another (empty, or behind), it gives equal tables, equal
// digests, the same applied slot, and the sessions that keep a retried write applied once.

import type { ClientWrite, Command } from '@synod/protocol';
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlMachine } from '../src/index.js';

let server: Postgres;
const url = (database: string): string =>
  `postgres://${server.user}@${server.host}:${server.port}/${database}`;

beforeAll(async () => {
  server = await startPostgres();
  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  for (const db of ['origin', 'blank', 'behind']) await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const write = (clientId: string, seq: number, sql: string, params: string[] = []): ClientWrite => ({
  clientId,
  seq,
  command: { op: 'sql', sql, params },
});

describe('SQL snapshots', () => {
  it('carry every replicated table, its rows of many types, the sessions and the slot', async () => {
    const origin = await SqlMachine.open({
      connectionString: url('origin'),
      group: 'g',
      replicated: [],
    });
    const db = new pg.Client({ connectionString: url('origin') });
    await db.connect();
    await db.query(`CREATE TABLE things (
      id int PRIMARY KEY, label text, price numeric(12,4), seen timestamptz, raw bytea,
      tags text[], doc jsonb, ratio float8, twice int GENERATED ALWAYS AS (id * 2) STORED)`);
    await db.query('CREATE SCHEMA app');
    await db.query('CREATE TABLE app.notes (n int PRIMARY KEY, body text NOT NULL)');
    await db.end();
    const replicate = async (slot: number, table: string): Promise<void> => {
      const admitted = await origin.admit({ op: 'replicate', table });
      const command = (admitted as { command: Command }).command;
      await origin.apply([{ slot, writes: [{ clientId: 'admin', seq: slot + 1, command }] }]);
    };
    await replicate(0, 'things');
    await replicate(1, 'app.notes');
    await origin.apply([
      {
        slot: 2,
        writes: [
          write(
            'w',
            1,
            `INSERT INTO things (id, label, price, seen, raw, tags, doc, ratio) VALUES
             (1, 'it''s', 12.3456, '2026-11-30 12:00:00+00', '\\x00ff10', '{a,"b c",NULL}', '{"k": [1, 2.5, null]}', 0.1),
             (2, NULL, NULL, NULL, NULL, NULL, NULL, 1e300)`,
          ),
          write('w2', 7, "INSERT INTO app.notes VALUES (1, 'ünïcode ✓')"),
        ],
      },
    ]);
    const snapshot = await origin.snapshot();
    expect(snapshot.throughSlot).toBe(2);

    const blank = await SqlMachine.open({
      connectionString: url('blank'),
      group: 'g',
      replicated: [],
    });
    await blank.install(snapshot);
    expect(await blank.appliedThrough()).toBe(2);
    expect([...blank.replicatedTables].sort()).toEqual(['app.notes', 'things']);
    expect(await blank.digest()).toBe(await origin.digest());
    // The sessions came along: w's seq 1 again is a retry, answered without applying twice.
    const retried = await blank.apply([
      { slot: 3, writes: [write('w', 1, 'INSERT INTO things (id) VALUES (99)')] },
    ]);
    expect(retried.get(3)?.[0]).toMatchObject({ ok: true });
    expect(
      await blank.read({ op: 'query', sql: 'SELECT count(*)::int AS n FROM things' }),
    ).toMatchObject({
      rows: [{ n: 2 }],
    });
    // Stored generated columns are computed again, not copied.
    expect(
      await blank.read({ op: 'query', sql: 'SELECT twice FROM things ORDER BY id' }),
    ).toMatchObject({ rows: [{ twice: 2 }, { twice: 4 }] });
    await blank.close();
    await origin.close();
  }, 60_000);

  it('replaces the rows of a node behind, and changes nothing on a node ahead', async () => {
    const origin = await SqlMachine.open({
      connectionString: url('origin'),
      group: 'g',
      replicated: [],
    });
    const behind = await SqlMachine.open({
      connectionString: url('behind'),
      group: 'g',
      replicated: [],
    });
    await behind.install(await origin.snapshot()); // now at slot 2, like origin
    await origin.apply([{ slot: 3, writes: [write('w', 2, 'DELETE FROM things WHERE id = 1')] }]);
    await origin.apply([
      { slot: 4, writes: [write('w', 3, 'UPDATE things SET label = $1', ['x'])] },
    ]);
    const later = await origin.snapshot();
    expect(await behind.digest()).not.toBe(await origin.digest());
    await behind.install(later);
    expect(await behind.appliedThrough()).toBe(4);
    expect(await behind.digest()).toBe(await origin.digest());
    // An older snapshot is ignored: the node is past it.
    const before = await behind.digest();
    await behind.install({
      throughSlot: 2,
      bytes: new TextEncoder().encode(
        JSON.stringify({ v: 1, group: 'g', throughSlot: 2, tables: [], sessions: [] }),
      ),
    });
    expect(await behind.appliedThrough()).toBe(4);
    expect(await behind.digest()).toBe(before);
    // A snapshot of another group is refused, and changes nothing.
    await expect(
      behind.install({
        throughSlot: 9,
        bytes: new TextEncoder().encode(
          JSON.stringify({ v: 1, group: 'other', throughSlot: 9, tables: [], sessions: [] }),
        ),
      }),
    ).rejects.toThrow(/not a SQL snapshot of group g/);
    expect(await behind.appliedThrough()).toBe(4);
    await behind.close();
    await origin.close();
  }, 60_000);
});
