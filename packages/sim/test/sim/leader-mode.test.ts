// Issue 4's leader machinery in the simulator: the same invariants and linearizability as the
// leaderless mode, plus its own planted bugs; and phase 1 only once per leadership.
import { LEADER_PLANTED_BUGS } from '@synod/actors';
import { DROP_REASONS } from '@synod/host';
import type { PeerMessage } from '@synod/protocol';
import { createRng, MemoryNetwork, VirtualScheduler } from '@synod/transport';
import { describe, expect, it } from 'vitest';
import { GroupHost, runSeed, runSeeds, SimDisk, type SubmitResult } from '../../src/index.js';

const CLEAN_SEEDS = Number(process.env.SIM_TEST_SEEDS ?? 60);
const PLANT_SEED_BOUND = 300;

describe('simulator, leader mode', () => {
  // The seed that found it; its schedule moves as the simulator grows, so the bug itself is
  // pinned by the leader's actor test and by the planted unprepared-members bug below.
  it('keeps agreement at seed 931669, where a leader decided slots of members that never promised its ballot', () => {
    const result = runSeed(931_669, { mode: 'leader' });
    expect(result.violations).toEqual([]);
    expect(result.membershipChanges).toBeGreaterThan(0);
  });

  it(`finds no violation in ${CLEAN_SEEDS} seeds, 3 and 5 nodes, with compaction, snapshot installs and membership changes among them`, () => {
    let compactions = 0;
    let installs = 0;
    let membershipChanges = 0;
    const leaderReads = { served: 0, refused: 0, stalenessProbes: 0 };
    for (const nodes of [3, 5]) {
      const summary = runSeeds({
        start: 1,
        count: CLEAN_SEEDS / 2,
        nodes,
        mode: 'leader',
        onResult: (r) => {
          expect(r.violations, `seed ${r.seed}`).toEqual([]);
          expect(r.linearizability, `seed ${r.seed}`).toBe('linearizable');
        },
      });
      expect(summary.violatingSeeds).toBe(0);
      compactions += summary.compactions;
      installs += summary.snapshotsInstalled;
      membershipChanges += summary.membershipChanges;
      for (const key of Object.keys(leaderReads) as (keyof typeof leaderReads)[])
        leaderReads[key] += summary.leaderReads[key];
    }
    // The seeds must exercise what they claim to check.
    expect(compactions).toBeGreaterThan(0);
    expect(installs).toBeGreaterThan(0);
    expect(membershipChanges).toBeGreaterThan(0);
    // Reads served by leaders without a log slot, and reads at a leader cut off alone.
    expect(leaderReads.served).toBeGreaterThan(0);
    expect(leaderReads.stalenessProbes).toBeGreaterThan(0);
  }, 300_000);

  // The plant is caught within PLANT_SEED_BOUND seeds (below) by its durability violations; two
  // values chosen for one slot need a node that stays behind the compaction long enough to run
  // phase 1 over it, rarer since a member's catch-up request tells a node it is behind (the
  // first such seed from 1 is 513).
  it('the planted compaction-forgets-slots bug breaks agreement, not only durability', () => {
    let agreement: number | undefined;
    for (let seed = 1; seed <= 1_000 && agreement === undefined; seed++) {
      const { violations } = runSeed(seed, { mode: 'leader', plant: 'compaction-forgets-slots' });
      if (violations.some((v) => v.replace(/^t=\S+ /, '').startsWith('agreement:')))
        agreement = seed;
    }
    expect(agreement).toBeDefined();
  }, 300_000);

  // ack-when-chosen needs a new leader to fill an open slot below one already chosen with a
  // client's next write: only a membership change makes that possible (a majority of the old
  // members can run phase 1 without hearing of a later slot the new members chose), and it is
  // too rare for a 300-seed search. The seed that found it replays it, and the end-of-run
  // check that an acknowledged write took effect is what names it.
  // The seed was found before ReadIndex reads existed: it replays as it ran then without them.
  it('catches the planted ack-when-chosen bug at seed 211814180, and the fix holds there', () => {
    const asRecorded = { mode: 'leader', leaderReads: false } as const;
    const planted = runSeed(211_814_180, { ...asRecorded, plant: 'ack-when-chosen' });
    expect(planted.violations.join('\n')).toMatch(/acknowledged write lost: .* skipped the write/);
    expect(runSeed(211_814_180, asRecorded).violations).toEqual([]);
    expect(runSeed(211_814_180, { mode: 'leader' }).violations).toEqual([]);
  });

  // A member restarted without its log (no snapshot yet) heard no heartbeat while no leader
  // held, so it never asked to catch up, and it alone could decide the slots a peer was stuck
  // on: no leader for 120 s. A member's catch-up request now tells it how far the group got.
  it('elects a leader again when the only members of a slot lost their log (seed 400029854)', () => {
    expect(runSeed(400_029_854, { mode: 'leader' }).violations).toEqual([]);
  });

  for (const plant of LEADER_PLANTED_BUGS.filter((p) => p !== 'ack-when-chosen')) {
    it(`catches the planted ${plant} bug within ${PLANT_SEED_BOUND} seeds`, () => {
      const summary = runSeeds({
        start: 1,
        count: PLANT_SEED_BOUND,
        plant,
        mode: 'leader',
        stopAtFirstViolation: true,
      });
      expect(summary.firstViolatingSeed, `${plant} went unnoticed`).toBeDefined();
    }, 300_000);
  }

  it('a sender that is no member changes nothing: every kind of forgery is dropped, and believing them is caught', () => {
    const dropped: Record<string, number> = {};
    let rogueSeeds = 0;
    for (const mode of ['leader', 'leaderless'] as const) {
      runSeeds({
        start: 1,
        count: 40,
        mode,
        onResult: (r) => {
          expect(r.violations, `seed ${r.seed} (${mode})`).toEqual([]);
          if (!r.scenario.rogue) return;
          rogueSeeds++;
          for (const [reason, n] of Object.entries(r.droppedPeerMessages))
            dropped[reason] = (dropped[reason] ?? 0) + n;
        },
      });
    }
    expect(rogueSeeds).toBeGreaterThan(5);
    for (const reason of DROP_REASONS) expect(dropped[reason], reason).toBeGreaterThan(0);
    for (const mode of ['leader', 'leaderless'] as const) {
      const planted = runSeeds({
        start: 1,
        count: PLANT_SEED_BOUND,
        mode,
        plant: 'trust-any-peer',
        stopAtFirstViolation: true,
      });
      expect(planted.firstViolatingSeed, `trust-any-peer went unnoticed (${mode})`).toBeDefined();
    }
  }, 300_000);

  it('after the first election, a steady stream of writes sends no phase-1 message', () => {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({
      seed: 3,
      scheduler,
      faults: { minDelayMs: 0.2, maxDelayMs: 1 },
    });
    const peers = ['a', 'b', 'c'];
    const answers: PeerMessage[] = [];
    const hosts = peers.map(
      (id, i) =>
        new GroupHost({
          group: 'g',
          nodeId: id,
          founders: peers,
          transport: network.connect(id),
          scheduler,
          disk: new SimDisk(scheduler, createRng(i), { min: 0.1, max: 0.5 }),
          seed: i + 1,
          mode: 'leader',
          observer: { acceptorAnswered: (_node, message) => void answers.push(message) },
        }),
    );
    scheduler.runUntil(2_000);
    const leader = hosts.find((h) => h.leader === h.nodeId);
    expect(leader, 'no leader elected in 2 s').toBeDefined();
    expect(new Set(hosts.map((h) => h.leader))).toEqual(new Set([leader!.nodeId]));
    const phaseOneBefore = answers.filter((m) => m.type === 'promise').length;
    expect(phaseOneBefore).toBeGreaterThan(0);

    const results: SubmitResult[] = [];
    for (let i = 0; i < 100; i++)
      leader!.submit(
        new TextEncoder().encode(`{"client":"c","seq":${i},"op":"put","key":"k","value":"${i}"}`),
        (r) => void results.push(r),
      );
    scheduler.runUntil(4_000);

    expect(results).toHaveLength(100);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(answers.filter((m) => m.type === 'promise').length).toBe(phaseOneBefore);
    expect(
      answers.filter((m) => m.type === 'accepted' && m.value === undefined).length,
    ).toBeGreaterThanOrEqual(200);
    const slots = results.map((r) => (r.ok ? r.slot : -1));
    expect(new Set(slots).size).toBe(100);
    for (const host of hosts) host.stop();
  });
});
