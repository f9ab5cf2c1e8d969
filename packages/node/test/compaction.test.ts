// Snapshots and compaction with real parts: three node runtimes over a real nats-server, each
// with its fsynced store. The log is compacted as it grows; a node that was down while its
// peers compacted catches up from a snapshot; a whole-group restart loses nothing.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor, whileLeaderMoves } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntime } from '../src/index.js';
import { NodeGroup } from './node-group.js';

const peers = ['a', 'b', 'c'];
const SNAPSHOT_EVERY = 25;
const RETAIN = 5;

describe('snapshots and compaction over NATS', () => {
  let group: NodeGroup;
  let dir: string;
  const expected = new Map<string, string>();
  let seq = 0;

  const startNode = (nodeId: string): Promise<NodeRuntime> => group.startNode(nodeId);
  const stopNode = (nodeId: string): Promise<void> => group.stopNode(nodeId);
  const ask = (subject: string, body: unknown) => group.ask(subject, body);
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
  const nodes = (): NodeRuntime[] => group.nodes();
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
    group = await NodeGroup.start('mokka', {
      peers,
      snapshotEvery: SNAPSHOT_EVERY,
      retainSlots: RETAIN,
    });
    dir = group.dir;
    for (const nodeId of peers) await startNode(nodeId);
  });
  afterAll(async () => {
    await group?.stop();
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
