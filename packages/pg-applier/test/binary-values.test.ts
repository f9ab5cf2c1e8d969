// The binary format conversions checked against PostgreSQL itself: for every value, the bytes
// textToBinary writes must be the bytes PostgreSQL sends, and the text binaryToText writes
// must be the same value to PostgreSQL.
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryToText, textToBinary } from '../src/binary-values.js';

const raw = { getTypeParser: () => (value: unknown) => value };

/** [type, OID, SQL literals of values of that type]. */
const CASES: readonly [string, number, readonly string[]][] = [
  ['bool', 16, ['true', 'false']],
  ['bytea', 17, ["'\\x'", "'\\x00ff10'", "decode(repeat('ab', 300), 'hex')"]],
  ['int2', 21, ['0', '-32768', '32767']],
  ['int4', 23, ['0', '-2147483648', '2147483647', '42']],
  ['int8', 20, ['0', '-9223372036854775808', '9223372036854775807']],
  ['oid', 26, ['0', '4294967295']],
  [
    'float4',
    700,
    ['0', '-0', '1.1', '3.4028235e38', '1e-45', "'NaN'", "'Infinity'", "'-Infinity'"],
  ],
  ['float8', 701, ['0', '-0', '0.1', '1e300', '5e-324', '-2.5', "'NaN'", "'-Infinity'"]],
  [
    'numeric',
    1700,
    [
      '0',
      '0.0',
      '1',
      '-1',
      '10000',
      '12345678.9',
      '0.0001',
      '0.00001234',
      '-0.5',
      '100.00',
      '123456789012345678901234567890.123456789',
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
    ],
  ],
  ['text', 25, ["''", "'héllo wörld'", "'tab\there'"]],
  ['varchar', 1043, ["'short'"]],
  ['bpchar', 1042, ["'ab   '"]],
  ['name', 19, ["'pg_class'"]],
  ['json', 114, ['\'{"a": [1, 2]}\'']],
  ['jsonb', 3802, ['\'{"b": 1, "a": [true, null]}\'']],
  ['uuid', 2950, ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]],
  [
    'date',
    1082,
    [
      "'2000-01-01'",
      "'1999-12-31'",
      "'2024-02-29'",
      "'0044-03-15 BC'",
      "'infinity'",
      "'-infinity'",
    ],
  ],
  [
    'timestamp',
    1114,
    [
      "'2000-01-01 00:00:00'",
      "'1970-01-01 00:00:00.000001'",
      "'2024-06-30 23:59:59.5'",
      "'1999-12-31 23:59:59.999999'",
      "'0044-03-15 12:00:00 BC'",
      "'infinity'",
    ],
  ],
  [
    'timestamptz',
    1184,
    [
      "'2024-06-30 23:59:59.123456+00'",
      "'1969-07-20 20:17:40-04'",
      "'2000-01-01 00:00:00+05:30'",
      "'-infinity'",
    ],
  ],
];

describe('binary values against PostgreSQL', () => {
  let server: Postgres;
  let db: pg.Client;

  beforeAll(async () => {
    server = await startPostgres();
    db = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.user,
      database: 'postgres',
    });
    await db.connect();
    // Text with an offset that is not whole hours: the timestamptz reader must apply it.
    await db.query("SET TimeZone TO 'Asia/Kolkata'");
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await server?.stop();
  });

  for (const [type, oid, literals] of CASES)
    it(`converts ${type} both ways as PostgreSQL does`, async () => {
      for (const literal of literals) {
        const sql = `SELECT (${literal})::${type} AS v`;
        const text = (await db.query({ text: sql, types: raw })).rows[0].v as string;
        // The type's send function gives its binary format (node-postgres would decode
        // binary results as UTF-8 text).
        const send = (
          await db.query('SELECT typsend::text AS f FROM pg_type WHERE oid = $1', [oid])
        ).rows[0].f as string;
        const sent = (
          await db.query({ text: `SELECT ${send}((${literal})::${type}) AS v`, types: raw })
        ).rows[0].v as string;
        const binary = Buffer.from(sent.slice(2), 'hex');
        expect(Buffer.from(textToBinary(oid, text)).toString('hex'), `${type} ${literal}`).toBe(
          binary.toString('hex'),
        );
        const back = binaryToText(oid, new Uint8Array(binary));
        const cast = type === 'json' ? '::text' : '';
        const same = await db.query({
          // json has no equality operator: its text is the value.
          text: `SELECT $1::${type}${cast} IS NOT DISTINCT FROM (${literal})::${type}${cast} AS same`,
          values: [back],
        });
        expect(same.rows[0], `${type} ${literal} read back as ${back}`).toMatchObject({
          same: true,
        });
      }
    });

  it('refuses a type it does not convert, naming it, and a value of the wrong size', () => {
    expect(() => binaryToText(1007, new Uint8Array(4))).toThrow(/type oid 1007 is not supported/);
    expect(() => binaryToText(23, new Uint8Array(3))).toThrow(
      /invalid binary int4 value: 3 bytes, not 4/,
    );
    expect(() => binaryToText(25, new Uint8Array([0xff]))).toThrow(/not UTF-8/);
  });
});
