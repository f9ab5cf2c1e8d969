// Real processes under faults: a nats-server and three `synod node start` processes.
// Minority down, majority down (NO_QUORUM, then recovery), the nats-server restarted, and the
// leader paused with SIGSTOP beyond the election timeout, checked for one leader afterwards
// and a linearizable client history.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SynodClient } from '@synod/client';
import { checkOperations, type KvInput, kvModel, type Operation } from '@synod/sim';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SYNOD = createRequire(import.meta.url)
  .resolve('@synod/cli/package.json')
  .replace(/package\.json$/, 'dist/main.js');
const peers = ['a', 'b', 'c'];

interface Status {
  readonly node: string;
  readonly leader: string | null;
}

describe('synod node processes under faults', () => {
  let server: NatsServer;
  let dir: string;
  let transport: Transport;
  const processes = new Map<string, ChildProcess>();

  const startNode = (id: string): void => {
    processes.set(
      id,
      spawn(
        process.execPath,
        [
          SYNOD,
          'node',
          'start',
          '--id',
          id,
          '--group',
          'faults',
          '--peers',
          peers.join(','),
          '--nats',
          server.url,
          '--data',
          join(dir, id),
        ],
        {
          stdio: 'ignore',
          env: { ...process.env, LOG_LEVEL: 'error' },
        },
      ),
    );
  };
  const kill = async (id: string): Promise<void> => {
    const child = processes.get(id)!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  const status = async (): Promise<Status[]> =>
    (
      await transport.gather('synod.faults.status', new Uint8Array(0), {
        timeoutMs: 300,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
      })
    ).replies.slice();
  const until = async (
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 15_000,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const oneLeader = async (count = 3): Promise<string | undefined> => {
    const nodes = await status();
    const leaders = new Set(nodes.map((n) => n.leader));
    return nodes.length === count && leaders.size === 1 && !leaders.has(null)
      ? nodes[0]!.leader!
      : undefined;
  };
  const write = (i: number) =>
    new SynodClient({
      transport,
      group: 'faults',
      clientId: `w${i}`,
      timeoutMs: 1_000,
      attempts: 20,
    }).put(`k${i}`, `v${i}`);

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-faults-'));
    transport = await connectNats({ servers: server.url, name: 'test' });
    for (const id of peers) startNode(id);
    await until('one leader', async () => (await oneLeader()) !== undefined, 20_000);
  }, 30_000);
  afterAll(async () => {
    for (const child of processes.values()) child.kill('SIGKILL');
    await transport.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps taking writes with a minority down', async () => {
    const leader = (await oneLeader())!;
    const follower = peers.find((p) => p !== leader)!;
    await kill(follower);
    expect(await write(1)).toMatchObject({ result: null });
    startNode(follower);
    await until('the follower back', async () => (await oneLeader()) !== undefined);
  }, 30_000);

  it('answers NO_QUORUM within the timeout with a majority down, and writes again when it returns', async () => {
    const leader = (await oneLeader())!;
    const survivor = peers.find((p) => p !== leader)!;
    const down = peers.filter((p) => p !== survivor);
    for (const id of down) await kill(id);
    const started = Date.now();
    const reply = await transport.request(
      'synod.faults.write',
      new TextEncoder().encode(
        '{"clientId":"q","seq":1,"command":{"op":"put","key":"q","value":"1"}}',
      ),
      { timeoutMs: 10_000 },
    );
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({
      ok: false,
      error: { code: 'NO_QUORUM' },
    });
    expect(Date.now() - started).toBeLessThan(8_000);
    for (const id of down) startNode(id);
    await until('a leader again', async () => (await oneLeader()) !== undefined, 20_000);
    expect(await write(2)).toMatchObject({ result: null });
  }, 60_000);

  it('resumes after the nats-server is killed and restarted', async () => {
    await server.kill('SIGKILL');
    await server.restart();
    await until('nodes reconnected and led', async () => (await oneLeader()) !== undefined, 20_000);
    expect(await write(3)).toMatchObject({ result: null });
  }, 60_000);

  it('has one leader after the leader is paused past the election timeout, and a linearizable history', async () => {
    const history: Operation<KvInput, string>[] = [];
    let stop = false;
    const clients = Array.from(
      { length: 3 },
      (_, i) =>
        new SynodClient({
          transport,
          group: 'faults',
          clientId: `lin${i}`,
          timeoutMs: 1_000,
          attempts: 40,
        }),
    );
    const work = clients.map(async (client, i) => {
      for (let n = 0; !stop; n++) {
        const key = `x${n % 2}`;
        const call = performance.now();
        if (n % 2 === 0) {
          const value = `${i}.${n}`;
          try {
            await client.put(key, value);
            history.push({
              clientId: i,
              input: { op: 'put', key, value },
              call,
              output: '',
              return: performance.now(),
            });
          } catch {
            history.push({
              clientId: i,
              input: { op: 'put', key, value },
              call,
              output: undefined,
              return: Number.POSITIVE_INFINITY,
            });
            return;
          }
        } else {
          const answer = await client.get(key, 'strong').catch(() => undefined);
          if (answer === undefined) return;
          const result = answer.result as { found: boolean; value?: string };
          history.push({
            clientId: `r${i}.${n}`,
            input: { op: 'get', key },
            call,
            output: result.found ? result.value! : '',
            return: performance.now(),
          });
        }
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    const leader = (await oneLeader())!;
    const paused = processes.get(leader)!;
    paused.kill('SIGSTOP');
    await until('a new leader among the others', async () => {
      const nodes = await status();
      return nodes.length === 2 && nodes.every((n) => n.leader !== null && n.leader !== leader);
    });
    await new Promise((r) => setTimeout(r, 500));
    paused.kill('SIGCONT');
    await until('one leader for all three again', async () => (await oneLeader()) !== undefined);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(work);
    expect(
      history.filter((op) => op.input.op === 'put' && op.return !== Number.POSITIVE_INFINITY)
        .length,
    ).toBeGreaterThan(10);
    expect(checkOperations(kvModel, history, { timeoutMs: 10_000 }).verdict).toBe('linearizable');
  }, 60_000);
});
