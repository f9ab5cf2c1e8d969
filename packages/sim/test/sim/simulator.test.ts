// The simulator must have teeth: it finds each planted bug within a bounded number of seeds,
// and finds nothing in the correct protocol. CI runs more seeds through `npm run sim`.
import { PLANTED_BUGS } from '@synod/actors';
import { describe, expect, it } from 'vitest';
import { replayCommand, runSeed, runSeeds } from '../../src/index.js';

const CLEAN_SEEDS = Number(process.env.SIM_TEST_SEEDS ?? 60);
const PLANT_SEED_BOUND = 300;

describe('deterministic simulator', () => {
  it(`finds no violation in ${CLEAN_SEEDS} seeds of the correct protocol, 3 and 5 nodes`, () => {
    for (const nodes of [3, 5]) {
      const summary = runSeeds({
        start: 1,
        count: CLEAN_SEEDS / 2,
        nodes,
        onResult: (r) => expect(r.violations, `seed ${r.seed}`).toEqual([]),
      });
      expect(summary.violatingSeeds).toBe(0);
      expect(summary.steps).toBeGreaterThan(0);
    }
  }, 300_000);

  it('replays a seed exactly: same steps, same history, same outcome', () => {
    const first = runSeed(17, { nodes: 3 });
    const second = runSeed(17, { nodes: 3 });
    expect(second.steps).toBe(first.steps);
    expect(second.history).toEqual(first.history);
    expect(second.simTimeMs).toBe(first.simTimeMs);
    expect(runSeed(18, { nodes: 3 }).history).not.toEqual(first.history);
  });

  it('does real work: writes are acknowledged and reads return', () => {
    const result = runSeed(5, { nodes: 3 });
    expect(result.acknowledged).toBeGreaterThan(0);
    expect(
      result.history.some((op) => op.input.op === 'get' && op.return !== Number.POSITIVE_INFINITY),
    ).toBe(true);
  });

  it('prints a one-line replay command', () => {
    expect(replayCommand(42, { nodes: 5, plant: 'ignore-accepted' })).toBe(
      'npm run sim -- --seed 42 --nodes 5 --plant ignore-accepted',
    );
  });

  it('checks client histories for linearizability: a planted bug shows up there too', () => {
    let found: number | undefined;
    runSeeds({
      start: 1,
      count: PLANT_SEED_BOUND,
      plant: 'ignore-accepted',
      onResult: (r) => {
        if (found === undefined && r.linearizability === 'not-linearizable') found = r.seed;
      },
    });
    expect(found, 'no seed produced a non-linearizable history').toBeDefined();
  }, 300_000);

  for (const plant of PLANTED_BUGS) {
    it(`catches the planted ${plant} bug within ${PLANT_SEED_BOUND} seeds`, () => {
      const summary = runSeeds({
        start: 1,
        count: PLANT_SEED_BOUND,
        plant,
        stopAtFirstViolation: true,
      });
      expect(
        summary.firstViolatingSeed,
        `${plant} went unnoticed for ${PLANT_SEED_BOUND} seeds`,
      ).toBeDefined();
    }, 300_000);
  }
});
