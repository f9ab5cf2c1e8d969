// The commit simulator: Paxos Commit and Faster Paxos Commit keep every RM's outcome the same
// and decide through crashes of F acceptors and the coordinator; two-phase commit blocks
// where they decide; each planted bug is caught within 300 seeds.
import { COMMIT_PLANTS } from '@synod/commit';
import { describe, expect, it } from 'vitest';
import { countCommit } from '../../src/commit/count.js';
import { runCommitSeed } from '../../src/commit/run-commit.js';

const SEEDS = 300;

describe('commit simulator', () => {
  for (const protocol of ['paxos-commit', 'faster-paxos-commit'] as const)
    it(`${protocol}: no violation in ${SEEDS} seeds, both outcomes seen, and decided with the first coordinator dead`, () => {
      const outcomes = new Set<string>();
      let coordinatorDied = 0;
      let acceptorsLost = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const r = runCommitSeed(seed, { protocol });
        expect(r.violations, `seed ${seed}`).toEqual([]);
        expect(r.blocked, `seed ${seed}`).toEqual([]);
        if (r.outcome !== undefined) outcomes.add(r.outcome);
        if (r.scenario.coordinatorDies) coordinatorDied++;
        if (r.scenario.acceptorsLost === r.scenario.f) acceptorsLost++;
      }
      expect([...outcomes].sort()).toEqual(['aborted', 'committed']);
      // The seeds cover what the progress claim is about.
      expect(coordinatorDied).toBeGreaterThan(SEEDS / 5);
      expect(acceptorsLost).toBeGreaterThan(SEEDS / 5);
    });

  it('two-phase commit blocks RMs where its coordinator died after the prepares; Paxos Commit decides there', () => {
    let diedAndBlocked = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const twoPhase = runCommitSeed(seed, { protocol: '2pc' });
      expect(twoPhase.violations, `seed ${seed}`).toEqual([]);
      if (!twoPhase.scenario.coordinatorDies || twoPhase.blocked.length === 0) continue;
      diedAndBlocked++;
      const paxos = runCommitSeed(seed, { protocol: 'paxos-commit' });
      expect(paxos.scenario).toEqual(twoPhase.scenario);
      expect(paxos.blocked, `seed ${seed}`).toEqual([]);
      expect(paxos.outcome, `seed ${seed}`).toBeDefined();
    }
    expect(diedAndBlocked).toBeGreaterThan(SEEDS / 5);
  });

  // The paper's table counts bundled phase 2b messages (one per acceptor for all RMs), phase 2a
  // to F+1 acceptors only and a BeginCommit from the first RM; this implementation sends each
  // instance's messages on their own, to all 2F+1 acceptors, and its acceptors answer the
  // proposer as well as the learners. These closed forms are that difference, exactly.
  it('counts a failure-free commit as its closed forms say, for N = 2..5 and F = 1, 2', () => {
    for (let n = 2; n <= 5; n++) {
      expect(countCommit('2pc', n, 1)).toMatchObject({ messages: 3 * n, delays: 3, writes: n + 1 });
      for (const f of [1, 2]) {
        const a = 2 * f + 1;
        expect(countCommit('paxos-commit', n, f)).toMatchObject({
          messages: 2 * n + 3 * n * a,
          delays: 4,
          writes: n + n * a,
        });
        expect(countCommit('faster-paxos-commit', n, f)).toMatchObject({
          messages: n + 3 * n * a + n * n * a,
          delays: 3,
          writes: n + n * a,
        });
      }
    }
  });

  for (const plant of COMMIT_PLANTS)
    it(`catches the planted ${plant} bug within ${SEEDS} seeds`, () => {
      let caught: number | undefined;
      for (let seed = 1; seed <= SEEDS && caught === undefined; seed++)
        if (runCommitSeed(seed, { protocol: 'paxos-commit', plant }).violations.length > 0)
          caught = seed;
      expect(caught, `${plant} went unnoticed`).toBeDefined();
    });
});
