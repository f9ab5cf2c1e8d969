// Real OS processes: a nats-server and three `synod node start` processes. The leader is
// killed with SIGKILL under load; a new leader takes over, no acknowledged write is lost or
// applied twice, the killed node restarts from its data directory and catches up, and every
// node ends with the same state.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SynodClient } from '@synod/client';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SYNOD = createRequire(import.meta.url)
  .resolve('@synod/cli/package.json')
  .replace(/package\.json$/, 'dist/main.js');
const run = promisify(execFile);
const peers = ['a', 'b', 'c'];

interface Status {
  readonly node: string;
  readonly leader: string | null;
  readonly appliedThrough: number;
  readonly stateDigest: string;
  readonly pid: number;
}

describe('synod node processes', () => {
  let server: NatsServer;
  let dir: string;
  let transport: Transport;
  const processes = new Map<string, ChildProcess>();

  const startNode = (id: string): void => {
    const child = spawn(
      process.execPath,
      [
        SYNOD,
        'node',
        'start',
        '--id',
        id,
        '--group',
        'mokka',
        '--peers',
        peers.join(','),
        '--nats',
        server.url,
        '--data',
        join(dir, id),
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LOG_LEVEL: 'warn' },
      },
    );
    processes.set(id, child);
  };
  const status = async (): Promise<Status[]> => {
    const result = await transport.gather('synod.mokka.status', new Uint8Array(0), {
      timeoutMs: 300,
      map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
    });
    return [...result.replies].sort((x, y) => (x.node < y.node ? -1 : 1));
  };
  const until = async (
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 15_000,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const agreedLeader = async (): Promise<Status | undefined> => {
    const nodes = await status();
    const leaders = new Set(nodes.map((n) => n.leader));
    return nodes.length >= 2 && leaders.size === 1 && !leaders.has(null)
      ? nodes.find((n) => n.node === nodes[0]!.leader)
      : undefined;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-procs-'));
    transport = await connectNats({ servers: server.url, name: 'test' });
    for (const id of peers) startNode(id);
    await until(
      'a leader all nodes agree on',
      async () => (await agreedLeader()) !== undefined && (await status()).length === 3,
    );
  }, 30_000);
  afterAll(async () => {
    for (const child of processes.values()) child.kill('SIGKILL');
    await transport.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the synod CLI: kv put and get, paxos, status', async () => {
    const synod = (...args: string[]) =>
      run(process.execPath, [SYNOD, ...args, '--group', 'mokka', '--nats', server.url]);
    expect((await synod('kv', 'put', 'coordinates', '3,3')).stdout).toMatch(/^OK \(slot \d+\)/);
    expect((await synod('kv', 'get', 'coordinates')).stdout.trim()).toBe('3,3');
    expect((await synod('paxos', 'leader', 'primary = node-a')).stdout.trim()).toBe(
      'primary = node-a',
    );
    expect((await synod('paxos', 'leader', 'primary = node-b')).stdout.trim()).toBe(
      'primary = node-a',
    );
    const table = JSON.parse((await synod('status', '--json')).stdout) as Status[];
    expect(table.map((n) => n.node)).toEqual(peers);
  });

  it('survives SIGKILL of the leader under load: nothing acknowledged is lost or applied twice, all states end identical', async () => {
    const clients = Array.from(
      { length: 4 },
      (_, i) =>
        new SynodClient({
          transport,
          group: 'mokka',
          clientId: `load-${i}`,
          timeoutMs: 1_000,
          attempts: 30,
        }),
    );
    const acked = clients.map(() => 0);
    let stop = false;
    const load = clients.map(async (client, i) => {
      // Each client counts up its own key with cas: applied twice, a write would not swap.
      while (!stop) {
        const answer = await client.cas(
          `counter-${i}`,
          acked[i] === 0 ? null : String(acked[i]),
          String(acked[i]! + 1),
        );
        expect(answer.result, `client ${i} write ${acked[i]! + 1}`).toEqual({ swapped: true });
        acked[i]! += 1;
      }
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const leader = (await agreedLeader())!;
    processes.get(leader.node)!.kill('SIGKILL');
    await until('a new leader', async () => {
      const next = await agreedLeader();
      return next !== undefined && next.node !== leader.node;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await Promise.all(load);
    expect(acked.every((n) => n > 5)).toBe(true);

    startNode(leader.node);
    const reader = new SynodClient({ transport, group: 'mokka', clientId: 'reader' });
    for (const [i, count] of acked.entries()) {
      const answer = await reader.get(`counter-${i}`, 'strong');
      expect(answer.result).toEqual({ found: true, value: String(count) });
    }
    await until(
      'every node applied the same state',
      async () => {
        const nodes = await status();
        return (
          nodes.length === 3 &&
          new Set(nodes.map((n) => n.stateDigest)).size === 1 &&
          new Set(nodes.map((n) => n.appliedThrough)).size === 1
        );
      },
      20_000,
    );
  }, 60_000);
});
