// npm run bench:groups — what serving many groups costs a node process (issue 18): three
// `synod node start` processes serving 1 group, then 16 groups each (--group g1,...,g16), idle
// after their elections: resident memory per process and CPU per second of idle time (the
// heartbeats of every group's leader, the followers' election timers, the inspector).
import { cpuMs, rssMiB, startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

const IDLE_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const COUNTS = [1, 16];

interface Row {
  readonly groups: number;
  readonly rssMiB: number[];
  /** CPU milliseconds per second of idle time, per process (1000 = one core busy). */
  readonly idleCpuMsPerSecond: number[];
  readonly natsIdleCpuMsPerSecond: number;
}

async function measure(groups: number): Promise<Row> {
  const names = Array.from({ length: groups }, (_, i) => `g${i + 1}`);
  const synod = await startSynod(groups === 1 ? names[0]! : names);
  try {
    // Let the elections and first catch-ups settle before the idle time is measured.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const pids = synod.pids;
    const before = pids.map(cpuMs);
    const natsBefore = cpuMs(synod.nats.pid);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    return {
      groups,
      rssMiB: pids.map(rssMiB),
      idleCpuMsPerSecond: pids.map((pid, i) => round((cpuMs(pid) - before[i]!) / IDLE_SECONDS, 1)),
      natsIdleCpuMsPerSecond: round((cpuMs(synod.nats.pid) - natsBefore) / IDLE_SECONDS, 1),
    };
  } finally {
    await synod.stop();
  }
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const rows: Row[] = [];
  for (const groups of COUNTS) rows.push(await measure(groups));
  const file = writeResults('groups', machine, { idleSeconds: IDLE_SECONDS, rows });
  const mean = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / xs.length, 1);
  const [one, many] = [rows[0]!, rows[rows.length - 1]!];
  const section = [
    '## Many groups per node (`npm run bench:groups`)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: three \`synod node start\` processes (kv machine), idle for ${IDLE_SECONDS} s after their elections, serving 1 group and then ${many.groups} groups each (one NATS connection per process, one log, leader and state machine per group). Raw data: [${file}](${file}).`,
    '',
    '| groups per process | RSS MiB per process | idle CPU ms/s per process | nats-server idle CPU ms/s |',
    '|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.groups} | ${r.rssMiB.join(', ')} | ${r.idleCpuMsPerSecond.join(', ')} | ${r.natsIdleCpuMsPerSecond} |`,
    ),
    '',
    `${many.groups} groups against 1: ${round(mean(many.rssMiB) / mean(one.rssMiB), 2)}x the memory (${round((mean(many.rssMiB) - mean(one.rssMiB)) / (many.groups - 1), 1)} MiB per added group) and ${round(mean(many.idleCpuMsPerSecond) / Math.max(0.1, mean(one.idleCpuMsPerSecond)), 1)}x the idle CPU (${round((mean(many.idleCpuMsPerSecond) - mean(one.idleCpuMsPerSecond)) / (many.groups - 1), 2)} ms/s per added group).`,
  ].join('\n');
  updateReadme('groups', section);
  console.log(section);
}

await main();
process.exit(0);
