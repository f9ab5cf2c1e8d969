// The extended protocol as drivers other than node-postgres use it: Describe of a statement
// (parameter and result types), binary parameters, binary results.
import { execFile } from 'node:child_process';
import { waitFor } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawWire } from './raw-wire.js';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];
const COLUMNS =
  'id int8 PRIMARY KEY, price numeric, at timestamptz, blob bytea, ok bool, ratio float8, label text, counts int4[]';

/** Binary int8 / bool / float8 parameters, as a driver would send them. */
const int8 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const float8 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b;
};

describe('binary values through the SQL front end', () => {
  let group: SqlGroup;
  const wires: RawWire[] = [];
  const wire = async (id: string): Promise<RawWire> => {
    const opened = await RawWire.open(group.frontEnds.get(id)!.port);
    wires.push(opened);
    return opened;
  };
  /** Node `id`'s own database, read directly. */
  const direct = async (id: string, sql: string, values: unknown[] = []) => {
    const db = new pg.Client({ connectionString: group.url(id) });
    await db.connect();
    try {
      return (await db.query(sql, values)).rows;
    } finally {
      await db.end();
    }
  };

  beforeAll(async () => {
    group = await SqlGroup.start('binaries', peers, { peers, replicated: ['things'] });
    for (const id of peers) await group.onDatabase(id, `CREATE TABLE things (${COLUMNS})`);
    for (const id of peers) await group.startNodeWithFrontEnd(id);
    await group.leaderKnown();
  }, 60_000);
  afterAll(async () => {
    for (const w of wires) await w.close().catch(() => undefined);
    await group?.stop();
  });

  it("describes a statement with PostgreSQL's parameter and result types (psql's \\gdesc too)", async () => {
    const a = await wire('a');
    const insert = await a.extended(
      'INSERT INTO things (id, price, at, blob, ok, ratio, label) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
      ['1', '1.5', '2024-01-02 03:04:05+00', '\\x00', 't', '0.5', 'one'],
    );
    expect(insert.error).toBeUndefined();
    expect(insert.params).toEqual([20, 1700, 1184, 17, 16, 701, 25]);
    expect(insert.fields).toEqual([{ name: 'id', type: 20, format: 0 }]);
    expect(insert.tags).toEqual(['INSERT 0 1']);
    const select = await a.extended('SELECT label, ratio FROM things WHERE id = $1', ['1']);
    expect(select.params).toEqual([20]);
    expect(select.fields).toEqual([
      { name: 'label', type: 25, format: 0 },
      { name: 'ratio', type: 701, format: 0 },
    ]);
    expect(select.rows.map((r) => r.map((v) => v?.toString()))).toEqual([['one', '0.5']]);

    const gdesc = await new Promise<string>((resolve) =>
      execFile(
        'psql',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(group.frontEnds.get('b')!.port),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-At',
        ],
        { timeout: 30_000 },
        (_error, stdout, stderr) => resolve(stdout + stderr),
      ).stdin!.end('SELECT id, price, at FROM things \\gdesc\n'),
    );
    expect(gdesc).toBe('id|bigint\nprice|numeric\nat|timestamp with time zone\n');
  });

  it('replicates a write with binary parameters as the text every replica parses alike', async () => {
    const b = await wire('b');
    const numeric = Buffer.from('0002000000000002000c1388', 'hex'); // 12.50: digits 12, 5000; scale 2
    const at = int8(777_000_000_123_456n); // microseconds after 2000-01-01 UTC
    const reply = await b.extended(
      'INSERT INTO things (id, price, at, blob, ok, ratio, label) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [
        int8(2n),
        numeric,
        at,
        Buffer.from([0, 1, 0xfe, 0xff]),
        Buffer.from([1]),
        float8(0.25),
        Buffer.from('two, binary'),
      ],
    );
    expect(reply.error).toBeUndefined();
    expect(reply.tags).toEqual(['INSERT 0 1']);
    for (const id of peers)
      await waitFor(
        `${id} has row 2`,
        async () => (await direct(id, 'SELECT 1 FROM things WHERE id = 2')).length === 1,
        10_000,
        20,
      );
    expect(
      await direct(
        'c',
        "SELECT price::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, encode(blob, 'hex') AS blob, ok, ratio, label FROM things WHERE id = 2",
      ),
    ).toEqual([
      {
        price: '12.50',
        at: '2024-08-15 01:20:00.123456',
        blob: '0001feff',
        ok: true,
        ratio: 0.25,
        label: 'two, binary',
      },
    ]);
    expect(new Set(await group.digests()).size).toBe(1);
  });

  it('takes a Buffer from node-postgres as a binary bytea parameter', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: group.frontEnds.get('c')!.port,
      user: 'postgres',
      database: 'postgres',
    });
    await client.connect();
    try {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await client.query('INSERT INTO things (id, blob) VALUES ($1, $2)', [3, bytes]);
      await waitFor(
        'a has row 3',
        async () => (await direct('a', 'SELECT 1 FROM things WHERE id = 3')).length === 1,
        10_000,
        20,
      );
      expect((await direct('a', 'SELECT blob FROM things WHERE id = 3'))[0].blob).toEqual(bytes);
    } finally {
      await client.end();
    }
  });

  it("sends binary results with the bytes of PostgreSQL's own send functions", async () => {
    const b = await wire('b');
    const reply = await b.extended(
      'SELECT id, price, at, blob, ok, ratio, label FROM things WHERE id = $1',
      [int8(2n)],
      {
        binaryResults: true,
      },
    );
    expect(reply.error).toBeUndefined();
    expect(reply.fields?.map((f) => f.format)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    const expected = await direct(
      'b',
      `SELECT encode(int8send(id), 'hex') AS id, encode(numeric_send(price), 'hex') AS price,
              encode(timestamptz_send(at), 'hex') AS at, encode(byteasend(blob), 'hex') AS blob,
              encode(boolsend(ok), 'hex') AS ok, encode(float8send(ratio), 'hex') AS ratio,
              encode(textsend(label), 'hex') AS label
         FROM things WHERE id = 2`,
    );
    expect(reply.rows.map((r) => r.map((v) => v?.toString('hex')))).toEqual([
      Object.values(expected[0]),
    ]);
  });

  it('refuses binary values of a type it does not convert, naming it, and the session goes on', async () => {
    const c = await wire('c');
    const result = await c.extended('SELECT counts FROM things WHERE id = 1', [], {
      binaryResults: true,
    });
    expect(result.error).toEqual({
      code: '0A000',
      message: 'the binary format of type oid 1007 is not supported; use the text format for it',
    });
    const param = await c.extended('UPDATE things SET counts = $1 WHERE id = 1', [
      Buffer.alloc(12),
    ]);
    expect(param.error?.code).toBe('0A000');
    expect((await direct('a', 'SELECT counts FROM things WHERE id = 1'))[0].counts).toBeNull();
    const after = await c.extended('SELECT count(*) FROM things', []);
    expect(after.rows.map((r) => r.map((v) => v?.toString()))).toEqual([['3']]);
  });
});
