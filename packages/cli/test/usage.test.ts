import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SYNOD = fileURLToPath(new URL('../dist/main.js', import.meta.url));
/** A command that should fail fast; killed if it does not (e.g. it started a node after all). */
const synod = (...args: string[]) =>
  run(process.execPath, [SYNOD, ...args], { timeout: 15_000, killSignal: 'SIGKILL' }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );

describe('synod command line', () => {
  it.each([
    [],
    ['--help'],
    ['node', 'start', '--help'],
    ['kv', '--help'],
    ['paxos', '--help'],
    ['status', '--help'],
    ['write', '--help'],
    ['read', '--help'],
  ])('prints help for %j and exits 0', async (...args) => {
    const result = await synod(...args);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/synod/);
  });

  it('rejects an unknown command or flag with exit code 2 and the usage', async () => {
    for (const args of [['frobnicate'], ['kv', 'put', '--group', 'g', '--bogus']]) {
      const result = await synod(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/synod: .*\n\nsynod — Paxos groups over NATS/s);
    }
  });

  it('refuses bad node settings with exit code 2 before connecting', async () => {
    const base = [
      'node',
      'start',
      '--id',
      'a',
      '--group',
      'g',
      '--peers',
      'a',
      '--data',
      '/nonexistent/x',
    ];
    for (const [flag, value, message] of [
      ['--max-batch', '0', /--max-batch must be a whole number of at least 1/],
      ['--max-in-flight', '2.5', /--max-in-flight must be a whole number/],
      ['--machine', 'bogus', /--machine must be one of kv, log, sql/],
      ['--sql-port', '5433', /--sql-port needs --machine sql/],
    ] as const) {
      const result = await synod(...base, flag, value);
      expect(result.code, flag).toBe(2);
      expect(result.stderr, flag).toMatch(message);
    }
  });

  it('refuses table commands without what they need, with exit code 2', async () => {
    const missing = await synod('table', 'replicate', '--group', 'g');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/table replicate takes one TABLE/);
    const unknown = await synod('table', 'drop', '--group', 'g', 't');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown table operation drop/);
  });

  it('refuses a bad group name with a clear error before connecting', async () => {
    const result = await synod(
      'kv',
      'get',
      '--group',
      'no.dots',
      'k',
      '--nats',
      'nats://127.0.0.1:1',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/invalid group name "no\.dots"/);
  });

  it('says it cannot reach NATS, naming the server, instead of hanging', async () => {
    const result = await synod('kv', 'get', '--group', 'g', 'k', '--nats', 'nats://127.0.0.1:1');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  it('requires the node options', async () => {
    const result = await synod('node', 'start', '--id', 'a');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--id, --group, --peers and --data are required/);
  });
});
