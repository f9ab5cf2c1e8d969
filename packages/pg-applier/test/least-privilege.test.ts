// The database is the wall: front-end sessions and {"op":"query"} reads run as a role that may
// read replicated tables and not write them, and the log is applied as a role that owns them
// and nothing beyond the database. Every path a statement classifier cannot see (functions,
// procedures, DO blocks, triggers, rules, views, role switches, server programs and files)
// fails with PostgreSQL's own error; after each, the replicas are identical and every node
// still applies the log.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Command } from '@synod/protocol';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlMachine } from '../src/index.js';
import { SqlGroup } from './sql-group.js';

const peers = ['a', 'b', 'c'];
const PROOF = '/tmp/synod-least-privilege-proof';

describe('least privilege on every SQL path', () => {
  let group: SqlGroup;
  let nextId = 100;

  const connect = (id: string) => group.session(id);
  const psql = (id: string, command: string) => group.psql(id, command);

  /** Runs `sql` in a session of node `id` and gives PostgreSQL's SQLSTATE (undefined: it ran). */
  const sqlState = async (id: string, ...statements: string[]): Promise<string | undefined> => {
    const client = await connect(id);
    try {
      for (const statement of statements) await client.query(statement);
      return undefined;
    } catch (error) {
      return (error as { code?: string }).code ?? 'no code';
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  /** Rows of `t` on node `id`'s own database, as the node applied them. */
  const rowsOn = (id: string) => group.rowsOn(id, 'SELECT id, v FROM t ORDER BY id');

  /**
   * A write through the log, then every replica equal: the nodes still apply, and nothing
   * before changed one replica alone.
   */
  const stillOneTable = async (): Promise<void> => {
    const id = nextId++;
    expect(await sqlState('b', `INSERT INTO t VALUES (${id}, 'through the log')`)).toBeUndefined();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const rows = await Promise.all(peers.map(rowsOn));
      const mine = rows.map((r) => JSON.stringify(r));
      if (mine.every((r) => r === mine[0]) && mine[0]!.includes(`"id":${id}`)) return;
      if (Date.now() > deadline) expect(mine).toEqual([mine[0], mine[0], mine[0]]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    await rm(PROOF, { force: true });
    group = await SqlGroup.withFrontEnds('walls', peers, ['named']);
    // As a user would: the table made through the front end, then replicated.
    expect(await sqlState('a', 'CREATE TABLE t (id int PRIMARY KEY, v text)')).toBeUndefined();
    expect(await psql('a', "SELECT synod.replicate_table('t')")).toMatchObject({ code: 0 });
    await stillOneTable();
  }, 90_000);
  afterAll(async () => {
    await group?.stop();
    await rm(PROOF, { force: true });
  });

  it('a function, a procedure or a DO block that writes a replicated table fails with 42501 (psql)', async () => {
    const cases = [
      "CREATE FUNCTION f_sql() RETURNS void LANGUAGE sql AS $$ INSERT INTO t VALUES (1, 'sql function') $$; SELECT f_sql();",
      "CREATE FUNCTION f_pl() RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (2, 'plpgsql'); END $$; SELECT f_pl();",
      "CREATE PROCEDURE p() LANGUAGE sql AS $$ INSERT INTO t VALUES (3, 'procedure') $$; CALL p();",
      "DO $$ BEGIN INSERT INTO t VALUES (4, 'do block'); END $$;",
      "CREATE FUNCTION f_definer() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ INSERT INTO t VALUES (5, 'definer') $$; SELECT f_definer();",
      "DO $$ BEGIN EXECUTE 'UPDATE t SET v = ' || quote_literal('dynamic'); END $$;",
    ];
    for (const command of cases) {
      const { code, output } = await psql('a', command);
      expect(code, command).not.toBe(0);
      expect(output, command).toMatch(/permission denied for table t/);
      // What to do instead comes with it.
      expect(output, command).toMatch(
        /HINT: +a replicated table is written through the group's log only/,
      );
    }
    await stillOneTable();
  }, 60_000);

  it('a trigger or a rule on a local table that writes a replicated one fails with 42501', async () => {
    expect(
      await sqlState(
        'a',
        'CREATE TABLE local_trigger (id int)',
        "CREATE FUNCTION copy_over() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (NEW.id, 'trigger'); RETURN NEW; END $$",
        'CREATE TRIGGER over AFTER INSERT ON local_trigger FOR EACH ROW EXECUTE FUNCTION copy_over()',
      ),
    ).toBeUndefined();
    expect(await sqlState('a', 'INSERT INTO local_trigger VALUES (6)')).toBe('42501');
    // The guard sees a rule that names t and refuses it; made where it cannot see (inside a
    // DO block), the rule still acts with its owner's rights, and the client's end at t.
    expect(await sqlState('a', 'CREATE TABLE local_rule (id int)')).toBeUndefined();
    const rule =
      "CREATE RULE also AS ON INSERT TO local_rule DO ALSO INSERT INTO t VALUES (NEW.id, 'rule')";
    expect(await sqlState('a', rule)).toBe('0A000');
    expect(
      await sqlState('a', `DO $$ BEGIN EXECUTE ${pg.escapeLiteral(rule)}; END $$`),
    ).toBeUndefined();
    expect(await sqlState('a', 'INSERT INTO local_rule VALUES (7)')).toBe('42501');
    // A view over t is the client's: writing through it needs the client's right to write t.
    // (The guard refuses CREATE VIEW over t; a DO block hides it from the guard.)
    expect(await sqlState('a', 'CREATE VIEW tv AS SELECT * FROM t')).toBe('0A000');
    expect(
      await sqlState('a', "DO $$ BEGIN EXECUTE 'CREATE VIEW tv AS SELECT * FROM t'; END $$"),
    ).toBeUndefined();
    expect(await sqlState('a', "INSERT INTO tv VALUES (8, 'view')")).toBe('42501');
    await stillOneTable();
  }, 60_000);

  it("a table replicated from the start (--replicate) is the log's the moment a client creates it, even in a DO block", async () => {
    // As pg_paxos has it: the table made on every node, its writes then replicate.
    for (const id of peers)
      expect(
        await sqlState(id, "DO $$ BEGIN EXECUTE 'CREATE TABLE named (id int PRIMARY KEY)'; END $$"),
      ).toBeUndefined();
    expect(await sqlState('a', 'DO $$ BEGIN INSERT INTO named VALUES (1); END $$')).toBe('42501');
    expect(await sqlState('a', 'INSERT INTO named VALUES (2)')).toBeUndefined();
    const owner = async (id: string): Promise<unknown> => {
      const db = new pg.Client({ connectionString: group.url(id) });
      await db.connect();
      try {
        return (
          await db.query(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'named'",
          )
        ).rows;
      } finally {
        await db.end();
      }
    };
    expect(await owner('a')).toEqual([{ tableowner: group.nodes.get('a')!.machine.roles.apply }]);
  }, 30_000);

  it('the table, the bookkeeping and the roles are out of reach', async () => {
    const refused = [
      'ALTER TABLE t DISABLE TRIGGER ALL',
      'CREATE TRIGGER mine BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
      'UPDATE synod.applied SET slot = slot - 3',
      'DELETE FROM synod.sessions',
      'SELECT * FROM synod.replicated',
      'SET ROLE postgres',
      'SET SESSION AUTHORIZATION postgres',
      'CREATE EXTENSION IF NOT EXISTS file_fdw',
      'CREATE SCHEMA s_client',
    ];
    for (const statement of refused) {
      const state = await sqlState('a', statement);
      // The guard refuses some first (0A000, a DDL of a replicated table); PostgreSQL the rest.
      expect(['42501', '0A000'], statement).toContain(state);
    }
    await stillOneTable();
  }, 60_000);

  it('nothing reaches beyond the database: server programs and files', async () => {
    const refused = [
      `COPY (SELECT 1) TO PROGRAM 'touch ${PROOF}'`,
      `COPY t FROM PROGRAM 'touch ${PROOF}'`,
      "SELECT lo_import('/etc/hostname')",
      "SELECT pg_read_file('/etc/hostname')",
      `COPY (SELECT 1) TO '${PROOF}'`,
    ];
    for (const statement of refused) {
      const state = await sqlState('a', statement);
      expect(['42501', '0A000'], statement).toContain(state);
    }
    // The same through a NATS client's read.
    for (const sql of [
      `COPY (SELECT 1) TO PROGRAM 'touch ${PROOF}'`,
      "SELECT lo_import('/etc/hostname')",
    ]) {
      const answer = await group.ask(`synod.${group.group}.read`, {
        command: { op: 'query', sql },
        consistency: 'optimistic',
      });
      expect(answer.ok, sql).toBe(false);
    }
    expect(
      await sqlState(
        'a',
        "CREATE FUNCTION f_nats() RETURNS void LANGUAGE sql AS $$ INSERT INTO t VALUES (11, 'nats') $$",
      ),
    ).toBeUndefined();
    const sneaky = await group.ask(`synod.${group.group}.node.a.read`, {
      command: { op: 'query', sql: 'SELECT f_nats()' },
      consistency: 'optimistic',
    });
    expect(sneaky).toMatchObject({ ok: false });
    expect(JSON.stringify(sneaky), JSON.stringify(sneaky)).toMatch(/42501|permission denied/);
    expect(existsSync(PROOF)).toBe(false);
    await stillOneTable();
  }, 60_000);

  it('a log entry that is not a write of a replicated table runs on no replica', async () => {
    // A replica of its own (a database of the same server), fed what a forged entry carries.
    const admin = new pg.Client({ connectionString: group.url('a') });
    await admin.connect();
    await admin.query('CREATE DATABASE walls_forged');
    await admin.end();
    const url = group.url('a').replace(/\/[^/]*$/, '/walls_forged');
    const machine = await SqlMachine.open({
      connectionString: url,
      group: 'forged',
      replicated: [],
    });
    try {
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      await db.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
      await db.end();
      const replicate = await machine.admit({ op: 'replicate', table: 't' });
      const command = (replicate as { command: Command }).command;
      await machine.apply([{ slot: 0, writes: [{ clientId: 'op', seq: 0, command }] }]);
      const forged = (seq: number, sql: string) => ({
        clientId: 'forger',
        seq,
        command: { op: 'sql', sql },
      });
      const outcomes = await machine.apply([
        {
          slot: 1,
          writes: [
            forged(1, `COPY (SELECT 1) TO PROGRAM 'touch ${PROOF}'`),
            forged(2, 'UPDATE synod.applied SET slot = 0'),
            forged(3, "INSERT INTO t VALUES (9, 'x'); UPDATE synod.applied SET slot = 0"),
            forged(4, "INSERT INTO t VALUES (10, 'a real write')"),
          ],
        },
      ]);
      expect(outcomes.get(1)!.map((r) => r.ok)).toEqual([false, false, false, true]);
      expect(existsSync(PROOF)).toBe(false);
      expect(await machine.appliedThrough()).toBe(1);
      const rows = await machine.read({ op: 'query', sql: 'SELECT id FROM t ORDER BY id' });
      expect(rows).toMatchObject({ rows: [{ id: 10 }] });
    } finally {
      await machine.close();
    }
  }, 30_000);
});
