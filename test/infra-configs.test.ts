// The nats-server configurations in infra/ must load: `nats-server -t` parses and checks one.
import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, freePort, startNatsServer } from '@synod/testkit';
import { connectNats } from '@synod/transport';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = join(import.meta.dirname, '..', 'infra', 'nats');
const configs = readdirSync(dir).filter((f) => f.endsWith('.conf'));
// secure.conf names certificate files that only exist once made: nats-security.test.ts makes
// them and runs it.
const checkable = configs.filter((f) => f !== 'secure.conf');

describe('infra/nats configurations', () => {
  it('has the single-server and the three cluster configurations', () => {
    expect(configs.sort()).toEqual([
      'auth.conf',
      'cluster-1.conf',
      'cluster-2.conf',
      'cluster-3.conf',
      'secure.conf',
      'single.conf',
    ]);
  });

  it.each(checkable)('%s is accepted by nats-server -t', async (file) => {
    const { stdout, stderr } = await run(findBinary('nats-server'), ['-t', '-c', join(dir, file)]);
    expect(`${stdout}${stderr}`).toMatch(/is valid/);
  });

  it('nats-server -t does reject a broken configuration (the check can fail)', async () => {
    const broken = join(import.meta.dirname, 'fixtures', 'broken-nats.conf');
    await expect(run(findBinary('nats-server'), ['-t', '-c', broken])).rejects.toThrow(
      /Parse error/,
    );
  });
});

describe('infra/nats/auth.conf permissions, on a real server', () => {
  it('lets clients request write and read, and keeps them off the acceptor subject', async () => {
    const server = await startNatsServer({ extraArgs: ['-c', join(dir, 'auth.conf')] });
    const node = await connectNats({
      servers: server.url,
      user: 'synod-node',
      pass: 'node-secret',
    });
    const client = await connectNats({
      servers: server.url,
      user: 'synod-client',
      pass: 'client-secret',
    });
    try {
      const reached: string[] = [];
      node.subscribe('synod.g.write', (m) =>
        node.publish(m.reply!, new TextEncoder().encode('ok')),
      );
      node.subscribe('synod.g.acceptor', (m) => void reached.push(m.subject));
      await node.flush();
      const reply = await client.request('synod.g.write', new TextEncoder().encode('{}'), {
        timeoutMs: 2_000,
      });
      expect(new TextDecoder().decode(reply.data)).toBe('ok');
      client.publish('synod.g.acceptor', new TextEncoder().encode('forged prepare'));
      await client.flush().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      expect(reached).toEqual([]);
    } finally {
      await client.close();
      await node.close();
      await server.stop();
    }
  });
});

describe('infra/local-cluster.sh', () => {
  it('starts a group that elects a leader, and stops every process on SIGTERM', async () => {
    const port = await freePort();
    const data = await mkdtemp(join(tmpdir(), 'synod-local-'));
    const script = spawn(
      'bash',
      [
        join(dir, '..', 'local-cluster.sh'),
        '--group',
        'localtest',
        '--port',
        String(port),
        '--data',
        join(data, 'd'),
      ],
      {
        stdio: 'ignore',
        detached: false,
      },
    );
    const transport = await (async () => {
      for (let i = 0; i < 50; i++) {
        try {
          return await connectNats({
            servers: `nats://127.0.0.1:${port}`,
            connection: { timeout: 500 },
          });
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error('the script did not start nats-server');
    })();
    try {
      let leaders = new Set<string | null>();
      for (let i = 0; i < 100 && !(leaders.size === 1 && !leaders.has(null)); i++) {
        const answer = await transport.gather('synod.localtest.status', new Uint8Array(0), {
          timeoutMs: 300,
          map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as { leader: string | null },
        });
        leaders =
          answer.replies.length === 3
            ? new Set(answer.replies.map((r) => r.leader))
            : new Set([null]);
        // Before the nodes subscribe, the gather ends at once with no responders: pause.
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(leaders.size).toBe(1);
      expect(leaders.has(null)).toBe(false);
    } finally {
      await transport.close();
      const exited = new Promise((resolve) => script.once('exit', resolve));
      script.kill('SIGTERM');
      await exited;
      await rm(data, { recursive: true, force: true });
    }
    await expect(
      connectNats({ servers: `nats://127.0.0.1:${port}`, connection: { timeout: 500 } }),
    ).rejects.toThrow(/cannot connect/);
  }, 30_000);
});
