// The inspector against a real group: three node runtimes over a real nats-server, watched
// by a GroupView as `synod inspect` watches them.
import { waitFor } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeInspectBatch, GroupView, renderTerminal } from '../src/index.js';
import { InspectedGroup, MAX_EVENTS } from './inspected-group.js';

const peers = ['a', 'b', 'c'];

describe('inspection over NATS', () => {
  let group: InspectedGroup;
  let seq = 0;

  beforeAll(async () => {
    group = await InspectedGroup.start('watched', peers);
    await group.leaderKnown();
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
  });

  it('publishes nothing and watches no actor while nobody looks', async () => {
    let published = 0;
    const listener = group.client.subscribe('synod.watched.inspect.*', () => {
      published++;
    });
    expect(await group.put('quiet', '1', ++seq)).toMatchObject({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 500));
    listener.unsubscribe();
    expect(published).toBe(0);
    for (const node of group.nodes.values()) expect(node.inspector.watching).toBe(false);
  });

  it('shows every node, the leader, each actor and its events, and follows a write to every node', async () => {
    const view = new GroupView({ transport: group.client, group: 'watched', heartbeatMs: 200 });
    try {
      await waitFor('all three nodes', async () => view.nodes().length === 3, 10_000, 20);
      const leader = group.nodes.get('a')!.runtime.leader!;
      expect(view.leader()).toBe(leader);
      for (const node of view.nodes()) {
        expect(node.summary.leader).toBe(leader);
        expect(node.summary.role).toBe(node.node === leader ? 'leader' : 'follower');
        expect(node.actors.map((a) => a.machine)).toEqual(
          expect.arrayContaining(['acceptor', 'learner', 'leader']),
        );
      }
      const before = Math.max(...view.nodes().map((n) => n.summary.commitIndex));
      const answer = await group.put('watched-key', 'v', ++seq);
      expect(answer).toMatchObject({ ok: true });
      const slot = answer.slot as number;
      expect(slot).toBeGreaterThan(before);
      await waitFor(
        'every node shows the write committed and applied',
        async () =>
          view
            .nodes()
            .every((n) => n.summary.commitIndex >= slot && n.summary.appliedThrough >= slot),
        10_000,
        20,
      );
      // Every acceptor took the write: each one's events show the accept it received.
      for (const id of peers)
        expect(
          view
            .events()
            .some((e) => e.node === id && e.actor.startsWith('acceptor#') && e.event === 'message'),
        ).toBe(true);
      expect(view.events().some((e) => e.kind === 'transition')).toBe(true);
      const text = renderTerminal(view, { now: Date.now() });
      expect(text).toContain(`leader ${leader}`);
      for (const id of peers)
        expect(text).toMatch(new RegExp(`^${id}\\s+(leader|follower)\\s`, 'm'));
    } finally {
      view.stop();
    }
    // The viewer is gone: within the idle time every node detaches and stops publishing.
    await waitFor(
      'nodes stop publishing',
      async () => [...group.nodes.values()].every((n) => !n.inspector.watching),
      5_000,
      20,
    );
  }, 30_000);

  it('drops and counts malformed inspection messages, and keeps showing the good ones', async () => {
    const view = new GroupView({ transport: group.client, group: 'watched', heartbeatMs: 200 });
    try {
      await waitFor('all three nodes', async () => view.nodes().length === 3, 10_000, 20);
      group.client.publish('synod.watched.inspect.x', new Uint8Array([0xc1, 0x00, 0xff]));
      group.client.publish('synod.watched.inspect.x', new TextEncoder().encode('{"v":1}'));
      // A well-formed batch of another group on this subject is not this group's.
      group.client.publish(
        'synod.watched.inspect.y',
        encodeInspectBatch({
          v: 1,
          group: 'other',
          node: 'y',
          seq: 0,
          at: Date.now(),
          summary: {
            role: 'leader',
            leader: 'y',
            ballot: '1.y',
            commitIndex: 0,
            acceptedThrough: 0,
            appliedThrough: 0,
            members: ['y'],
            phase1Answers: 0,
            phase2Answers: 0,
          },
          actors: [],
          events: [],
          dropped: 0,
        }),
      );
      await waitFor(
        'three malformed messages counted',
        async () => view.malformed === 3,
        5_000,
        20,
      );
      const seen = view.nodes().map((n) => n.seenAt);
      await waitFor(
        'batches still arrive',
        async () => view.nodes().every((n, i) => n.seenAt > seen[i]!),
        5_000,
        20,
      );
      expect(view.nodes().map((n) => n.node)).toEqual(peers);
    } finally {
      view.stop();
    }
  }, 30_000);

  it('bounds a batch: events past the limit are counted as dropped, not sent', async () => {
    const view = new GroupView({ transport: group.client, group: 'watched', heartbeatMs: 200 });
    let dropped = 0;
    let largest = 0;
    const off = view.onBatch((batch) => {
      dropped += batch.dropped;
      largest = Math.max(largest, batch.events.length);
    });
    try {
      await waitFor('all three nodes', async () => view.nodes().length === 3, 10_000, 20);
      // Waves of concurrent writes: each wave is a slot or more, each slot a few events per node.
      for (let wave = 0; wave < 20; wave++)
        await Promise.all(
          Array.from({ length: 10 }, (_, i) => group.put(`burst-${wave}-${i}`, 'x', ++seq)),
        );
      await waitFor('the burst is counted', async () => dropped > 0, 5_000, 20);
      expect(largest).toBeLessThanOrEqual(MAX_EVENTS);
    } finally {
      off();
      view.stop();
    }
  }, 30_000);
});
