// Transactions on replicated tables through the SQL front end: BEGIN ... COMMIT is one log
// entry, all or nothing on every replica; the client sees each statement's result as it
// goes; a transaction whose results another write changed before its slot fails with 40001
// everywhere alike; errors, savepoints and ROLLBACK behave as PostgreSQL's.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];

describe('transactions on replicated tables', () => {
  let group: SqlGroup;
  const sessions: pg.Client[] = [];
  const session = async (id: string): Promise<pg.Client> => {
    const client = await group.session(id);
    sessions.push(client);
    return client;
  };
  /** Every node's rows of `sql`, once they are all equal (and `until` holds). */
  type Row = Record<string, unknown>;
  const everywhere = async (sql: string, until: (rows: Row[]) => boolean = () => true) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const all = await Promise.all(peers.map((id) => group.rowsOn(id, sql)));
      const texts = all.map((r) => JSON.stringify(r));
      if (texts.every((t) => t === texts[0]) && until(all[0] as Row[])) return all[0]!;
      if (Date.now() > deadline) expect(texts).toEqual([texts[0], texts[0], texts[0]]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const stateOf = (error: unknown): string | undefined => (error as { code?: string }).code;

  beforeAll(async () => {
    group = await SqlGroup.withFrontEnds('txns', peers);
    const a = await session('a');
    await a.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
    await a.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await a.query('CREATE TABLE mine (id int PRIMARY KEY)');
    expect(await group.psql('a', "SELECT synod.replicate_table('accounts')")).toMatchObject({
      code: 0,
    });
    expect(await group.psql('a', "SELECT synod.replicate_table('notes')")).toMatchObject({
      code: 0,
    });
    await a.query('INSERT INTO accounts VALUES (1, 100), (2, 100), (3, 100)');
    await everywhere('SELECT count(*)::int AS n FROM accounts', (r) => r[0]?.n === 3);
  }, 90_000);
  afterAll(async () => {
    for (const client of sessions) await client.end().catch(() => undefined);
    await group?.stop();
  });

  it('psql: BEGIN; INSERT; UPDATE; COMMIT through one node is one entry, applied on every node', async () => {
    const done = await group.psql(
      'a',
      "BEGIN; INSERT INTO notes VALUES (1, 'one'); UPDATE notes SET body = 'uno' WHERE id = 1; INSERT INTO notes VALUES (2, 'two'); COMMIT",
    );
    expect(done).toMatchObject({ code: 0 });
    expect(done.output).toBe('BEGIN\nINSERT 0 1\nUPDATE 1\nINSERT 0 1\nCOMMIT\n');
    expect(
      await everywhere('SELECT id, body FROM notes ORDER BY id', (r) => r.length === 2),
    ).toEqual([
      { id: 1, body: 'uno' },
      { id: 2, body: 'two' },
    ]);
    expect((await group.psql('c', 'SELECT body FROM notes WHERE id = 1')).output).toBe('uno\n');
  }, 30_000);

  it('ROLLBACK leaves nothing anywhere; a failing statement aborts the block until ROLLBACK', async () => {
    const b = await session('b');
    await b.query('BEGIN');
    await b.query("INSERT INTO notes VALUES (3, 'never')");
    expect((await b.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 3 }]);
    await b.query('ROLLBACK');
    await b.query('BEGIN');
    await b.query("INSERT INTO notes VALUES (4, 'nor this')");
    expect(await b.query("INSERT INTO notes VALUES (1, 'duplicate')").catch(stateOf)).toBe('23505');
    expect(await b.query('SELECT 1').catch(stateOf)).toBe('25P02');
    expect((await b.query('COMMIT')).command).toBe('ROLLBACK');
    // The session goes on, outside any block.
    await b.query("INSERT INTO notes VALUES (5, 'after')");
    expect(await everywhere('SELECT id FROM notes ORDER BY id', (r) => r.length === 3)).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 5 },
    ]);
  }, 30_000);

  it('savepoints work inside: ROLLBACK TO SAVEPOINT undoes what came after it, also after an error', async () => {
    const c = await session('c');
    await c.query('BEGIN');
    await c.query("INSERT INTO notes VALUES (10, 'kept')");
    await c.query('SAVEPOINT s');
    await c.query("INSERT INTO notes VALUES (11, 'undone')");
    expect(await c.query("INSERT INTO notes VALUES (10, 'again')").catch(stateOf)).toBe('23505');
    await c.query('ROLLBACK TO SAVEPOINT s');
    await c.query("INSERT INTO notes VALUES (12, 'kept too')");
    await c.query('RELEASE SAVEPOINT s');
    expect((await c.query('COMMIT')).command).toBe('COMMIT');
    expect(
      await everywhere('SELECT id FROM notes WHERE id >= 10 ORDER BY id', (r) => r.length === 2),
    ).toEqual([{ id: 10 }, { id: 12 }]);
  }, 30_000);

  it('node-postgres: the client sees RETURNING and reads as it goes, and a read decides the next write', async () => {
    const a = await session('a');
    await a.query('BEGIN');
    const inserted = await a.query('INSERT INTO notes VALUES ($1, $2) RETURNING id, body', [
      20,
      'returned',
    ]);
    expect(inserted.rows).toEqual([{ id: 20, body: 'returned' }]);
    const { rows } = await a.query('SELECT balance FROM accounts WHERE id = $1', [1]);
    const balance = rows[0].balance as number;
    await a.query('UPDATE accounts SET balance = $1 WHERE id = 1', [balance - 10]);
    await a.query('UPDATE accounts SET balance = balance + 10 WHERE id = 2');
    expect((await a.query('SELECT sum(balance)::int AS total FROM accounts')).rows).toEqual([
      { total: 300 },
    ]);
    await a.query('COMMIT');
    expect(
      await everywhere('SELECT id, balance FROM accounts ORDER BY id', (r) =>
        JSON.stringify(r).includes('"balance":90'),
      ),
    ).toEqual([
      { id: 1, balance: 90 },
      { id: 2, balance: 110 },
      { id: 3, balance: 100 },
    ]);
  }, 30_000);

  it('a read-modify-write that another transaction overtook fails at COMMIT with 40001 everywhere alike; retried, it commits', async () => {
    const a = await session('a');
    const b = await session('b');
    await a.query('BEGIN');
    const seen = (await a.query('SELECT balance FROM accounts WHERE id = 3')).rows[0].balance;
    await a.query('UPDATE accounts SET balance = $1 WHERE id = 3', [seen - 50]);
    // Another client, on another node, reads the same balance and commits first.
    await b.query('BEGIN');
    const theirs = (await b.query('SELECT balance FROM accounts WHERE id = 3')).rows[0].balance;
    await b.query('UPDATE accounts SET balance = $1 WHERE id = 3', [theirs + 1]);
    await b.query('COMMIT');
    expect(await a.query('COMMIT').catch(stateOf)).toBe('40001');
    expect(
      await everywhere('SELECT balance FROM accounts WHERE id = 3', (r) => r[0]?.balance === 101),
    ).toEqual([{ balance: 101 }]);
    // Retried, as applications do: it sees the new balance and commits.
    await a.query('BEGIN');
    const now = (await a.query('SELECT balance FROM accounts WHERE id = 3')).rows[0].balance;
    await a.query('UPDATE accounts SET balance = $1 WHERE id = 3', [now - 50]);
    await a.query('COMMIT');
    expect(
      await everywhere('SELECT balance FROM accounts WHERE id = 3', (r) => r[0]?.balance === 51),
    ).toEqual([{ balance: 51 }]);
  }, 30_000);

  it('so does one whose read alone was overtaken (no write skew): what it read is compared too', async () => {
    const a = await session('a');
    const b = await session('c');
    await a.query('BEGIN');
    const read = (await a.query('SELECT balance FROM accounts WHERE id = 3')).rows[0].balance;
    await a.query('UPDATE accounts SET balance = $1 WHERE id = 1', [read]);
    await b.query('UPDATE accounts SET balance = balance + 1 WHERE id = 3');
    await everywhere('SELECT balance FROM accounts WHERE id = 3', (r) => r[0]?.balance === 52);
    expect(await a.query('COMMIT').catch(stateOf)).toBe('40001');
    expect(
      await everywhere('SELECT balance FROM accounts WHERE id = 1', (r) => r[0]?.balance === 90),
    ).toEqual([{ balance: 90 }]);
  }, 30_000);

  it('takes SELECT ... FOR UPDATE inside a block (knex forUpdate(), ORMs), with parameters too', async () => {
    const a = await session('a');
    await a.query('BEGIN');
    const locked = await a.query('SELECT balance FROM accounts WHERE id = $1 FOR UPDATE', [2]);
    await a.query('UPDATE accounts SET balance = $1 WHERE id = 2', [locked.rows[0].balance]);
    expect((await a.query('COMMIT')).command).toBe('COMMIT');
    // Outside a block it is still refused: row locks are not replicated.
    expect(
      await a.query('SELECT balance FROM accounts WHERE id = 2 FOR UPDATE').catch(stateOf),
    ).toBe('0A000');
  }, 30_000);

  it('a transaction holding a row the log needs does not hold up the log: it ends, with 40001', async () => {
    const a = await session('a');
    await a.query('BEGIN');
    await a.query('UPDATE accounts SET balance = balance WHERE id = 2'); // holds row 2 on node a
    const b = await session('b');
    await b.query('UPDATE accounts SET balance = balance + 5 WHERE id = 2');
    await everywhere('SELECT balance FROM accounts WHERE id = 2', (r) => r[0]?.balance === 115);
    expect(await a.query('SELECT 1').catch(stateOf)).toMatch(/40001|25P02/);
    await a.query('ROLLBACK');
    expect((await a.query('SELECT balance FROM accounts WHERE id = 2')).rows).toEqual([
      { balance: 115 },
    ]);
  }, 30_000);

  it("refuses a block that mixes replicated and this node's own tables, either way round", async () => {
    const a = await session('a');
    await a.query('BEGIN');
    await a.query('INSERT INTO accounts VALUES (30, 0)');
    expect(await a.query('INSERT INTO mine VALUES (1)').catch(stateOf)).toBe('0A000');
    expect((await a.query('COMMIT')).command).toBe('ROLLBACK');
    await a.query('BEGIN');
    await a.query('INSERT INTO mine VALUES (2)');
    expect(await a.query('INSERT INTO accounts VALUES (31, 0)').catch(stateOf)).toBe('0A000');
    expect((await a.query('COMMIT')).command).toBe('ROLLBACK');
    // A block of local tables alone runs locally, as before.
    await a.query('BEGIN');
    await a.query('INSERT INTO mine VALUES (3)');
    await a.query('COMMIT');
    expect(await group.rowsOn('a', 'SELECT id FROM mine')).toEqual([{ id: 3 }]);
    expect(await group.rowsOn('a', 'SELECT id FROM accounts WHERE id >= 30')).toEqual([]);
  }, 30_000);

  it('refuses at COMMIT a transaction larger than one log entry, applying nothing', async () => {
    const a = await session('a');
    await a.query('BEGIN');
    const body = 'x'.repeat(64 * 1024);
    for (let id = 100; id < 106; id++)
      await a.query('INSERT INTO notes VALUES ($1, $2)', [id, body]);
    const failed = await a.query('COMMIT').catch((error: pg.DatabaseError) => error);
    expect(failed).toMatchObject({
      code: '54000',
      message: expect.stringMatching(/nothing of it was applied/),
    });
    expect(await group.rowsOn('a', 'SELECT id FROM notes WHERE id >= 100')).toEqual([]);
  }, 30_000);

  it('a txn entry sent straight to the log with a statement outside replicated tables is refused', async () => {
    const forged = await group.ask(`synod.${group.group}.write`, {
      clientId: 'forger',
      seq: 1,
      command: {
        op: 'txn',
        statements: [{ sql: 'UPDATE synod.applied SET slot = 0', params: [], expect: 'x' }],
      },
    });
    expect(forged).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/not replicated/) },
    });
  }, 30_000);
});
