// withTotalOrder: a top-level LIMIT or OFFSET keeps the same rows whatever order a replica
// meets them in, because the rows themselves become the last sort keys.
import { describe, expect, it } from 'vitest';
import { loadParser } from '../src/classify.js';
import { withTotalOrder } from '../src/total-order.js';

await loadParser();

describe('withTotalOrder', () => {
  it('adds the rows of every relation read as the last sort keys of a LIMIT or OFFSET', () => {
    expect(withTotalOrder("SELECT id FROM jobs WHERE state = 'ready' LIMIT 1 FOR UPDATE")).toBe(
      `SELECT id FROM jobs WHERE state = 'ready'  ORDER BY ROW("jobs".*) LIMIT 1 FOR UPDATE`,
    );
    expect(
      withTotalOrder('SELECT * FROM a x JOIN s.b ON x.id = b.id ORDER BY x.n DESC OFFSET 2'),
    ).toBe(
      'SELECT * FROM a x JOIN s.b ON x.id = b.id ORDER BY x.n DESC , ROW("x".*), ROW("s"."b".*) OFFSET 2',
    );
    expect(withTotalOrder('SELECT k FROM (SELECT k FROM t LIMIT 5) q FETCH FIRST 1 ROW ONLY')).toBe(
      'SELECT k FROM (SELECT k FROM t LIMIT 5) q  ORDER BY ROW("q".*) FETCH FIRST 1 ROW ONLY',
    );
  });

  it('leaves alone what needs no order, or what it cannot name', () => {
    for (const sql of [
      'SELECT * FROM t WHERE k = 1',
      'UPDATE t SET v = 1',
      'SELECT 1 LIMIT 1',
      'SELECT * FROM generate_series(1, 3) LIMIT 1',
      'SELECT k FROM t UNION SELECT k FROM u LIMIT 1',
      'not sql at all',
    ])
      expect(withTotalOrder(sql)).toBe(sql);
  });
});
