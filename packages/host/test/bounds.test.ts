import { PAXOS_RULES } from '@synod/actors';
import { groupSubjects, Membership, type PeerMessage, type Value } from '@synod/protocol';
import { VirtualScheduler } from '@synod/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { CatchUp } from '../src/catch-up.js';
import { DEFAULT_HOST_LIMITS, resolveHostLimits, type SubmitResult } from '../src/index.js';
import type { LeaderModeHost } from '../src/leader-mode-host.js';
import { bytes, Cluster, GROUP, PEERS, text } from './harness.js';

let cluster: Cluster | undefined;

afterEach(() => {
  if (cluster === undefined) return;
  expect(cluster.problems()).toEqual([]);
  cluster.stopAll();
  cluster = undefined;
});

describe('what a host holds is bounded', () => {
  it('a leader keeps at most maxWaitingSubmits values waiting; beyond it submit answers "ask again" at once', () => {
    const c = new Cluster('leader');
    cluster = c;
    for (const id of PEERS) c.start(id, { limits: { maxWaitingSubmits: 4 } });
    const leader = c.elect();
    // Without its followers the leader keeps leading but chooses nothing: submits wait.
    for (const id of PEERS) if (id !== leader) c.stop(id);
    const results: (SubmitResult | undefined)[] = [];
    for (let i = 0; i < 6; i++)
      c.host(leader).submit(bytes(`w${i}`), (r) => {
        results[i] = r;
      });
    // The same value again waits with the first of its kind, even when full.
    let again: SubmitResult | undefined;
    c.host(leader).submit(bytes('w0'), (r) => {
      again = r;
    });
    c.advance(10);
    expect(c.host(leader).held().waitingSubmits).toBe(4);
    expect(results.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(results[4]).toEqual({ ok: false, leader });
    expect(results[5]).toEqual({ ok: false, leader });
    expect(again).toBeUndefined();
  });

  it('a host keeps at most maxKnownRegisters register values; a forgotten one is found again by Paxos', () => {
    const c = new Cluster('leaderless');
    cluster = c;
    for (const id of PEERS) c.start(id, { limits: { maxKnownRegisters: 3 } });
    const chosen = new Map<string, string>();
    for (let k = 0; k < 5; k++) {
      let answer: Value | undefined;
      c.host('a').paxos(`k${k}`, bytes(`first-${k}`), (v) => {
        answer = v;
      });
      c.runUntil(() => answer !== undefined, 2_000);
      chosen.set(`k${k}`, text(answer!));
    }
    expect(c.host('a').held().knownRegisters).toBe(3);
    // k0 was forgotten here: asking again runs Paxos, which finds the value chosen before.
    let again: Value | undefined;
    c.host('a').paxos('k0', bytes('second'), (v) => {
      again = v;
    });
    c.runUntil(() => again !== undefined, 2_000);
    expect(text(again!)).toBe(chosen.get('k0'));
    expect(chosen.get('k0')).toBe('first-0');
  });

  it('reads wait for at most maxSlotWaiters slots; beyond it a slot is not awaited, and delivery frees room', () => {
    const scheduler = new VirtualScheduler();
    const published: PeerMessage[] = [];
    const host: LeaderModeHost = {
      nodeId: 'a',
      group: GROUP,
      membership: () => new Membership(['a', 'b', 'c']),
      scheduler,
      subjects: groupSubjects(GROUP),
      seed: 1,
      rules: PAXOS_RULES,
      timing: undefined,
      maxInFlight: undefined,
      minRound: () => 1,
      firstUnknownSlot: () => 0,
      log: () => new Map(),
      start: () => undefined,
      publish: (_subject, message) => void published.push(message),
      learn: () => undefined,
      proposeNoop: () => undefined,
      logStart: () => 0,
      latestSnapshot: () => undefined,
      limits: resolveHostLimits({ maxSlotWaiters: 3 }),
      installSnapshot: () => undefined,
    };
    const catchUp = new CatchUp(host);
    const answered: number[] = [];
    for (const slot of [5, 5, 6, 7, 8]) catchUp.awaitSlot(slot, () => void answered.push(slot));
    expect(catchUp.slotWaiters).toBe(3);
    catchUp.delivered(5, bytes('five'));
    expect(answered).toEqual([5, 5]);
    expect(catchUp.slotWaiters).toBe(1);
    // Slot 7 was over the bound when asked: its delivery answers nobody.
    catchUp.delivered(7, bytes('seven'));
    expect(answered).toEqual([5, 5]);
    catchUp.awaitSlot(9, () => void answered.push(9));
    expect(catchUp.slotWaiters).toBe(2);
    catchUp.stop();
  });

  it('limits are checked once, with a message that names the bad one', () => {
    expect(resolveHostLimits()).toEqual(DEFAULT_HOST_LIMITS);
    expect(() => resolveHostLimits({ maxWaitingSubmits: 0 })).toThrow(/maxWaitingSubmits/);
    expect(() => resolveHostLimits({ maxSlotWaiters: 1.5 })).toThrow(/maxSlotWaiters/);
    expect(() => resolveHostLimits({ snapshotChunkBytes: 2 * 1024 * 1024 })).toThrow(
      /snapshotChunkBytes .* one 1 MiB message/,
    );
  });
});
