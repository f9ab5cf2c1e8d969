// Group membership with real parts (pg_paxos's paxos_join_group): node runtimes over a real
// nats-server. A fourth node joins a three-node group and catches up from a snapshot; then a
// founder leaves, and the group keeps deciding with two of the three remaining members down
// to one... which only works if quorums really moved to the new members.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, waitFor, whileLeaderMoves } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRuntime } from '../src/index.js';

const founders = ['a', 'b', 'c'];
const fast = { heartbeatMs: 30, electionMinMs: 100, electionMaxMs: 200, phaseTimeoutMs: 150 };

describe('group membership over NATS', () => {
  let server: NatsServer;
  let dir: string;
  let client: Transport;
  const runtimes = new Map<string, { runtime: NodeRuntime; transport: Transport }>();
  const expected = new Map<string, string>();
  let seq = 0;

  const startNode = async (nodeId: string, joining = false): Promise<NodeRuntime> => {
    const transport = await connectNats({ servers: server.url, name: nodeId });
    const runtime = await NodeRuntime.start({
      group: 'mokka',
      nodeId,
      peers: founders,
      ...(joining ? { join: true } : {}),
      transport,
      dataDir: join(dir, nodeId),
      leaderTiming: fast,
      requestTimeoutMs: 3_000,
      snapshotEvery: 20,
      retainSlots: 5,
    });
    runtimes.set(nodeId, { runtime, transport });
    return runtime;
  };
  const stopNode = async (nodeId: string): Promise<void> => {
    const entry = runtimes.get(nodeId)!;
    runtimes.delete(nodeId);
    await entry.runtime.stop();
    await entry.transport.close();
  };
  const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> => {
    const reply = await client.request(
      `synod.mokka.${subject}`,
      new TextEncoder().encode(JSON.stringify(body)),
      { timeoutMs: 10_000 },
    );
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  };
  const putMany = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      seq++;
      const key = `k${seq}`;
      const value = `v${seq}`;
      const write = { clientId: 'writer', seq, command: { op: 'put', key, value } };
      const answer = await whileLeaderMoves(() => ask('write', write));
      expect(answer, `put ${seq}`).toMatchObject({ ok: true });
      expected.set(key, value);
    }
  };
  const members = (runtime: NodeRuntime): string => runtime.status().members.join(',');
  const nodes = (): NodeRuntime[] => [...runtimes.values()].map((e) => e.runtime);

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-membership-'));
    for (const nodeId of founders) await startNode(nodeId);
    client = await connectNats({ servers: server.url, name: 'client' });
  });
  afterAll(async () => {
    await client?.close();
    for (const nodeId of [...runtimes.keys()]) await stopNode(nodeId);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a node started to join is added by the leader, and catches up on everything before it', async () => {
    await putMany(60);
    const d = await startNode('d', true);
    await waitFor(
      'every node lists d as a member, and d has applied what the others have',
      async () => {
        const all = nodes();
        const leader = all.find((r) => r.leader === r.nodeId);
        return (
          leader !== undefined &&
          all.every((r) => members(r) === 'a,b,c,d') &&
          d.appliedThrough === leader.appliedThrough &&
          d.status().stateDigest === leader.status().stateDigest
        );
      },
      30_000,
      50,
    );
    // It joined after its peers compacted: it could only have caught up from a snapshot.
    expect(d.status().snapshotsInstalled).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('bad membership requests get a clear error and change nothing', async () => {
    const bad = await whileLeaderMoves(() =>
      ask('write', { clientId: 'op', seq: 1, command: { op: 'join', node: 'not a name' } }),
    );
    expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const again = await whileLeaderMoves(() =>
      ask('write', { clientId: 'op', seq: 2, command: { op: 'join', node: 'd' } }),
    );
    expect(again).toMatchObject({ ok: true, result: { members: ['a', 'b', 'c', 'd'] } });
    for (const runtime of nodes()) expect(members(runtime)).toBe('a,b,c,d');
  }, 30_000);

  it('after a founder leaves, the remaining members decide: writes go on with a and b down', async () => {
    const left = await whileLeaderMoves(() =>
      ask('write', { clientId: 'op', seq: 3, command: { op: 'leave', node: 'a' } }),
    );
    expect(left).toMatchObject({ ok: true, result: { members: ['b', 'c', 'd'] } });
    await stopNode('a');
    await stopNode('b');
    // Under the founding members {a, b, c}, c alone could decide nothing; under {b, c, d},
    // c and d are a majority.
    await putMany(10);
    for (const [key, value] of expected) {
      const got = await whileLeaderMoves(() =>
        ask('read', { command: { op: 'get', key }, consistency: 'strong' }),
      );
      expect(got, key).toMatchObject({ ok: true, result: { found: true, value } });
    }
  }, 60_000);

  it('a restarted member still knows the members (from its snapshot and the log)', async () => {
    await stopNode('d');
    const d = await startNode('d', true);
    await putMany(5);
    await waitFor(
      'd is back with the members the log names',
      async () => members(d) === 'b,c,d',
      20_000,
      50,
    );
  }, 60_000);
});
