// A SQL group's part in a transaction across groups, on a real PostgreSQL: the RM's vote is its
// `txn_prepare` entry, which prepares the statements at its slot (PREPARE TRANSACTION) or
// votes aborted; the vote is the same when asked again, also after a crash between PREPARE and
// the slot's bookkeeping; the prepared transaction holds its rows until `txn_outcome`, and a
// write that needs them meanwhile fails alike everywhere instead of waiting for ever.
import type { ClientWrite, Command, PlainData } from '@synod/protocol';
import { type Postgres, startPostgres } from '@synod/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgApplier, SqlMachine, type WriteOutcome } from '../src/index.js';
import type { GlobalStep } from '../src/sql-outcomes.js';
import { applyAloneSlot } from '../src/step-apply.js';
import { resultDigest } from '../src/transaction-entry.js';

let server: Postgres;
const url = (database: string): string =>
  `postgres://${server.user}@${server.host}:${server.port}/${database}`;

beforeAll(async () => {
  server = await startPostgres();
  const admin = new pg.Client({ connectionString: url('postgres') });
  await admin.connect();
  for (const db of ['rm', 'copy']) await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const meta = (number: number): PlainData => ({
  txid: `south.${number}`,
  coordinator: 'south',
  number,
  rms: ['north', 'south'],
  acceptors: ['a', 'b', 'c'],
  protocol: 'paxos-commit',
});
const UPDATED = resultDigest({ command: 'UPDATE', rowCount: 1, rows: [] });
const prepare = (number: number, sql: string, expect = UPDATED): Command => ({
  op: 'txn_prepare',
  meta: meta(number),
  writes: [{ op: 'sql', statements: [{ sql, params: [], expect }] }],
});
const outcome = (number: number, result: 'committed' | 'aborted'): Command => ({
  op: 'txn_outcome',
  txid: `south.${number}`,
  outcome: result,
});

describe("a SQL group's part in a transaction across groups", () => {
  let north: SqlMachine;
  let south: SqlMachine;
  let db: pg.Client;
  let slot = -1;
  let seq = 0;
  /** One write in north's next slot, by the node's own client: its result. */
  const apply = async (command: Command): Promise<unknown> => {
    slot += 1;
    const write: ClientWrite = { clientId: 'rm', seq: ++seq, command };
    const results = await north.apply([{ slot, writes: [write] }]);
    return results.get(slot)?.[0];
  };
  const prepared = async (): Promise<string[]> =>
    (await db.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map(
      (r) => r.gid,
    );
  const balance = async (): Promise<number> =>
    (await db.query<{ balance: number }>('SELECT balance FROM accounts WHERE id = 1')).rows[0]!
      .balance;

  beforeAll(async () => {
    const machines = await SqlMachine.openGroups({
      connectionString: url('rm'),
      groups: [
        { group: 'north', replicated: ['accounts'] },
        { group: 'south', replicated: ['orders'] },
      ],
    });
    north = machines[0]!;
    south = machines[1]!;
    db = new pg.Client({ connectionString: url('rm') });
    await db.connect();
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
    expect(await apply({ op: 'sql', sql: 'INSERT INTO accounts VALUES (1, 100)' })).toMatchObject({
      ok: true,
    });
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await north?.close();
    await south?.close();
  });

  it('prepares at its slot, holds its rows until the outcome, and votes once', async () => {
    const update = 'UPDATE accounts SET balance = balance - 10 WHERE id = 1';
    expect(await apply(prepare(1, update))).toEqual({ ok: true, result: { vote: 'prepared' } });
    expect(await prepared()).toEqual(['synod:north:south.1']);
    expect(north.readTransactions({ op: 'txn_open' })).toEqual([
      { meta: meta(1), vote: 'prepared' },
    ]);
    // A write of the held row would wait for the outcome, later in this same log: it fails.
    expect(await apply({ op: 'sql', sql: 'UPDATE accounts SET balance = 0 WHERE id = 1' })).toEqual(
      {
        ok: false,
        sqlState: '55P03',
        message: expect.stringContaining('held by a transaction across groups that is prepared'),
      },
    );
    // Asked again (a new leader's RM), the same vote, and nothing prepared twice.
    expect(await apply(prepare(1, update))).toEqual({ ok: true, result: { vote: 'prepared' } });
    expect(await prepared()).toEqual(['synod:north:south.1']);
    // The snapshot waits for the outcome: a dump of rows cannot carry a prepared transaction.
    await expect(north.snapshot()).rejects.toMatchObject({ sqlState: '55006' });
    expect(await balance()).toBe(100);
    expect(await apply(outcome(1, 'committed'))).toEqual({
      ok: true,
      result: { outcome: 'committed' },
    });
    expect(await balance()).toBe(90);
    expect(await prepared()).toEqual([]);
    expect(north.readTransactions({ op: 'txn_open' })).toEqual([]);
    // Decided: asked again, the vote it gave, marked decided; the outcome again changes nothing.
    expect(await apply(prepare(1, update))).toEqual({
      ok: true,
      result: { vote: 'prepared', decided: true },
    });
    expect(await apply(outcome(1, 'committed'))).toMatchObject({ ok: true });
    expect(await balance()).toBe(90);
  });

  it('votes aborted when a statement gives another result at its slot, and prepares nothing', async () => {
    const stale = resultDigest({ command: 'UPDATE', rowCount: 0, rows: [] });
    expect(
      await apply(prepare(2, 'UPDATE accounts SET balance = balance - 10 WHERE id = 1', stale)),
    ).toEqual({
      ok: true,
      result: { vote: 'aborted', reason: expect.stringContaining('another result at its slot') },
    });
    expect(await prepared()).toEqual([]);
    // Aborted: it cannot commit, and rolling back changes nothing.
    expect(await apply(outcome(2, 'committed'))).toMatchObject({ ok: false, sqlState: '22023' });
    expect(await apply(outcome(2, 'aborted'))).toMatchObject({ ok: true });
    // A statement of another group's table is refused at the slot: aborted, not run.
    expect(await apply(prepare(3, "INSERT INTO orders VALUES (1, 'x')", UPDATED))).toMatchObject({
      ok: true,
      result: { vote: 'aborted' },
    });
    expect(await balance()).toBe(90);
  });

  it('finds a transaction it prepared before a crash that came before the slot was recorded', async () => {
    // What a crash between PREPARE TRANSACTION and the slot's bookkeeping leaves: the prepared
    // transaction, and no vote recorded. The apply role prepares it, as the applier would.
    const apply_ = new pg.Client({ connectionString: north.transactionConnectionString });
    await apply_.connect();
    await apply_.query('BEGIN');
    await apply_.query('UPDATE accounts SET balance = balance + 5 WHERE id = 1');
    await apply_.query("PREPARE TRANSACTION 'synod:north:south.4'");
    await apply_.end();
    // Its statement run again would wait on its own rows; the vote is found by its gid.
    expect(
      await apply(prepare(4, 'UPDATE accounts SET balance = balance + 5 WHERE id = 1')),
    ).toEqual({ ok: true, result: { vote: 'prepared' } });
    expect(await apply(outcome(4, 'aborted'))).toMatchObject({ ok: true });
    expect(await prepared()).toEqual([]);
    expect(await balance()).toBe(90);
  });

  it('finishes a transaction whose COMMIT PREPARED ran before a crash that came before the slot was recorded', async () => {
    const update = 'UPDATE accounts SET balance = balance + 7 WHERE id = 1';
    expect(await apply(prepare(5, update))).toEqual({ ok: true, result: { vote: 'prepared' } });
    // What such a crash leaves: the prepared transaction committed, its outcome not recorded.
    const apply_ = new pg.Client({ connectionString: north.transactionConnectionString });
    await apply_.connect();
    await apply_.query("COMMIT PREPARED 'synod:north:south.5'");
    await apply_.end();
    expect(await apply(outcome(5, 'committed'))).toEqual({
      ok: true,
      result: { outcome: 'committed' },
    });
    expect(await balance()).toBe(97);
    expect(JSON.stringify(north.readTransactions({ op: 'txn_open' }))).not.toContain('south.5');
    expect(
      (await db.query("SELECT outcome FROM synod.txn_votes WHERE txid = 'south.5'")).rows,
    ).toEqual([{ outcome: 'committed' }]);
  });

  it("carries the group's votes and numbering in its snapshot, so a replica that installs it votes alike", async () => {
    const begun = await apply({
      op: 'txn',
      ops: [
        { group: 'north', op: 'sql', statements: [{ sql: 'SELECT 1', params: [], expect: 'x' }] },
      ],
      acceptors: ['a'],
      protocol: 'paxos-commit',
    });
    expect(begun).toMatchObject({ ok: true, result: { txn: 1, groups: ['north'] } });
    const snapshot = await north.snapshot();
    const [copy] = await SqlMachine.openGroups({
      connectionString: url('copy'),
      groups: [{ group: 'north', replicated: ['accounts'] }],
    });
    try {
      await copy!.install(snapshot);
      // The vote it gave to south.1, not a new one; and the next number is 2.
      const again = await copy!.apply([
        {
          slot: snapshot.throughSlot + 1,
          writes: [{ clientId: 'rm2', seq: 1, command: prepare(1, 'SELECT 1') }],
        },
        {
          slot: snapshot.throughSlot + 2,
          writes: [
            {
              clientId: 'c',
              seq: 1,
              command: {
                op: 'txn',
                ops: [
                  {
                    group: 'north',
                    op: 'sql',
                    statements: [{ sql: 'SELECT 1', params: [], expect: 'x' }],
                  },
                ],
                acceptors: ['a'],
                protocol: 'paxos-commit',
              },
            },
          ],
        },
      ]);
      expect(again.get(snapshot.throughSlot + 1)?.[0]).toEqual({
        ok: true,
        result: { vote: 'prepared', decided: true },
      });
      expect(again.get(snapshot.throughSlot + 2)?.[0]).toMatchObject({
        ok: true,
        result: { txn: 2 },
      });
    } finally {
      await copy!.close();
    }
  });
});

describe("a SQL group's memory of decided votes", () => {
  it('forgets all but the newest, and gives a prepare at or below a forgotten number no vote', async () => {
    const admin = new pg.Client({ connectionString: url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE floors');
    await admin.end();
    const db = new pg.Client({ connectionString: url('floors') });
    await db.connect();
    await PgApplier.open(db, 'north');
    let slot = -1;
    /** One step in north's next slot, keeping 2 decided votes: its outcome. */
    const step = async (write: GlobalStep): Promise<WriteOutcome> => {
      slot += 1;
      const [outcome] = await applyAloneSlot(db, 'north', {
        entry: { slot, writes: [{ sql: '', step: write }] },
        applied: slot - 1,
        sessions: new Map(),
        groupsHere: 1,
        keepDecided: 2,
      });
      return outcome!;
    };
    const vote = (number: number): GlobalStep => ({
      kind: 'prepare',
      txid: `south.${number}`,
      meta: meta(number),
      statements: [],
    });
    const votes = async (): Promise<string[]> =>
      (await db.query<{ txid: string }>('SELECT txid FROM synod.txn_votes ORDER BY txid')).rows.map(
        (r) => r.txid,
      );
    try {
      for (const n of [1, 2, 3, 4]) {
        expect(await step(vote(n))).toMatchObject({ rows: [{ vote: 'prepared' }] });
        await step({ kind: 'finish', txid: `south.${n}`, outcome: 'committed' });
      }
      expect(await votes()).toEqual(['south.3', 'south.4']);
      // Forgotten: no vote at all, rather than a second one.
      expect(await step(vote(2))).toMatchObject({ rows: [{ vote: null, decided: 'false' }] });
      expect(await step(vote(3))).toMatchObject({ rows: [{ vote: 'prepared', decided: 'true' }] });
      expect(await step(vote(5))).toMatchObject({ rows: [{ vote: 'prepared', decided: 'false' }] });
      expect(
        (await db.query('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map((r) => r.gid),
      ).toEqual(['synod:north:south.5']);
      await step({ kind: 'finish', txid: 'south.5', outcome: 'aborted' });
    } finally {
      await db.end();
    }
  });
});
