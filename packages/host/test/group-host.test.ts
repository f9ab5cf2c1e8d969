import { createPeerCodec, groupSubjects, type PeerMessage } from '@synod/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot, SnapshotHooks } from '../src/index.js';
import { bytes, Cluster, GROUP, logOf, PEERS, text } from './harness.js';

const codec = createPeerCodec();
const subjects = groupSubjects(GROUP);

let cluster: Cluster;

afterEach(() => {
  // No machine failed and no transport handler threw, whatever the test looked at.
  expect(cluster.problems()).toEqual([]);
  cluster.stopAll();
});

describe('leader mode', () => {
  it('elects one leader; submit on it is delivered in one slot everywhere, a follower redirects', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    expect(cluster.agreedLeader()).toBeUndefined();

    const tookMs = cluster.runUntil(() => cluster.agreedLeader() !== undefined, 1_000);
    // Election timeouts are 150-300 ms; one election round trip on a lossless network adds little.
    expect(tookMs).toBeLessThan(1_000);
    const leader = cluster.agreedLeader()!;
    expect(PEERS).toContain(leader);

    const result = cluster.submit(leader, 'v1');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const slot = result.slot;
    cluster.runUntil(() => PEERS.every((id) => cluster.host(id).deliveredThrough >= slot), 500);
    for (const id of PEERS) expect(text(cluster.host(id).log.get(slot)!)).toBe('v1');

    const follower = PEERS.find((id) => id !== leader)!;
    const redirect = cluster.submit(follower, 'v2');
    expect(redirect).toEqual({ ok: false, leader });
    // Nothing was chosen for the refused value.
    cluster.advance(200);
    for (const id of PEERS) expect(logOf(cluster.host(id)).map(([, v]) => v)).not.toContain('v2');
  });

  it('a stopped follower restarted on its disk recovers its acceptor and catches up', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    const follower = PEERS.find((id) => id !== leader)!;
    for (const v of ['a1', 'a2', 'a3']) expect(cluster.submit(leader, v).ok).toBe(true);
    cluster.runUntil(() => cluster.host(follower).log.size === 3, 500);

    cluster.stop(follower);
    for (const v of ['b1', 'b2', 'b3']) expect(cluster.submit(leader, v).ok).toBe(true);
    const expected = logOf(cluster.host(leader));
    expect(expected.map(([, v]) => v)).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);

    const disk = cluster.disks.get(follower)!;
    expect(disk.durable.length).toBeGreaterThan(0);
    const restarted = cluster.start(follower);
    // The acceptor starts from the disk (what it accepted before the crash), the log from nothing.
    const first = expected[0]![0];
    expect(text(restarted.acceptorState.acceptedFor(first)!.value)).toBe('a1');
    expect(restarted.deliveredThrough).toBe(-1);

    cluster.runUntil(() => restarted.deliveredThrough >= expected.at(-1)![0], 1_000);
    expect(logOf(restarted)).toEqual(expected);
    expect(cluster.agreedLeader()).toBe(leader);
  });

  it('a node behind the compaction point installs a snapshot, then delivers after it', () => {
    cluster = new Cluster('leader');
    /** A trivial state machine per node: the concatenation of the values it applied. */
    const state = new Map<string, string>();
    const saved = new Map<string, Snapshot>();
    const installs: { node: string; throughSlot: number; state: string }[] = [];
    const delivered = new Map<string, number[]>();
    const start = (id: string) => {
      state.set(id, '');
      delivered.set(id, []);
      const hooks: SnapshotHooks = {
        latest: () => saved.get(id),
        install: (snapshot) => {
          installs.push({
            node: id,
            throughSlot: snapshot.throughSlot,
            state: text(snapshot.bytes),
          });
          state.set(id, text(snapshot.bytes));
          saved.set(id, snapshot);
        },
      };
      return cluster.start(id, {
        snapshots: hooks,
        delivered: (slot, value) => {
          delivered.get(id)!.push(slot);
          state.set(id, state.get(id)! + text(value));
        },
      });
    };
    // c is down from the start: a and b are a majority of a, b, c.
    start('a');
    start('b');
    const leader = cluster.elect();
    for (const v of ['w0', 'w1', 'w2', 'w3', 'w4']) expect(cluster.submit(leader, v).ok).toBe(true);
    cluster.runUntil(() => state.get('a') === state.get('b'), 500);
    expect(state.get('a')).toBe('w0w1w2w3w4');

    // Snapshot and compact everything delivered so far, on both nodes that hold the log.
    const through = cluster.host('a').deliveredThrough;
    for (const id of ['a', 'b']) {
      const host = cluster.host(id);
      expect(host.deliveredThrough).toBe(through);
      saved.set(id, { throughSlot: through, bytes: bytes(state.get(id)!) });
      host.compact(through);
      expect(host.log.size).toBe(0);
      expect(host.acceptorState.compactedThrough).toBe(through);
      expect(cluster.disks.get(id)!.rewrites).toBe(1);
    }
    for (const v of ['x5', 'x6', 'x7']) expect(cluster.submit(leader, v).ok).toBe(true);
    const last = cluster.host(leader).deliveredThrough;

    const c = start('c');
    cluster.runUntil(() => c.deliveredThrough >= last, 2_000);
    expect(installs).toEqual([{ node: 'c', throughSlot: through, state: 'w0w1w2w3w4' }]);
    // Delivery went on right after the snapshot's slot, not from slot 0.
    expect(delivered.get('c')![0]).toBe(through + 1);
    expect(delivered.get('c')).toEqual(logOf(cluster.host(leader)).map(([slot]) => slot));
    expect(state.get('c')).toBe('w0w1w2w3w4x5x6x7');
    expect(logOf(c)).toEqual(logOf(cluster.host(leader)));
  });

  it("a member's catch-up request from slot s tells a node that lost its log it is behind", () => {
    cluster = new Cluster('leader');
    const alone = cluster.start('a');
    const observer = cluster.network.connect('observer');
    const asked: PeerMessage[] = [];
    observer.subscribe(subjects.catchup, (m) => {
      const message = codec.decode(m.data);
      if (message.from === 'a') asked.push(message);
    });
    const requestFrom = (from: string): void =>
      observer.publish(
        subjects.catchup,
        codec.encode({ type: 'catchupRequest', group: GROUP, from, fromSlot: 14, maxEntries: 16 }),
        { reply: subjects.node('observer') },
      );
    // A sender that is no member proves nothing: a does not start asking.
    requestFrom('mallory');
    cluster.advance(100);
    expect(asked).toEqual([]);
    // Member b asks from slot 14, so slots 0-13 are chosen: a, at slot 0, asks its peers.
    requestFrom('b');
    cluster.advance(1);
    expect(asked).toMatchObject([{ type: 'catchupRequest', from: 'a', fromSlot: 0 }]);
    expect(alone.deliveredThrough).toBe(-1);
  });

  it('read() calls back only once this node delivered every write acknowledged before it', () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const leader = cluster.elect();
    const lagging = PEERS.find((id) => id !== leader)!;
    const others = PEERS.filter((id) => id !== lagging);
    expect(cluster.submit(leader, 'before').ok).toBe(true);
    cluster.runUntil(() => cluster.host(lagging).log.size === 1, 500);

    // The lagging node misses a write that the other two acknowledge.
    cluster.network.partition(others, [lagging]);
    const acked = cluster.submit(leader, 'missed');
    expect(acked.ok).toBe(true);
    if (!acked.ok) return;
    const host = cluster.host(lagging);
    expect(host.log.has(acked.slot)).toBe(false);

    let readAt: { through: number; delivered: number; value: string | undefined } | undefined;
    host.read((through) => {
      readAt = {
        through,
        delivered: host.deliveredThrough,
        value: host.log.has(acked.slot) ? text(host.log.get(acked.slot)!) : undefined,
      };
    });
    // Cut off from every other acceptor, the node cannot know what it misses: no answer.
    cluster.advance(100);
    expect(readAt).toBeUndefined();

    cluster.network.heal();
    cluster.runUntil(() => readAt !== undefined, 2_000);
    expect(readAt!.through).toBeGreaterThanOrEqual(acked.slot);
    expect(readAt!.delivered).toBeGreaterThanOrEqual(acked.slot);
    expect(readAt!.value).toBe('missed');
  });
});

describe('leader mode: believing a forged claim', () => {
  it("a forged decide claiming a member's id cannot hold a strong read forever: the slot gets the no-op", () => {
    cluster = new Cluster('leader');
    cluster.startAll();
    const first = cluster.elect();
    expect(cluster.submit(first, 'first').ok).toBe(true);
    cluster.runUntil(() => PEERS.every((id) => cluster.host(id).deliveredThrough >= 0), 500);
    // The leader, cut off alone, accepts a write nobody else sees, and dies; the others elect
    // a leader whose phase 1 never heard of it, and the dead one comes back with it on disk.
    cluster.network.partition(
      [first],
      PEERS.filter((id) => id !== first),
    );
    const slot = cluster.host(first).deliveredThrough + 1;
    cluster.host(first).submit(bytes('unchosen'), () => undefined);
    cluster.advance(20);
    expect(cluster.host(first).acceptorState.acceptedFor(slot)).toBeDefined();
    cluster.stop(first);
    cluster.network.heal();
    const newLeader = (): string | undefined =>
      PEERS.find((id) => id !== first && cluster.host(id).leader === id);
    cluster.runUntil(() => newLeader() !== undefined, 3_000);
    const reader = newLeader()!;
    const other = PEERS.find((id) => id !== first && id !== reader)!;
    cluster.start(first);
    cluster.advance(50);

    // Someone claiming to be the other member says the slot after it is chosen.
    const mallory = cluster.network.connect(other);
    mallory.publish(
      subjects.learn,
      codec.encode({
        type: 'decide',
        group: GROUP,
        from: other,
        ballot: { round: 99, nodeId: other },
        instance: slot + 1,
        value: bytes('forged'),
      }),
    );
    cluster.advance(50);
    // The read must hear the restarted node: the other member is cut off.
    cluster.network.partition([reader, first], [other]);
    let through: number | undefined;
    cluster.host(reader).read((t) => {
      through = t;
    });
    // The read finds the slot accepted at the restarted node and waits for it; after a second
    // of nobody handing it over, the reader proposes the no-op there, which adopts the value.
    cluster.runUntil(() => through !== undefined, 5_000);
    expect(through).toBeGreaterThanOrEqual(slot);
    expect(text(cluster.host(reader).log.get(slot)!)).toBe('unchosen');
    void mallory.close();
  });
});

describe('leaderless mode', () => {
  it('concurrent append() on two hosts takes two slots, and every host delivers one log', () => {
    cluster = new Cluster('leaderless');
    cluster.startAll();
    const slots = new Map<string, number>();
    cluster.host('a').append(bytes('from-a'), (slot) => slots.set('from-a', slot));
    cluster.host('b').append(bytes('from-b'), (slot) => slots.set('from-b', slot));
    cluster.runUntil(() => slots.size === 2, 5_000);
    expect(slots.get('from-a')).not.toBe(slots.get('from-b'));

    const both = Math.max(...slots.values());
    cluster.runUntil(() => PEERS.every((id) => cluster.host(id).deliveredThrough >= both), 5_000);
    const log = logOf(cluster.host('a'));
    for (const [value, slot] of slots) expect(log).toContainEqual([slot, value]);
    for (const id of PEERS) expect(logOf(cluster.host(id))).toEqual(log);
  });

  it('paxos(key, value) from two hosts with different values: both learn the same value', () => {
    cluster = new Cluster('leaderless');
    cluster.startAll();
    const answers = new Map<string, string>();
    cluster.host('a').paxos('k', bytes('va'), (v) => answers.set('a', text(v)));
    cluster.host('b').paxos('k', bytes('vb'), (v) => answers.set('b', text(v)));
    cluster.runUntil(() => answers.size === 2, 5_000);
    const chosen = answers.get('a')!;
    expect(['va', 'vb']).toContain(chosen);
    expect(answers.get('b')).toBe(chosen);
    // A third proposer with yet another value learns the chosen one too.
    cluster.host('c').paxos('k', bytes('vc'), (v) => answers.set('c', text(v)));
    cluster.runUntil(() => answers.size === 3, 5_000);
    expect(answers.get('c')).toBe(chosen);
  });

  it('a forged non-member message and garbage bytes reach no machine', () => {
    cluster = new Cluster('leaderless');
    cluster.startAll();
    let slot: number | undefined;
    cluster.host('a').append(bytes('v'), (s) => {
      slot = s;
    });
    cluster.runUntil(() => slot !== undefined, 5_000);
    cluster.scheduler.runUntilIdle();

    const mallory = cluster.network.connect('mallory');
    const prepare = (from: string): PeerMessage => ({
      type: 'prepare',
      group: GROUP,
      from,
      ballot: { round: 1_000, nodeId: from },
      instance: slot!,
    });
    const states = () => PEERS.map((id) => cluster.host(id).acceptorState.liveRecords());
    const dropped = () => PEERS.map((id) => ({ ...cluster.host(id).droppedPeerMessages }));
    const before = states();
    const droppedBefore = dropped();
    expect(PEERS.map((id) => cluster.host(id).decodeErrors)).toEqual([0, 0, 0]);

    mallory.publish(subjects.acceptor, codec.encode(prepare('mallory')), {
      reply: subjects.node('mallory'),
    });
    cluster.scheduler.runUntilIdle();
    expect(states()).toEqual(before);
    for (const [i, counts] of dropped().entries())
      expect(counts).toEqual({
        ...droppedBefore[i],
        'not-a-member': droppedBefore[i]!['not-a-member'] + 1,
      });
    const droppedAfterForgery = dropped();

    mallory.publish(subjects.acceptor, Uint8Array.of(0xc1, 0xff, 0x00, 0x13, 0x37));
    cluster.scheduler.runUntilIdle();
    expect(PEERS.map((id) => cluster.host(id).decodeErrors)).toEqual([1, 1, 1]);
    expect(states()).toEqual(before);
    // Not counted as a dropped peer message either: it never was one.
    expect(dropped()).toEqual(droppedAfterForgery);

    // Control: the very same prepare claiming a member's id is believed (by the others), so
    // the state compared above is one a prepare that got through would have changed.
    mallory.publish(subjects.acceptor, codec.encode(prepare('b')), {
      reply: subjects.node('mallory'),
    });
    cluster.scheduler.runUntilIdle();
    const after = states();
    expect(after[0]).not.toEqual(before[0]);
    expect(cluster.host('a').acceptorState.promisedFor(slot!)).toEqual({
      round: 1_000,
      nodeId: 'b',
    });
    void mallory.close();
  });
});
