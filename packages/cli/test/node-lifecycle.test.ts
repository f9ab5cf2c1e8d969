// How `synod node start` ends once it has connected: a failure while starting, a stop signal,
// and the node stopping itself (exit status 70) all close what was started and exit promptly.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, waitFor } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeStartupMs, startSynod, synod } from './run-synod.js';

let nats: NatsServer;
let dir: string;
let budgetMs: number;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), 'synod-lifecycle-'));
  budgetMs = 1_000 + nodeStartupMs();
});

afterAll(async () => {
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1) ?? '';

function startNode(group: string, data: string, ...more: string[]) {
  return startSynod(
    ['node', 'start', '--id', 'a', '--group', group, '--peers', 'a', '--data', data]
      .concat(['--nats', nats.url])
      .concat(more),
    { killAfterMs: 20_000 },
  );
}

describe('synod node start, once connected', () => {
  it('fails cleanly when the node cannot start: one line, no hang, the connection closed', async () => {
    const data = join(dir, 'damaged');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'g1.snapshot'), 'not a snapshot');
    const result = await startNode('g1', data).ended;
    expect(result.signal, 'it hung and was killed').toBeNull();
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(budgetMs + 1_000);
    expect(lastLine(result.stderr)).toMatch(/^synod: .*g1\.snapshot/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('stops on the first SIGTERM, with status 0', async () => {
    const node = startNode('g2', join(dir, 'g2'));
    await waitFor('the node to start', async () => node.stderr().includes('node started'));
    const signalled = performance.now();
    node.child.kill('SIGTERM');
    const result = await node.ended;
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(1_000);
  });

  it('exits with status 70 when the node stops itself', async () => {
    const data = join(dir, 'g3');
    const node = startNode('g3', data, '--snapshot-every', '1');
    await waitFor('the node to start', async () => node.stderr().includes('node started'));
    const put = (key: string) =>
      synod(['kv', 'put', '--group', 'g3', key, 'v', '--nats', nats.url]);
    expect((await put('k1')).code).toBe(0);
    // The node can no longer write its next snapshot: it cannot go on, and says so.
    await rm(data, { recursive: true, force: true });
    await put('k2');
    const result = await node.ended;
    expect(result.signal, 'it hung and was killed').toBeNull();
    expect(result.code).toBe(70);
    expect(lastLine(result.stderr)).toMatch(/^synod: the node stopped itself: /);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
