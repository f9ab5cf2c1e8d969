// Group membership with real parts (pg_paxos's paxos_join_group): node runtimes over a real
// nats-server. A fourth node joins a three-node group and catches up from a snapshot; then a
// founder leaves, and the group keeps deciding with two of the three remaining members down
// to one... which only works if quorums really moved to the new members.
import { waitFor, whileLeaderMoves } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntime } from '../src/index.js';
import { NodeGroup } from './node-group.js';

const founders = ['a', 'b', 'c'];

describe('group membership over NATS', () => {
  let group: NodeGroup;
  const expected = new Map<string, string>();
  let seq = 0;

  const startNode = (nodeId: string, joining = false): Promise<NodeRuntime> =>
    group.startNode(nodeId, joining ? { join: true } : {});
  const stopNode = (nodeId: string): Promise<void> => group.stopNode(nodeId);
  const ask = (subject: string, body: unknown) => group.ask(subject, body);
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
  const nodes = (): NodeRuntime[] => group.nodes();

  beforeAll(async () => {
    group = await NodeGroup.start('mokka', {
      peers: founders,
      requestTimeoutMs: 3_000,
      snapshotEvery: 20,
      retainSlots: 5,
    });
    for (const nodeId of founders) await startNode(nodeId);
  });
  afterAll(async () => {
    await group?.stop();
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
