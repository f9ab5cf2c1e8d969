// Linearizable reads on the leader without a log slot (ReadIndex): GroupHost.leaderRead on the
// in-memory network under virtual time.
import { createPeerCodec, groupSubjects, type PeerMessage } from '@synod/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { LeaderReadOutcome } from '../src/index.js';
import { Cluster, GROUP, PEERS } from './harness.js';

const codec = createPeerCodec();
const subjects = groupSubjects(GROUP);

let cluster: Cluster;

afterEach(() => {
  expect(cluster.problems()).toEqual([]);
  cluster.stopAll();
});

/** Starts a read on `id`; the outcome, once there is one. */
function leaderRead(id: string): () => LeaderReadOutcome | undefined {
  let outcome: LeaderReadOutcome | undefined;
  cluster.host(id).leaderRead((o) => {
    expect(outcome, 'a read is answered once').toBeUndefined();
    outcome = o;
  });
  return () => outcome;
}

/** The ReadIndex checks published on the acceptors' subject. */
function watchChecks(): PeerMessage[] {
  const checks: PeerMessage[] = [];
  cluster.network.connect('observer').subscribe(subjects.acceptor, (m) => {
    const message = codec.decode(m.data);
    if (message.type === 'readIndexCheck') checks.push(message);
  });
  return checks;
}

describe('leader reads (ReadIndex)', () => {
  it('the leader confirms with one round and serves at its delivered slot, writing nothing', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    for (const v of ['a', 'b', 'c']) expect(cluster.submit(leader, v).ok).toBe(true);
    const host = cluster.host(leader);
    cluster.advance(100);
    const delivered = host.deliveredThrough;
    const checks = watchChecks();
    const writes = [...cluster.disks.values()].map((d) => d.writes);

    const reads = Array.from({ length: 5 }, () => leaderRead(leader));
    cluster.runUntil(() => reads.every((r) => r() !== undefined), 200);

    for (const read of reads) expect(read()).toEqual({ readIndex: delivered });
    // Five reads that arrived together shared one round, and no node wrote to its disk.
    expect(checks).toHaveLength(1);
    expect([...cluster.disks.values()].map((d) => d.writes)).toEqual(writes);
    expect(host.deliveredThrough).toBe(delivered);
    expect(host.held().leaderReads).toBe(0);
  });

  it('a follower refuses at once and names the leader', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    const follower = PEERS.find((id) => id !== leader)!;
    const read = leaderRead(follower);
    cluster.runUntil(() => read() !== undefined, 10);
    expect(read()).toEqual({ refused: 'not-leader', leader });
  });

  it('a leader cut off from the others never confirms; once it hears them it learns it was deposed', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const old = cluster.elect();
    const others = PEERS.filter((id) => id !== old);
    cluster.network.partition([old], others);
    cluster.runUntil(
      () =>
        others.every(
          (id) => cluster.host(id).leader !== undefined && cluster.host(id).leader !== old,
        ),
      3_000,
    );
    const successor = cluster.host(others[0]!).leader!;
    expect(cluster.submit(successor, 'after').ok).toBe(true);
    // The old leader still believes it leads: a read there waits rather than answer from a
    // state without `after`.
    expect(cluster.host(old).leader).toBe(old);
    const stale = leaderRead(old);
    cluster.advance(1_000);
    expect(stale()).toBeUndefined();

    cluster.network.heal();
    cluster.runUntil(() => stale() !== undefined, 2_000);
    const outcome = stale()!;
    // Either an acceptor's answer said a higher ballot was promised, or the new leader's
    // heartbeat made it a follower first: never a slot to read at.
    expect('refused' in outcome && ['deposed', 'not-leader'].includes(outcome.refused)).toBe(true);
    expect(cluster.host(old).leader).toBe(successor);
  });

  it('a read given up stops the round: a leader cut off does not ask forever for nobody', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    const checks = watchChecks();
    cluster.network.partition(
      [leader, 'observer'],
      PEERS.filter((id) => id !== leader),
    );
    let answered = false;
    const cancel = cluster.host(leader).leaderRead(() => {
      answered = true;
    });
    cluster.advance(250);
    cancel();
    const asked = checks.length;
    expect(asked).toBeGreaterThan(0);
    cluster.advance(2_000);
    expect(checks.length - asked).toBeLessThanOrEqual(1);
    expect(answered).toBe(false);
    expect(cluster.host(leader).held().leaderReads).toBe(0);
  });

  it('reads beyond maxLeaderReads are refused as busy at once', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    cluster.stop(leader);
    cluster.start(leader, { limits: { maxLeaderReads: 2 } });
    const leaderNow = cluster.elect();
    if (leaderNow !== leader) return; // the bound is the restarted node's; another one won
    cluster.network.partition(
      [leader],
      PEERS.filter((id) => id !== leader),
    );
    const reads = Array.from({ length: 3 }, () => leaderRead(leader));
    cluster.advance(10);
    expect(reads.map((r) => r())).toEqual([undefined, undefined, { refused: 'busy' }]);
    cluster.network.heal();
  });
});
