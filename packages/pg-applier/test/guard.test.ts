// The determinism guard: statements classified by PostgreSQL's own grammar, and the rules
// that keep replicas identical (README "Rules"). Every case could be classified otherwise.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  classify,
  DeterminismError,
  type GuardRule,
  loadParser,
  route,
  SqlSyntaxError,
} from '../src/index.js';

const replicated = ['coordinates', 'audit.events'];
const go = (sql: string, allowMultipleStatements = false) =>
  route(sql, { replicated, allowMultipleStatements });

function refused(sql: string, rule: GuardRule, message: RegExp, allow = false): void {
  let error: unknown;
  try {
    go(sql, allow);
  } catch (caught) {
    error = caught;
  }
  expect(error, sql).toBeInstanceOf(DeterminismError);
  expect((error as DeterminismError).rule, sql).toBe(rule);
  expect((error as DeterminismError).sqlState).toBe('0A000');
  expect((error as Error).message, sql).toMatch(message);
}

beforeAll(() => loadParser());

describe('classify', () => {
  it('tells reads, writes, DDL, transactions and session commands apart', () => {
    const kind = (sql: string) => classify(sql).map((s) => s.kind);
    expect(kind('SELECT * FROM coordinates WHERE x > 1')).toEqual(['read']);
    expect(kind('INSERT INTO coordinates VALUES (3, 3)')).toEqual(['write']);
    expect(kind('UPDATE coordinates SET x = x * 10')).toEqual(['write']);
    expect(kind('DELETE FROM coordinates')).toEqual(['write']);
    expect(kind('TRUNCATE coordinates')).toEqual(['write']);
    expect(
      kind('WITH gone AS (DELETE FROM coordinates RETURNING *) SELECT count(*) FROM gone'),
    ).toEqual(['write']);
    expect(kind('SELECT * FROM coordinates FOR UPDATE')).toEqual(['write']);
    expect(kind("SELECT nextval('ids')")).toEqual(['write']);
    expect(kind('CREATE TABLE t (a int)')).toEqual(['ddl']);
    expect(kind('ALTER TABLE coordinates ADD COLUMN z int')).toEqual(['ddl']);
    expect(kind('BEGIN; COMMIT')).toEqual(['transaction', 'transaction']);
    expect(kind("SET synod.consistency_model TO 'optimistic'")).toEqual(['session']);
    expect(kind('EXPLAIN DELETE FROM coordinates')).toEqual(['read']);
    expect(kind('EXPLAIN ANALYZE DELETE FROM coordinates')).toEqual(['write']);
    expect(kind('VACUUM coordinates')).toEqual(['utility']);
  });

  it('names the tables read and written, without CTE names, and the functions called', () => {
    const [s] = classify(
      'WITH recent AS (SELECT * FROM audit.events) INSERT INTO coordinates SELECT x, now() FROM recent JOIN c2 USING (x)',
    );
    expect(s!.writes).toEqual(['coordinates']);
    expect([...s!.tables].sort()).toEqual(['audit.events', 'c2', 'coordinates']);
    expect(s!.functions).toEqual(['now']);
    expect(s!.volatile).toEqual(['now']);
  });

  it('sees SQL value functions (CURRENT_TIMESTAMP is not a function call in the grammar)', () => {
    const [s] = classify(
      'UPDATE coordinates SET y = extract(epoch FROM CURRENT_TIMESTAMP), who = current_user',
    );
    expect(s!.volatile).toEqual(['current_timestamp', 'current_user']);
    expect(s!.functions).toContain('extract');
  });

  it('refuses invalid SQL with SQLSTATE 42601 and where it stopped', () => {
    expect(() => classify('INSERT INTO coordinates VALUES (1,')).toThrow(SqlSyntaxError);
    try {
      classify('SELEC 1');
    } catch (error) {
      expect((error as SqlSyntaxError).sqlState).toBe('42601');
      expect((error as SqlSyntaxError).position).toBe(1);
      expect((error as Error).message).toMatch(/syntax error at or near "SELEC"/);
    }
  });
});

describe('route (the determinism guard)', () => {
  it('replicates writes of replicated tables, in either spelling of the schema', () => {
    expect(go('INSERT INTO coordinates VALUES (3, 3)')).toEqual({
      kind: 'replicate',
      tables: ['coordinates'],
    });
    expect(go('UPDATE public.coordinates SET x = x * 10')).toEqual({
      kind: 'replicate',
      tables: ['coordinates'],
    });
    expect(go('DELETE FROM audit.events WHERE id = $1')).toEqual({
      kind: 'replicate',
      tables: ['audit.events'],
    });
    expect(go('TRUNCATE coordinates')).toEqual({ kind: 'replicate', tables: ['coordinates'] });
  });

  it('reads replicated tables under the consistency model, and runs the rest locally', () => {
    expect(go('SELECT * FROM coordinates, other')).toEqual({
      kind: 'read',
      replicated: true,
      tables: ['coordinates', 'other'],
    });
    expect(go('SELECT now()')).toEqual({ kind: 'read', replicated: false, tables: [] });
    expect(go('INSERT INTO scratch VALUES (random())')).toEqual({ kind: 'local' });
    expect(go('CREATE TABLE scratch (a int)')).toEqual({ kind: 'local' });
    // Each node creates a replicated table itself (pg_paxos's setup); changing it is refused.
    expect(go('CREATE TABLE coordinates (x int PRIMARY KEY, y int)')).toEqual({ kind: 'local' });
    expect(go("SET synod.consistency_model TO 'optimistic'")).toEqual({ kind: 'session' });
    expect(go('BEGIN')).toEqual({ kind: 'transaction' });
    expect(go('  ')).toEqual({ kind: 'empty' });
  });

  it('refuses a volatile function in a replicated write, naming it', () => {
    refused('INSERT INTO coordinates VALUES (now(), 1)', 'VOLATILE_FUNCTION', /now\(\)/);
    refused('UPDATE coordinates SET y = random()', 'VOLATILE_FUNCTION', /random\(\)/);
    refused(
      "INSERT INTO coordinates VALUES (nextval('ids'), 1)",
      'VOLATILE_FUNCTION',
      /nextval\(\)/,
    );
    refused(
      'INSERT INTO coordinates VALUES (CURRENT_TIMESTAMP, 1)',
      'VOLATILE_FUNCTION',
      /current_timestamp\(\)/,
    );
    refused(
      'UPDATE coordinates SET id = gen_random_uuid()',
      'VOLATILE_FUNCTION',
      /gen_random_uuid\(\)/,
    );
    refused(
      'DELETE FROM coordinates WHERE t < clock_timestamp()',
      'VOLATILE_FUNCTION',
      /clock_timestamp\(\)/,
    );
  });

  it('refuses a replicated write that reads or writes a table that is not replicated', () => {
    refused('INSERT INTO coordinates SELECT * FROM scratch', 'MIXED_TABLES', /"scratch"/);
    refused('UPDATE coordinates SET x = s.x FROM scratch s', 'MIXED_TABLES', /"scratch"/);
  });

  it('refuses DDL and utilities on a replicated table, and locking reads of one', () => {
    refused('ALTER TABLE coordinates ADD COLUMN z int', 'DDL_ON_REPLICATED_TABLE', /"coordinates"/);
    refused('DROP TABLE public.coordinates', 'DDL_ON_REPLICATED_TABLE', /"coordinates"/);
    refused('CREATE INDEX ON audit.events (id)', 'DDL_ON_REPLICATED_TABLE', /"audit.events"/);
    refused("COPY coordinates FROM '/tmp/x'", 'DDL_ON_REPLICATED_TABLE', /bypass the log/);
    refused('SELECT * FROM coordinates FOR UPDATE', 'LOCKING_READ', /row locks/);
  });

  it('refuses several statements on replicated tables in one string unless allowed', () => {
    refused(
      'INSERT INTO coordinates VALUES (1, 1); DELETE FROM coordinates',
      'MULTIPLE_STATEMENTS',
      /2 statements/,
    );
    expect(go('INSERT INTO coordinates VALUES (1, 1); DELETE FROM audit.events', true)).toEqual({
      kind: 'replicate',
      tables: ['coordinates', 'audit.events'],
    });
    refused(
      'INSERT INTO coordinates VALUES (1, 1); SELECT 1 FROM coordinates',
      'MULTIPLE_STATEMENTS',
      /all be writes/,
      true,
    );
    expect(go('SELECT 1; SELECT 2')).toEqual({ kind: 'local' });
  });

  it('routes COPY over the connection: FROM STDIN of a replicated table through the log, TO STDOUT as a read', () => {
    expect(go('COPY coordinates (x, y) FROM STDIN WITH (FORMAT csv)')).toEqual({
      kind: 'replicate',
      tables: ['coordinates'],
      copy: { direction: 'in', binary: false, table: 'coordinates', columns: ['x', 'y'] },
    });
    expect(go('COPY audit.events TO STDOUT')).toEqual({
      kind: 'read',
      replicated: true,
      tables: ['audit.events'],
      copy: { direction: 'out', binary: false, table: 'audit.events' },
    });
    expect(go('COPY scratch FROM STDIN BINARY')).toEqual({
      kind: 'local',
      copy: { direction: 'in', binary: true, table: 'scratch' },
    });
    refused('COPY coordinates FROM STDIN WHERE x > random()', 'VOLATILE_FUNCTION', /random\(\)/);
    refused("COPY coordinates FROM PROGRAM 'cat'", 'DDL_ON_REPLICATED_TABLE', /bypass the log/);
    expect(() => go('COPY coordinates FROM STDIN BINARY')).toThrow(/binary format/);
    expect(() => go('COPY scratch FROM STDIN; SELECT 1')).toThrow(/only statement/);
  });
});
