// Real histories from outside the project (Porcupine's test data; Jepsen runs against etcd)
// with known verdicts: every verdict must match, each within a bounded time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkOperations,
  kvModel,
  kvModelUnsplit,
  parseJepsenEtcdLog,
  parseKvLog,
  registerModel,
} from '../../src/index.js';

// Vendored with its licence: packages/sim/testdata/linearizability/README.md.
const DATA = join(import.meta.dirname, '..', '..', 'testdata', 'linearizability');
const TIME_LIMIT_MS = 20_000;

function expected(file: string): Map<string, string> {
  return new Map(
    readFileSync(join(DATA, file), 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((parts): parts is [string, string] => parts.length === 2)
      .map(([name, verdict]) => [name, verdict]),
  );
}

const etcdVerdicts = expected('jepsen-etcd/EXPECTED.txt');
const etcdLogs = readdirSync(join(DATA, 'jepsen-etcd'))
  .filter((f) => f.endsWith('.log'))
  .sort();
const kvVerdicts = expected('kv/EXPECTED.txt');

describe('Jepsen etcd register histories', () => {
  it('has the 103 logs and 102 verdicts the README promises', () => {
    expect(etcdLogs).toHaveLength(103);
    expect(etcdVerdicts.size).toBe(102);
    expect(new Set(etcdVerdicts.values())).toEqual(new Set(['linearizable', 'not-linearizable']));
  });

  it.each(etcdLogs)('%s gets its known verdict', (file) => {
    const history = parseJepsenEtcdLog(readFileSync(join(DATA, 'jepsen-etcd', file), 'utf8'));
    const result = checkOperations(registerModel, history, { timeoutMs: TIME_LIMIT_MS });
    expect(result.verdict).not.toBe('unknown');
    if (etcdVerdicts.has(file)) expect(result.verdict).toBe(etcdVerdicts.get(file));
  });
});

describe('key-value histories', () => {
  it.each([...kvVerdicts.keys()])('%s gets its known verdict, split by key', (file) => {
    const history = parseKvLog(readFileSync(join(DATA, 'kv', file), 'utf8'));
    expect(history.length).toBeGreaterThan(0);
    const result = checkOperations(kvModel, history, { timeoutMs: TIME_LIMIT_MS });
    expect(result.verdict).toBe(kvVerdicts.get(file));
  });

  it.each(['c01-ok.txt', 'c01-bad.txt', 'c10-ok.txt', 'c10-bad.txt'])(
    '%s gets the same verdict without splitting',
    (file) => {
      const history = parseKvLog(readFileSync(join(DATA, 'kv', file), 'utf8'));
      expect(checkOperations(kvModelUnsplit, history, { timeoutMs: TIME_LIMIT_MS }).verdict).toBe(
        kvVerdicts.get(file),
      );
    },
  );
});
