#!/usr/bin/env node
// npm run sim:commit — the commit simulator (run-commit.ts). The last line is always
// `seeds: N, violations: V`; the exit code is 0 only when V is 0.
import { parseArgs } from 'node:util';
import { COMMIT_PLANTS, type CommitPlant, type CommitProtocol } from '@synod/commit';
import { countTable } from './count.js';
import { runCommitSeed } from './run-commit.js';

const PROTOCOLS: readonly CommitProtocol[] = ['paxos-commit', 'faster-paxos-commit', '2pc'];
const USAGE = `usage: npm run sim:commit -- --seeds N [--start S] [options]   seeds S .. S+N-1
       npm run sim:commit -- --seed S [--trace] [options]       replay one seed

options:
  --protocol P   ${PROTOCOLS.join(' | ')} (default paxos-commit)
  --plant BUG    build in a known bug the simulator must catch: ${COMMIT_PLANTS.join(', ')}
  --trace        with --seed: every start, crash, decision and the heal
  --count        one failure-free committed transaction per protocol, N = 2..5 RMs, F = 1, 2:
                 messages, message delays and durable writes beside the paper's formulas
  --help         this text

Two-phase commit's blocked RMs are reported, not counted as violations: blocking is what
it does when its coordinator dies.`;

function fail(message: string): never {
  console.error(`sim:commit: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

let values: ReturnType<typeof parse>['values'];
function parse() {
  return parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      start: { type: 'string', default: '1' },
      protocol: { type: 'string', default: 'paxos-commit' },
      plant: { type: 'string' },
      trace: { type: 'boolean', default: false },
      count: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}
try {
  values = parse().values;
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.count) {
  console.log(countTable());
  process.exit(0);
}
const protocol = values.protocol as CommitProtocol;
if (!PROTOCOLS.includes(protocol)) fail(`unknown protocol ${JSON.stringify(values.protocol)}`);
const plant = values.plant as CommitPlant | undefined;
if (plant !== undefined && !COMMIT_PLANTS.includes(plant))
  fail(`unknown planted bug ${JSON.stringify(plant)}`);
const count = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) fail(`--${name} must be a positive integer`);
  return Number(text);
};
const one = count('seed', values.seed);
const seeds = count('seeds', values.seeds);
if ((one === undefined) === (seeds === undefined)) fail('give either --seeds N or --seed S');
if (values.trace && one === undefined) fail('--trace needs --seed');
const start = one ?? count('start', values.start)!;
let violating = 0;
let blockedSeeds = 0;
let coordinatorDied = 0;
const outcomes = { committed: 0, aborted: 0, none: 0 };
for (let seed = start; seed < start + (seeds ?? 1); seed++) {
  const result = runCommitSeed(seed, {
    protocol,
    ...(plant === undefined ? {} : { plant }),
    ...(values.trace ? { trace: (line: string) => console.log(line) } : {}),
  });
  outcomes[result.outcome ?? 'none']++;
  if (result.scenario.coordinatorDies) coordinatorDied++;
  if (result.blocked.length > 0) blockedSeeds++;
  if (result.violations.length === 0) continue;
  violating++;
  console.log(`seed ${seed}: ${result.violations.length} violation(s)`);
  for (const v of result.violations) console.log(`  ${v}`);
  console.log(
    `  replay: npm run sim:commit -- --seed ${seed} --protocol ${protocol}${plant === undefined ? '' : ` --plant ${plant}`}`,
  );
}
console.log(
  `${protocol}${plant === undefined ? '' : `, planted ${plant}`}: committed ${outcomes.committed}, aborted ${outcomes.aborted}, no RM learned an outcome ${outcomes.none}; seeds with an RM blocked: ${blockedSeeds} (the first coordinator died for good in ${coordinatorDied})`,
);
console.log(`seeds: ${seeds ?? 1}, violations: ${violating}`);
process.exit(violating === 0 ? 0 : 1);
