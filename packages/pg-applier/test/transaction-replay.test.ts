// A property of the transaction entry (transaction-entry.ts): re-run at its slot, a
// transaction either reproduces every result its client was given and commits, or aborts,
// and every replica decides alike, even when the replicas hold the same rows in different
// physical orders. Random transactions run tentatively on one replica, random writes of
// other clients may get in before the slot, then every replica applies the entry.

import { type Postgres, startPostgres } from '@synod/testkit';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, loadParser } from '../src/classify.js';
import { PgApplier, type SqlWrite, type WriteOutcome } from '../src/index.js';
import { ReplicatedTransaction } from '../src/wire-transaction.js';

const replicas = ['r0', 'r1', 'r2'] as const;
const KEYS = 6;

/** Statements over t(k, v): reads of one row, of several (in no order), and writes. */
const statement = fc.oneof(
  fc.integer({ min: 1, max: KEYS }).map((k) => `SELECT v FROM t WHERE k = ${k}`),
  fc.integer({ min: 0, max: 30 }).map((x) => `SELECT k, v FROM t WHERE v > ${x}`),
  fc.constant('SELECT count(*), sum(v) FROM t'),
  // Which rows a LIMIT keeps depends on their order, and replicas lay rows out differently.
  fc.integer({ min: 0, max: 30 }).map((x) => `SELECT k FROM t WHERE v > ${x} LIMIT 2`),
  fc
    .integer({ min: 0, max: 30 })
    .map((x) => `SELECT k, v FROM t WHERE v > ${x} ORDER BY v LIMIT 1`),
  fc
    .tuple(fc.integer({ min: 1, max: KEYS }), fc.integer({ min: -5, max: 5 }))
    .map(([k, d]) => `UPDATE t SET v = v + ${d} WHERE k = ${k}`),
  fc
    .tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 30 }))
    .map(([x, y]) => `UPDATE t SET v = ${x} WHERE v < ${y} RETURNING k`),
  fc
    .tuple(fc.integer({ min: 1, max: KEYS + 2 }), fc.integer({ min: 0, max: 30 }))
    .map(([k, x]) => `INSERT INTO t VALUES (${k}, ${x})`),
  fc.integer({ min: 1, max: KEYS }).map((k) => `DELETE FROM t WHERE k = ${k}`),
  fc.constant('SAVEPOINT s'),
  fc.constant('ROLLBACK TO SAVEPOINT s'),
);
/** Another client's write that may get in between: one statement, its own entry. */
const otherWrite = fc.oneof(
  fc
    .tuple(fc.integer({ min: 1, max: KEYS }), fc.integer({ min: 1, max: 5 }))
    .map(([k, d]) => `UPDATE t SET v = v + ${d} WHERE k = ${k}`),
  fc.integer({ min: 1, max: KEYS }).map((k) => `DELETE FROM t WHERE k = ${k}`),
  fc.integer({ min: KEYS + 1, max: KEYS + 2 }).map((k) => `INSERT INTO t VALUES (${k}, 1)`),
);

describe('a transaction re-run at its slot', () => {
  let server: Postgres;
  const admins = new Map<string, pg.Client>();
  const appliers = new Map<string, PgApplier>();
  const applyClients: pg.Client[] = [];
  let slot = 0;
  const url = (db: string) => `postgres://${server.user}@${server.host}:${server.port}/${db}`;

  beforeAll(async () => {
    await loadParser();
    server = await startPostgres();
    const root = new pg.Client({ connectionString: server.url });
    await root.connect();
    for (const name of replicas) await root.query(`CREATE DATABASE ${name}`);
    await root.end();
    for (const name of replicas) {
      const admin = new pg.Client({ connectionString: url(name) });
      admin.on('error', () => undefined);
      await admin.connect();
      await admin.query('CREATE TABLE t (k int PRIMARY KEY, v int NOT NULL)');
      admins.set(name, admin);
      const apply = new pg.Client({ connectionString: url(name) });
      apply.on('error', () => undefined);
      await apply.connect();
      applyClients.push(apply);
      appliers.set(name, await PgApplier.open(apply, 'replay'));
    }
  }, 60_000);
  afterAll(async () => {
    for (const client of [...admins.values(), ...applyClients]) await client.end();
    await server?.stop();
  });

  /** The same rows on every replica, laid out differently on each. */
  const reset = async (values: readonly number[]): Promise<void> => {
    const rows = values.map((v, i) => `(${i + 1}, ${v})`);
    for (const [i, name] of replicas.entries()) {
      const admin = admins.get(name)!;
      await admin.query('TRUNCATE t');
      if (i === 0) await admin.query(`INSERT INTO t VALUES ${rows.join(', ')}`);
      if (i === 1) await admin.query(`INSERT INTO t VALUES ${[...rows].reverse().join(', ')}`);
      if (i === 2) {
        await admin.query(`INSERT INTO t VALUES ${rows.map((_, j) => `(${j + 1}, 0)`).join(', ')}`);
        for (const [j, v] of values.entries())
          await admin.query(`UPDATE t SET v = ${v} WHERE k = ${j + 1}`);
      }
    }
  };
  /** One log entry, applied by every replica: their outcomes. */
  const applyEverywhere = async (write: SqlWrite): Promise<WriteOutcome[]> => {
    const at = slot++;
    const outcomes: WriteOutcome[] = [];
    for (const name of replicas) {
      const result = await appliers.get(name)!.apply([{ slot: at, writes: [write] }]);
      outcomes.push(result.get(at)![0]!);
    }
    return outcomes;
  };
  const tables = () =>
    Promise.all(
      replicas.map(async (name) =>
        JSON.stringify((await admins.get(name)!.query('SELECT k, v FROM t ORDER BY k')).rows),
      ),
    );

  it('commits with the results its client saw, or aborts, alike on every replica', async () => {
    let committed = 0;
    let aborted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: KEYS, maxLength: KEYS }),
        fc.array(statement, { minLength: 1, maxLength: 6 }),
        fc.array(otherWrite, { maxLength: 2 }),
        async (values, statements, between) => {
          await reset(values);
          const tx = await ReplicatedTransaction.begin(url('r0'), 'replay');
          for (const sql of statements)
            await tx.run(sql, [], ['t'], classify(sql)[0]).catch(() => undefined);
          const ended = tx.failed;
          await (await tx.end())?.end(); // its locks would hold up the writes below
          for (const sql of between) await applyEverywhere({ sql });
          const outcomes = await applyEverywhere({ sql: '', txn: tx.statements });
          expect(new Set(outcomes.map((o) => JSON.stringify(o))).size).toBe(1);
          const [first] = await tables();
          expect(await tables()).toEqual([first, first, first]);
          // Nothing got in between: re-running reproduces every result, so it commits,
          // unless the client left it in the aborted state.
          if (between.length === 0 && !ended) expect(outcomes[0]).toMatchObject({ ok: true });
          if (outcomes[0]!.ok) committed++;
          else aborted++;
        },
      ),
      { numRuns: 60, seed: 20261206 },
    );
    expect(committed).toBeGreaterThan(0);
    expect(aborted).toBeGreaterThan(0);
  }, 120_000);
});
