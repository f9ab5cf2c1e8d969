import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { waitFor, whileLeaderMoves } from '@synod/testkit';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];

describe('COPY through the SQL front end', () => {
  let group: SqlGroup;

  const psql = (id: string, command: string) => group.psql(id, command);
  const connect = (id: string) => group.session(id);
  const rowsOn = (id: string, sql: string) => group.rowsOn(id, sql);
  const sameEverywhere = async (): Promise<void> => {
    await waitFor(
      'every replica applied the same rows',
      async () => new Set(await group.digests()).size === 1,
      10_000,
      20,
    );
  };
  beforeAll(async () => {
    group = await SqlGroup.start('copies', peers, { peers, replicated: ['points'] });
    for (const id of peers)
      await group.onDatabase(
        id,
        'CREATE TABLE points (id int PRIMARY KEY, name text, note text NOT NULL DEFAULT $$-$$)',
      );
    for (const id of peers) await group.startNodeWithFrontEnd(id);
    await group.leaderKnown();
    // A local table, made as a client makes one: through the front end, so it is the client's.
    const client = await connect('a');
    await client.query('CREATE TABLE scratch (a int, b text)');
    await client.end();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  it("replicates psql's \\copy from a file: every replica gets the rows, NULLs and escapes included", async () => {
    const file = join(group.dir, 'points.txt');
    await writeFile(file, '1\tone\ta\\tb\n2\t\\N\tline\\nbreak\n3\tthree\t-\n');
    const copied = await psql('a', `\\copy points from '${file}'`);
    expect(copied.output).toBe('COPY 3\n');
    expect(copied.code).toBe(0);
    for (const id of peers)
      await waitFor(
        'c applied the COPY',
        async () => (await rowsOn(id, 'SELECT 1 FROM points')).length === 3,
        10_000,
        20,
      );
    expect(await rowsOn('c', 'SELECT id, name, note FROM points ORDER BY id')).toEqual([
      { id: 1, name: 'one', note: 'a\tb' },
      { id: 2, name: null, note: 'line\nbreak' },
      { id: 3, name: 'three', note: '-' },
    ]);
    await sameEverywhere();
  });

  it('replicates a csv COPY with a column list from node-postgres (pg-copy-streams)', async () => {
    const client = await connect('b');
    try {
      const stream = client.query(copyFrom('COPY points (id, name) FROM STDIN WITH (FORMAT csv)'));
      await pipeline(
        Readable.from(['10,"ten, with a comma"\n', '11,"eleven\nover two lines"\n']),
        stream,
      );
      expect(stream.rowCount).toBe(2);
    } finally {
      await client.end();
    }
    await sameEverywhere();
    expect(
      await rowsOn('a', 'SELECT id, name, note FROM points WHERE id >= 10 ORDER BY id'),
    ).toEqual([
      { id: 10, name: 'ten, with a comma', note: '-' },
      { id: 11, name: 'eleven\nover two lines', note: '-' },
    ]);
  });

  it('is all or nothing: a COPY with a duplicate key fails with 23505 and no replica has any of its rows', async () => {
    const file = join(group.dir, 'clash.txt');
    await writeFile(file, '20\ttwenty\t-\n1\tclash\t-\n');
    const copied = await psql('c', `\\copy points from '${file}'`);
    expect(copied.code).not.toBe(0);
    expect(copied.output).toMatch(/duplicate key value violates unique constraint/);
    await sameEverywhere();
    for (const id of peers)
      expect(await rowsOn(id, 'SELECT 1 FROM points WHERE id = 20')).toEqual([]);
    // The connection that failed keeps working.
    const client = await connect('c');
    try {
      const binary = client.query(copyFrom('COPY points FROM STDIN WITH (FORMAT binary)'));
      await expect(pipeline(Readable.from([Buffer.alloc(0)]), binary)).rejects.toMatchObject({
        code: '0A000',
      });
      expect((await client.query('SELECT count(*)::int AS n FROM points')).rows).toEqual([
        { n: 5 },
      ]);
    } finally {
      await client.end();
    }
  });

  it('applies a COPY sent twice with the same (clientId, seq) once, as any write', async () => {
    const write = {
      clientId: 'copy-retry',
      seq: 1,
      command: {
        op: 'sql',
        sql: 'COPY points (id, name) FROM STDIN',
        copy: '40\tforty\n41\tforty-one\n',
      },
    };
    const first = await whileLeaderMoves(() => group.ask('synod.copies.node.b.write', write));
    expect(first).toMatchObject({ ok: true, result: { command: 'COPY', rowCount: 2 } });
    // The retry of a client that did not hear the answer, through another node.
    const retry = await whileLeaderMoves(() => group.ask('synod.copies.node.c.write', write));
    expect(retry).toMatchObject({ ok: true, result: { command: 'COPY', rowCount: 2 } });
    await sameEverywhere();
    for (const id of peers)
      expect(
        await rowsOn(id, 'SELECT count(*)::int AS n FROM points WHERE id IN (40, 41)'),
      ).toEqual([{ n: 2 }]);
    // Without its rows, or rows for a statement that is not a COPY: refused before the log.
    const bare = await group.ask('synod.copies.write', {
      clientId: 'copy-bare',
      seq: 1,
      command: { op: 'sql', sql: 'COPY points FROM STDIN' },
    });
    expect(bare).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', message: expect.stringMatching(/needs its rows/) },
    });
    const stray = await group.ask('synod.copies.write', {
      clientId: 'copy-stray',
      seq: 1,
      command: { op: 'sql', sql: "INSERT INTO points VALUES (50, 'x')", copy: '1\n' },
    });
    expect(stray).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', message: expect.stringMatching(/not one/) },
    });
    await group.ask('synod.copies.write', {
      clientId: 'copy-cleanup',
      seq: 1,
      command: { op: 'sql', sql: 'DELETE FROM points WHERE id IN (40, 41)' },
    });
    await sameEverywhere();
  });

  it('ends a COPY the client abandons (CopyFail) with 57014 and applies nothing', async () => {
    const client = await connect('a');
    try {
      const stream = client.query(copyFrom('COPY points FROM STDIN'));
      stream.write('30\tthirty\t-\n');
      const failed = new Promise((resolve) => stream.on('error', resolve));
      stream.destroy(new Error('the client changed its mind'));
      expect(await failed).toMatchObject({ code: '57014' });
      expect((await client.query('SELECT count(*)::int AS n FROM points')).rows).toEqual([
        { n: 5 },
      ]);
    } finally {
      await client.end();
    }
    await sameEverywhere();
  });

  it('refuses a COPY larger than a log entry with 54000, and copies into a local table locally', async () => {
    const client = await connect('a');
    try {
      const rows = Array.from(
        { length: 20_000 },
        (_, i) => `${1000 + i}\t${'x'.repeat(20)}\t-\n`,
      ).join('');
      await expect(
        pipeline(Readable.from([rows]), client.query(copyFrom('COPY points FROM STDIN'))),
      ).rejects.toMatchObject({
        code: '54000',
      });
      const local = client.query(copyFrom('COPY scratch FROM STDIN'));
      await pipeline(Readable.from(['1\tkept here\n']), local);
      expect(local.rowCount).toBe(1);
    } finally {
      await client.end();
    }
    expect(await rowsOn('a', 'SELECT * FROM scratch')).toEqual([{ a: 1, b: 'kept here' }]);
    expect(await rowsOn('a', 'SELECT count(*)::int AS n FROM points')).toEqual([{ n: 5 }]);
  });

  it('copies out with \\copy ... to stdout and COPY (query) TO STDOUT, after a strong read barrier', async () => {
    const out = await psql('b', '\\copy points to stdout');
    expect(out.code).toBe(0);
    expect(out.output.trim().split('\n').sort()).toEqual(
      [
        '1\tone\ta\\tb',
        '10\tten, with a comma\t-',
        '11\televen\\nover two lines\t-',
        '2\t\\N\tline\\nbreak',
        '3\tthree\t-',
      ].sort(),
    );
    const query = await psql(
      'c',
      '\\copy (SELECT id FROM points WHERE id < 3 ORDER BY id) to stdout with (format csv)',
    );
    expect(query.output).toBe('1\n2\n');
    const missing = await psql('c', '\\copy nowhere to stdout');
    expect(missing.code).not.toBe(0);
    expect(missing.output).toMatch(/relation "nowhere" does not exist/);
  });
});
