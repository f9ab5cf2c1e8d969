// Snapshots and compaction with real parts: three node runtimes over a real nats-server, each
// with its fsynced store. The log is compacted as it grows; a node that was down while its
// peers compacted catches up from a snapshot; a whole-group restart loses nothing.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, waitFor, whileLeaderMoves } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRuntime } from '../src/index.js';

const peers = ['a', 'b', 'c'];
const fast = { heartbeatMs: 30, electionMinMs: 100, electionMaxMs: 200, phaseTimeoutMs: 150 };
const SNAPSHOT_EVERY = 25;
const RETAIN = 5;

describe('snapshots and compaction over NATS', () => {
  let server: NatsServer;
  let dir: string;
  let client: Transport;
  const runtimes = new Map<string, { runtime: NodeRuntime; transport: Transport }>();
  const expected = new Map<string, string>();
  let seq = 0;

  const startNode = async (nodeId: string): Promise<NodeRuntime> => {
    const transport = await connectNats({ servers: server.url, name: nodeId });
    const runtime = await NodeRuntime.start({
      group: 'mokka',
      nodeId,
      peers,
      transport,
      dataDir: join(dir, nodeId),
      leaderTiming: fast,
      snapshotEvery: SNAPSHOT_EVERY,
      retainSlots: RETAIN,
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
      const key = `k${seq}`;
      const value = `v${seq}`;
      seq++;
      const write = { clientId: 'writer', seq, command: { op: 'put', key, value } };
      // Right after a restart the leader may change under a write.
      const answer = await whileLeaderMoves(() => ask('write', write));
      expect(answer, `put ${seq}`).toMatchObject({ ok: true });
      expected.set(key, value);
    }
  };
  const nodes = (): NodeRuntime[] => [...runtimes.values()].map((e) => e.runtime);
  const converged = async (): Promise<void> => {
    await waitFor(
      'all nodes applied the same slots with the same state',
      async () => {
        const all = nodes();
        const leader = all.find((r) => r.leader === r.nodeId);
        return (
          leader !== undefined &&
          all.every(
            (r) =>
              r.appliedThrough === leader.appliedThrough &&
              r.status().stateDigest === leader.status().stateDigest,
          )
        );
      },
      20_000,
      20,
    );
  };

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-compaction-'));
    for (const nodeId of peers) await startNode(nodeId);
    client = await connectNats({ servers: server.url, name: 'client' });
  });
  afterAll(async () => {
    await client?.close();
    for (const nodeId of [...runtimes.keys()]) await stopNode(nodeId);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('compacts the log as it grows: the acceptor file stays small', async () => {
    await putMany(150);
    await converged();
    for (const runtime of nodes()) {
      const status = runtime.status();
      expect(status.snapshotThrough, runtime.nodeId).toBeGreaterThanOrEqual(100);
      expect(status.compactedThrough, runtime.nodeId).toBe(status.snapshotThrough - RETAIN);
      // Each put's accept record is ~150 bytes: 150 of them uncompacted would be over 20 KB.
      const logBytes = (await stat(join(dir, runtime.nodeId, 'mokka.acceptor.log'))).size;
      expect(logBytes, runtime.nodeId).toBeLessThan(12_000);
    }
  }, 60_000);

  it('a node that was down while its peers compacted catches up from a snapshot', async () => {
    await stopNode('c');
    await putMany(120);
    const c = await startNode('c');
    await converged();
    // It could not have replayed the slots it missed: its peers no longer hold them.
    const others = nodes().filter((r) => r !== c);
    expect(Math.min(...others.map((r) => r.status().compactedThrough))).toBeGreaterThan(150);
    expect(c.status().stateDigest).toBe(others[0]!.status().stateDigest);
    expect(c.status().snapshotsInstalled).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('a whole-group restart keeps every acknowledged write', async () => {
    const digest = nodes()[0]!.status().stateDigest;
    for (const nodeId of peers) await stopNode(nodeId);
    for (const nodeId of peers) await startNode(nodeId);
    await putMany(1);
    await converged();
    for (const [key, value] of expected) {
      const got = await ask('read', { command: { op: 'get', key }, consistency: 'strong' });
      expect(got, key).toMatchObject({ ok: true, result: { found: true, value } });
    }
    expect(nodes()[0]!.status().stateDigest).not.toBe(digest); // the one new put changed it
  }, 60_000);
});
