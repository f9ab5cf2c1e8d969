// The command line never hangs or prints a stack trace on bad input: one `synod: ...` line on
// standard error (followed by the usage for a usage mistake), a non-zero status, within a
// second.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ended, nodeStartupMs, synod } from './run-synod.js';

/** Nothing listens here: a command that got as far as connecting would say so. */
const NO_NATS = ['--nats', 'nats://127.0.0.1:1'];

let dir: string;
let budgetMs: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synod-bad-input-'));
  budgetMs = 1_000 + nodeStartupMs();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A node start that is fine but for what `change` says. */
function nodeStart(change: Record<string, string | undefined>): string[] {
  const flags: Record<string, string | undefined> = {
    '--id': 'a',
    '--group': 'g',
    '--peers': 'a,b,c',
    '--data': join(dir, 'data'),
    ...change,
  };
  return [
    'node',
    'start',
    ...Object.entries(flags).flatMap(([flag, value]) => (value === undefined ? [] : [flag, value])),
    ...NO_NATS,
  ];
}

/** One error line, no stack frame, non-zero, in time: what every bad input must give. */
function expectCleanFailure(result: Ended, message: RegExp): void {
  expect(result.signal, 'it hung and was killed').toBeNull();
  expect(result.code).not.toBe(0);
  expect(result.ms).toBeLessThan(budgetMs);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr.split('\n').filter((line) => line.startsWith('synod: '))).toHaveLength(1);
  expect(result.stderr.split('\n')[0]).toMatch(message);
  expect(result.stderr).not.toMatch(/cannot connect/);
}

/** A failure that is not a usage mistake: the one line is all there is. */
function expectOneLine(result: Ended, message: RegExp): void {
  expectCleanFailure(result, message);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
}

describe('synod node start on bad input', () => {
  it('refuses a bad --group at once, and does not hang', async () => {
    const result = await synod(nodeStart({ '--group': 'no.dots' }));
    expectOneLine(result, /^synod: invalid group name "no\.dots"/);
    expect(result.code).toBe(1);
  });

  it('refuses a bad --id at once', async () => {
    const result = await synod(nodeStart({ '--id': 'a b', '--peers': 'a b,c' }));
    expectOneLine(result, /^synod: invalid node id "a b"/);
    expect(result.code).toBe(1);
  });

  it('refuses --peers that leave out --id', async () => {
    const result = await synod(nodeStart({ '--id': 'd' }));
    expectOneLine(result, /^synod: --peers a,b,c must include this node's --id d/);
    expect(result.code).toBe(2);
  });

  it('refuses a --data that is a file', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const result = await synod(nodeStart({ '--data': file }));
    expectOneLine(result, /^synod: --data .*a-file is not a directory/);
    const below = await synod(nodeStart({ '--data': join(file, 'below') }));
    expectOneLine(below, /^synod: --data .*a-file is not a directory/);
  });

  it('refuses a --sql-port out of range, and a --metrics-port out of range', async () => {
    for (const port of ['0', '65536', '-1', 'x']) {
      const result = await synod([...nodeStart({ '--machine': 'sql' }), `--sql-port=${port}`]);
      expectOneLine(result, /^synod: --sql-port must be a whole number from 1 to 65535/);
      expect(result.code).toBe(2);
    }
    const metrics = await synod(nodeStart({ '--metrics-port': '70000' }));
    expectOneLine(metrics, /^synod: --metrics-port must be a whole number from 0 to 65535/);
  });

  it('refuses a --sql-port in use before it starts PostgreSQL or connects', async () => {
    const port = await freePort();
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const result = await synod(nodeStart({ '--machine': 'sql', '--sql-port': String(port) }));
      expectOneLine(result, new RegExp(`^synod: --sql-port ${port}: .* is already in use`));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a missing --config file', async () => {
    const result = await synod(['node', 'start', '--config', join(dir, 'missing.json')]);
    expectOneLine(result, /^synod: cannot read --config .*missing\.json: no such file/);
  });

  it('refuses a malformed --config without quoting it (it may hold a password)', async () => {
    const file = join(dir, 'malformed.json');
    await writeFile(file, '{"id": "a", "natsPassword": hunter2}');
    const result = await synod(['node', 'start', '--config', file]);
    expectOneLine(result, /^synod: --config .*malformed\.json is not valid JSON/);
    expect(result.stderr).not.toMatch(/hunter2/);
  });

  it('refuses a --config with a key it does not know (a typo would be silently ignored)', async () => {
    const file = join(dir, 'typo.json');
    await writeFile(file, JSON.stringify({ id: 'a', natsPasword: 'x' }));
    const result = await synod(['node', 'start', '--config', file]);
    expectOneLine(result, /^synod: --config .* has unknown key\(s\) natsPasword/);
  });

  it('refuses an unknown flag with the usage, exit code 2', async () => {
    const result = await synod(nodeStart({ '--bogus': 'x' }));
    expectCleanFailure(result, /^synod: Unknown option '--bogus'/);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\n\nsynod — Paxos groups over NATS/);
  });
});

describe('client commands on bad input', () => {
  it.each([
    [['status', '--group', 'g', '--wait-ms', 'soon'], /^synod: --wait-ms must be a whole number/],
    [['kv', 'get', '--group', 'g', 'k', '--consistency', 'eventual'], /^synod: --consistency/],
    [['read', '--group', 'g', '--from=-1'], /^synod: --from must be a whole number/],
    [['kv', 'get', '--group', 'g', 'k', '--nats', 'http://x:1'], /^synod: --nats must be nats:/],
    [
      ['kv', 'get', '--group', 'g', 'k', '--tls-ca', '/nonexistent/ca.pem'],
      /--tls-ca \S+: no such file/,
    ],
  ])('%j fails before connecting', async (args, message) => {
    const result = await synod([...args, ...(args.includes('--nats') ? [] : NO_NATS)]);
    expectOneLine(result, message);
    expect(result.code).toBe(2);
  });

  it('never shows a password given in the URL, when the server cannot be reached', async () => {
    const result = await synod([
      'kv',
      'get',
      '--group',
      'g',
      'k',
      '--nats',
      'nats://me:hunter2@127.0.0.1:1',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd()).toBe(
      'synod: cannot connect to NATS at nats://127.0.0.1:1: connection refused',
    );
  });
});
