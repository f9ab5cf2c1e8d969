import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SYNOD = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function runDemo(
  args: string[],
  env: NodeJS.ProcessEnv,
  onOutput?: (text: string, child: ReturnType<typeof spawn>) => void,
) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [SYNOD, 'demo', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += String(chunk);
      onOutput?.(out, child);
    });
    child.stderr.on('data', (chunk) => {
      out += String(chunk);
    });
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('synod demo', () => {
  it('runs three nodes on a nats-server it starts: writes, reads, paxos, status', async () => {
    const { code, out } = await runDemo(['--once'], {
      ...process.env,
      PATH: `/usr/sbin:${process.env.PATH}`,
    });
    expect(code).toBe(0);
    expect(out).toMatch(/nats-server on nats:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/get x \(strong\)\s+-> \{"found":true,"value":"30"\}/);
    expect(out).toMatch(/paxos\('leader', 'primary = node-b'\)\s+-> primary = node-a/);
    expect(out.match(/^[abc]\s+(leader|follower)/gm)).toHaveLength(3);
    // Seed 000 with SQL on three embedded PostgreSQL servers: every node ends with both rows,
    // and a write with now() never entered the log.
    expect(out).toMatch(/each with its own embedded PostgreSQL/);
    expect(out).toMatch(/UPDATE coordinates SET x = x \* 10 \(via b\) -> UPDATE 1/);
    expect(out).toMatch(/\(via a\) -> refused: ERROR 0A000: now\(\)/);
    for (const node of ['a', 'b', 'c'])
      expect(out).toMatch(
        new RegExp(`SELECT \\* FROM coordinates \\(on ${node}\\)\\s+-> \\(4,4\\) \\(30,3\\)`),
      );
    expect(out).toMatch(/stopped/);
  }, 60_000);

  it('says so and uses the in-memory transport when nats-server is not on PATH', async () => {
    const { code, out } = await runDemo(['--once'], { ...process.env, PATH: '/nonexistent' });
    expect(code).toBe(0);
    expect(out).toMatch(/nats-server is not on PATH: using the in-memory transport/);
    expect(out).toMatch(/get x \(strong\)\s+-> \{"found":true,"value":"30"\}/);
  }, 30_000);

  it('keeps running until Ctrl-C, then stops everything', async () => {
    let signalled = false;
    const { code, out } = await runDemo(
      [],
      { ...process.env, PATH: `/usr/sbin:${process.env.PATH}` },
      (text, child) => {
        if (!signalled && text.includes('running;')) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    );
    expect(signalled).toBe(true);
    expect(code).toBe(0);
    expect(out.trim().endsWith('stopped')).toBe(true);
  }, 30_000);
});
