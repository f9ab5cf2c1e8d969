import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Ballot,
  ballot,
  ballotEquals,
  compareBallots,
  formatBallot,
  InvalidNameError,
  isHigherBallot,
  MAX_ROUND,
  maxBallot,
  nextBallot,
  ZERO_BALLOT,
} from '../src/index.js';
import { ballotArb, nameArb } from './arbitraries.js';
import { NUM_RUNS, PROPERTY_TIMEOUT_MS } from './helpers.js';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** The specified order, written independently: round numerically, then node id by code unit. */
function modelCompare(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round - b.round;
  const n = Math.min(a.nodeId.length, b.nodeId.length);
  for (let i = 0; i < n; i++) {
    const d = a.nodeId.charCodeAt(i) - b.nodeId.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.nodeId.length - b.nodeId.length;
}

/** Ballots drawn from a small space, so equal rounds and equal node ids are common. */
const crowdedBallotArb: fc.Arbitrary<Ballot> = fc.oneof(
  fc.constant(ZERO_BALLOT),
  fc.record({
    round: fc.nat(3),
    nodeId: fc.constantFrom('a', 'b', 'B', 'Z', '_', '-', '0', 'ab', 'a-', 'n1', 'n10', 'n2'),
  }),
);
const mixedBallotArb = fc.oneof(crowdedBallotArb, ballotArb);

describe('ballot order', () => {
  it('orders by round first: a lower round is lower whatever the node ids', () => {
    expect(compareBallots(ballot(1, 'zzz'), ballot(2, 'AAA'))).toBeLessThan(0);
    expect(compareBallots(ballot(2, 'AAA'), ballot(1, 'zzz'))).toBeGreaterThan(0);
    expect(compareBallots(ballot(9, 'a'), ballot(10, 'a'))).toBeLessThan(0); // numeric, not text
  });

  it('breaks round ties by node id, comparing UTF-16 code units (not locale order)', () => {
    expect(compareBallots(ballot(5, 'n1'), ballot(5, 'n2'))).toBeLessThan(0);
    expect(compareBallots(ballot(5, 'Zed'), ballot(5, 'abe'))).toBeLessThan(0); // 'Z' < 'a'
    expect(compareBallots(ballot(5, 'Z'), ballot(5, '_'))).toBeLessThan(0); // 0x5a < 0x5f
    expect(compareBallots(ballot(5, '_'), ballot(5, 'a'))).toBeLessThan(0); // 0x5f < 0x61
    expect(compareBallots(ballot(5, '-'), ballot(5, '0'))).toBeLessThan(0); // 0x2d < 0x30
    expect(compareBallots(ballot(5, 'n10'), ballot(5, 'n2'))).toBeLessThan(0);
    expect(compareBallots(ballot(5, 'ab'), ballot(5, 'a'))).toBeGreaterThan(0); // prefix first
  });

  it('compares equal exactly when round and node id are equal', () => {
    expect(compareBallots(ballot(3, 'n1'), { round: 3, nodeId: 'n1' })).toBe(0);
    expect(ballotEquals(ballot(3, 'n1'), { round: 3, nodeId: 'n1' })).toBe(true);
    expect(ballotEquals(ballot(3, 'n1'), ballot(3, 'n2'))).toBe(false);
    expect(ballotEquals(ballot(3, 'n1'), ballot(4, 'n1'))).toBe(false);
  });

  it(
    'agrees in sign with the (round, node id code units) lexicographic model',
    () => {
      fc.assert(
        fc.property(mixedBallotArb, mixedBallotArb, (a, b) => {
          expect(sign(compareBallots(a, b))).toBe(sign(modelCompare(a, b)));
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'is antisymmetric: compare(a, b) = -compare(b, a), and zero only for equal ballots',
    () => {
      fc.assert(
        fc.property(mixedBallotArb, mixedBallotArb, (a, b) => {
          expect(sign(compareBallots(a, b)) + sign(compareBallots(b, a))).toBe(0);
          expect(compareBallots(a, b) === 0).toBe(ballotEquals(a, b));
          expect(compareBallots(a, a)).toBe(0);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'is transitive: a < b and b < c imply a < c (and likewise for <=), in every permutation',
    () => {
      fc.assert(
        fc.property(mixedBallotArb, mixedBallotArb, mixedBallotArb, (a, b, c) => {
          const perms: [Ballot, Ballot, Ballot][] = [
            [a, b, c],
            [a, c, b],
            [b, a, c],
            [b, c, a],
            [c, a, b],
            [c, b, a],
          ];
          for (const [x, y, z] of perms) {
            if (compareBallots(x, y) < 0 && compareBallots(y, z) < 0) {
              expect(compareBallots(x, z)).toBeLessThan(0);
            }
            if (compareBallots(x, y) <= 0 && compareBallots(y, z) <= 0) {
              expect(compareBallots(x, z)).toBeLessThanOrEqual(0);
            }
          }
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'isHigherBallot is compare > 0, and maxBallot returns an input that is >= both',
    () => {
      fc.assert(
        fc.property(mixedBallotArb, mixedBallotArb, (a, b) => {
          expect(isHigherBallot(a, b)).toBe(compareBallots(a, b) > 0);
          const m = maxBallot(a, b);
          expect(m === a || m === b).toBe(true);
          expect(compareBallots(m, a)).toBeGreaterThanOrEqual(0);
          expect(compareBallots(m, b)).toBeGreaterThanOrEqual(0);
        }),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('ZERO_BALLOT is frozen, and below every ballot a node can make (round 0 included)', () => {
    expect(Object.isFrozen(ZERO_BALLOT)).toBe(true);
    expect(ZERO_BALLOT).toStrictEqual({ round: 0, nodeId: '' });
    expect(compareBallots(ZERO_BALLOT, ballot(0, '-'))).toBeLessThan(0);
    expect(compareBallots(ZERO_BALLOT, ballot(0, 'A'))).toBeLessThan(0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_ROUND }), nameArb, (round, nodeId) => {
        expect(isHigherBallot(ballot(round, nodeId), ZERO_BALLOT)).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('nextBallot', () => {
  it('takes the highest seen round plus one, with the caller as node id', () => {
    expect(nextBallot(ZERO_BALLOT, 'n1')).toStrictEqual({ round: 1, nodeId: 'n1' });
    expect(nextBallot(ballot(7, 'zzz'), 'aaa')).toStrictEqual({ round: 8, nodeId: 'aaa' });
    expect(nextBallot(ballot(7, 'aaa'), 'zzz')).toStrictEqual({ round: 8, nodeId: 'zzz' });
  });

  it(
    'is above every ballot seen when built from the highest of them, whatever our node id',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.record({ round: fc.nat(1_000_000), nodeId: nameArb }), {
            minLength: 1,
            maxLength: 8,
          }),
          nameArb,
          (seen, me) => {
            const highest = seen.reduce(maxBallot);
            const next = nextBallot(highest, me);
            expect(next.round).toBe(Math.max(...seen.map((b) => b.round)) + 1);
            expect(next.nodeId).toBe(me);
            for (const b of seen) expect(isHigherBallot(next, b)).toBe(true);
          },
        ),
        { numRuns: NUM_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('throws RangeError when the round space is exhausted, and works one below it', () => {
    expect(() => nextBallot({ round: MAX_ROUND, nodeId: 'n1' }, 'n2')).toThrow(RangeError);
    expect(nextBallot({ round: MAX_ROUND - 1, nodeId: 'n1' }, 'n2')).toStrictEqual({
      round: MAX_ROUND,
      nodeId: 'n2',
    });
  });

  it('rejects an invalid node id with InvalidNameError', () => {
    expect(() => nextBallot(ZERO_BALLOT, 'bad.id')).toThrow(InvalidNameError);
    expect(() => nextBallot(ZERO_BALLOT, '')).toThrow(InvalidNameError);
  });
});

describe('ballot()', () => {
  it('builds a ballot from a non-negative safe integer round and a valid node id', () => {
    expect(ballot(0, 'n1')).toStrictEqual({ round: 0, nodeId: 'n1' });
    expect(ballot(MAX_ROUND, 'n1')).toStrictEqual({ round: 2 ** 48, nodeId: 'n1' });
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_ROUND + 1, -0.5])(
    'rejects round %s with RangeError',
    (round) => {
      expect(() => ballot(round, 'n1')).toThrow(RangeError);
    },
  );

  it("rejects node ids that are not names (including the zero ballot's '') with InvalidNameError", () => {
    for (const nodeId of ['', 'a.b', 'a b', '*', '>', 'x'.repeat(65)]) {
      expect(() => ballot(1, nodeId)).toThrow(InvalidNameError);
    }
  });

  it("formats as '<round>.<node>' and the zero ballot as '0.-'", () => {
    expect(formatBallot(ballot(12, 'n3'))).toBe('12.n3');
    expect(formatBallot(ZERO_BALLOT)).toBe('0.-');
  });
});
