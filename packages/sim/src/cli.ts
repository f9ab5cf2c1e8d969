#!/usr/bin/env node
// The last line is always `seeds: N, violations: V`; the exit code is 0 only when V is 0.
import { parseArgs } from 'node:util';
import { LEADER_PLANTED_BUGS, PLANTED_BUGS, type PlantedBug } from '@synod/actors';
import { runSeeds } from './sim/batch.js';

const USAGE = `usage: npm run sim -- --seeds N [--start S] [options]   run seeds S .. S+N-1 (S defaults to 1)
       npm run sim -- --seed S [--trace] [options]       replay one seed exactly

options:
  --mode leaderless|leader   pg_paxos's algorithm (default) or the distinguished leader
  --nodes 3|5                fix the group size (each seed picks one otherwise)
  --plant BUG                build in a known bug the simulator must catch:
                               ${PLANTED_BUGS.join(', ')}
                               leader mode also: ${LEADER_PLANTED_BUGS.join(', ')}
  --trace                    with --seed: print every delivered and dropped message, timer,
                             crash, restart, partition, membership change, chosen value and
                             violation, with its simulated time
  --verbose                  print every seed's summary, not only the violating ones
  --help                     this text

The last line is "seeds: N, violations: V"; the exit code is 0 only when V is 0.`;

function fail(message: string): never {
  console.error(`sim: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      start: { type: 'string', default: '1' },
      nodes: { type: 'string' },
      plant: { type: 'string' },
      mode: { type: 'string', default: 'leaderless' },
      verbose: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}
try {
  parsed = parse();
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const integer = (name: string, text: string | undefined, min: number): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min)
    fail(`--${name} must be an integer of at least ${min}, got ${text}`);
  return n;
};

const nodes = integer('nodes', values.nodes, 3);
if (nodes !== undefined && nodes !== 3 && nodes !== 5) fail('--nodes must be 3 or 5');
if (values.mode !== 'leaderless' && values.mode !== 'leader')
  fail('--mode must be leaderless or leader');
const mode = values.mode;
// Leaderless bugs live in machines both modes run; the leader's own bugs need leader mode.
const plants = mode === 'leader' ? [...PLANTED_BUGS, ...LEADER_PLANTED_BUGS] : PLANTED_BUGS;
if (values.plant !== undefined && !(plants as readonly string[]).includes(values.plant)) {
  fail(`--plant must be one of ${plants.join(', ')} in ${mode} mode`);
}
const single = integer('seed', values.seed, 0);
const count =
  single === undefined
    ? (integer('seeds', values.seeds, 1) ?? fail('give --seeds N or --seed S'))
    : 1;
const start = single ?? integer('start', values.start, 0)!;
if (values.trace && single === undefined) fail('--trace needs --seed S: one seed at a time');

if (single === undefined)
  console.log(
    `${mode} mode, seeds ${start}..${start + count - 1}${values.plant === undefined ? '' : `, planted ${values.plant}`}`,
  );
const summary = runSeeds({
  start,
  count,
  ...(nodes === undefined ? {} : { nodes }),
  ...(values.plant === undefined ? {} : { plant: values.plant as PlantedBug }),
  mode,
  ...(values.trace ? { trace: (line: string) => console.log(line) } : {}),
  onResult: (result, replay) => {
    if (result.violations.length > 0 || values.verbose || single !== undefined) {
      const s = result.scenario;
      console.log(
        `seed ${result.seed}: ${result.violations.length} violation(s); ${s.nodes} nodes, ${s.clients} clients, ${result.history.length} ops, ${result.acknowledged} acknowledged writes, history ${result.linearizability}, ${result.steps} steps, ${result.simTimeMs.toFixed(0)} ms simulated${s.membership === undefined ? '' : `, ${s.membership.founders} founders, ${result.membershipChanges} membership changes (window ${s.membership.window})`}`,
      );
      for (const violation of result.violations) console.log(`  ${violation}`);
      if (result.violations.length > 0) console.log(`  replay: ${replay}`);
    }
  },
});
console.log(
  `steps: ${summary.steps} in ${(summary.wallMs / 1000).toFixed(1)} s (${Math.round(summary.steps / (summary.wallMs / 1000))} steps/s); longest seed ${summary.longestSeedMs.toFixed(0)} ms wall (seed ${summary.longestSeed})`,
);
if (summary.compactions > 0)
  console.log(
    `compactions: ${summary.compactions}, snapshots installed from peers: ${summary.snapshotsInstalled}`,
  );
if (summary.leaderReads.served + summary.leaderReads.refused > 0)
  console.log(
    `reads served by a leader without a log slot: ${summary.leaderReads.served} (not confirmed, read through a majority instead: ${summary.leaderReads.refused}; reads at a leader cut off alone: ${summary.leaderReads.stalenessProbes})`,
  );
if (summary.membershipChanges > 0) {
  const m = summary.membershipShapes;
  const windows = [...summary.membershipWindows]
    .sort(([a], [b]) => a - b)
    .map(([w, n]) => `${w}: ${n} seeds`)
    .join(', ');
  console.log(
    `membership changes chosen: ${summary.membershipChanges} (to an even number of members: ${m.even}, odd: ${m.odd}; within the window of the one before: ${m.withinWindow}, in adjacent slots: ${m.adjacent}; windows ${windows})`,
  );
}
if (summary.undecided > 0)
  console.log(`linearizability undecided (time limit) in ${summary.undecided} seeds`);
console.log(`seeds: ${summary.seeds}, violations: ${summary.violatingSeeds}`);
process.exitCode = summary.violatingSeeds === 0 ? 0 : 1;
