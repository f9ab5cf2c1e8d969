import type { PlantedBug } from '@synod/actors';
import type { MembershipShapes } from './checks.js';
import { runSeed, type SeedResult } from './run.js';
import type { SimMode } from './scenario.js';
import type { TraceSink } from './trace.js';

export interface BatchOptions {
  readonly start: number;
  readonly count: number;
  readonly nodes?: number;
  readonly plant?: PlantedBug;
  readonly mode?: SimMode;
  /** Stop at the first violating seed (for tests that only need to know a bug is caught). */
  readonly stopAtFirstViolation?: boolean;
  readonly onResult?: (result: SeedResult, replay: string) => void;
  /** Every seed's trace (see RunOptions.trace): meant for one seed at a time. */
  readonly trace?: TraceSink;
}

export interface BatchSummary {
  readonly seeds: number;
  readonly violatingSeeds: number;
  readonly firstViolatingSeed: number | undefined;
  readonly steps: number;
  readonly wallMs: number;
  readonly longestSeed: number;
  readonly longestSeedMs: number;
  /** Seeds whose linearizability check ran out of time. */
  readonly undecided: number;
  readonly compactions: number;
  readonly snapshotsInstalled: number;
  /** Summed over the seeds (SeedResult.leaderReads). */
  readonly leaderReads: { served: number; refused: number; stalenessProbes: number };
  readonly membershipChanges: number;
  /** Summed over the seeds; and the membership windows the seeds with changes used. */
  readonly membershipShapes: MembershipShapes;
  readonly membershipWindows: ReadonlyMap<number, number>;
}

/** The one-line command that replays a seed exactly. */
export function replayCommand(
  seed: number,
  options: { nodes?: number; plant?: PlantedBug; mode?: SimMode },
): string {
  return [
    'npm run sim --',
    `--seed ${seed}`,
    options.mode === undefined || options.mode === 'leaderless' ? '' : `--mode ${options.mode}`,
    options.nodes === undefined ? '' : `--nodes ${options.nodes}`,
    options.plant === undefined ? '' : `--plant ${options.plant}`,
  ]
    .filter((part) => part !== '')
    .join(' ');
}

export function runSeeds(options: BatchOptions): BatchSummary {
  const started = performance.now();
  let violatingSeeds = 0;
  let firstViolatingSeed: number | undefined;
  let steps = 0;
  let longestSeed = options.start;
  let longestSeedMs = 0;
  let seeds = 0;
  let undecided = 0;
  let compactions = 0;
  let snapshotsInstalled = 0;
  const leaderReads = { served: 0, refused: 0, stalenessProbes: 0 };
  let membershipChanges = 0;
  const shapes = { even: 0, odd: 0, withinWindow: 0, adjacent: 0 };
  const windows = new Map<number, number>();
  for (let seed = options.start; seed < options.start + options.count; seed++) {
    const t0 = performance.now();
    const result = runSeed(seed, {
      ...(options.nodes === undefined ? {} : { nodes: options.nodes }),
      ...(options.plant === undefined ? {} : { plant: options.plant }),
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.trace === undefined ? {} : { trace: options.trace }),
      ...(options.stopAtFirstViolation === true ? { stopAtFirstViolation: true } : {}),
    });
    const elapsed = performance.now() - t0;
    seeds++;
    steps += result.steps;
    if (elapsed > longestSeedMs) {
      longestSeedMs = elapsed;
      longestSeed = seed;
    }
    if (result.linearizability === 'unknown') undecided++;
    compactions += result.compactions;
    snapshotsInstalled += result.snapshotsInstalled;
    for (const key of Object.keys(leaderReads) as (keyof typeof leaderReads)[])
      leaderReads[key] += result.leaderReads[key];
    membershipChanges += result.membershipChanges;
    for (const key of Object.keys(shapes) as (keyof MembershipShapes)[])
      shapes[key] += result.membershipShapes[key];
    const window = result.scenario.membership?.window;
    if (window !== undefined && result.membershipChanges > 0)
      windows.set(window, (windows.get(window) ?? 0) + 1);
    if (result.violations.length > 0) {
      violatingSeeds++;
      firstViolatingSeed ??= seed;
    }
    options.onResult?.(result, replayCommand(seed, options));
    if (options.stopAtFirstViolation === true && result.violations.length > 0) break;
  }
  return {
    seeds,
    violatingSeeds,
    firstViolatingSeed,
    steps,
    wallMs: performance.now() - started,
    longestSeed,
    longestSeedMs,
    undecided,
    compactions,
    snapshotsInstalled,
    leaderReads,
    membershipChanges,
    membershipShapes: shapes,
    membershipWindows: windows,
  };
}
