// npm run bench:inspect — what watching costs: the consensus benchmark's puts against a
// 3-node synod group, with nobody watching and with `synod inspect --json` attached (a process
// of its own, printing every event), alternating, at 1, 16 and 256 clients.
import { spawn } from 'node:child_process';
import { SYNOD, startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { load, type Row, SECONDS, synodPut, WARMUP_SECONDS } from './put-load.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

/** BENCH_CLIENTS=256 runs one row only (to try a change quickly). */
const CONCURRENCY = (process.env.BENCH_CLIENTS ?? '1,16,256').split(',').map(Number);
/** Each setting runs this often per row, interleaved (off, on, off, on): drift hits both alike. */
const ROUNDS = 2;

async function main(): Promise<void> {
  const machine = describeMachine();
  const rows: (Row & { watched: boolean })[] = [];
  const synod = await startSynod('bench');
  let viewer: ReturnType<typeof spawn> | undefined;
  const watch = async (on: boolean) => {
    if (on && viewer === undefined) {
      viewer = spawn(
        process.execPath,
        [SYNOD, 'inspect', '--group', 'bench', '--nats', synod.nats.url, '--json'],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      // Nodes start publishing at the viewer's first heartbeat; give it a moment to connect.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } else if (!on && viewer !== undefined) {
      viewer.kill('SIGTERM');
      viewer = undefined;
      // Nodes stop after 3 s without a heartbeat.
      await new Promise((resolve) => setTimeout(resolve, 3_500));
    }
  };
  try {
    const put = synodPut(synod.transport, 'bench');
    await load('warm-up', 16, put, WARMUP_SECONDS);
    for (const c of CONCURRENCY)
      for (let round = 0; round < ROUNDS; round++)
        for (const watched of [false, true]) {
          await watch(watched);
          rows.push({ ...(await load(watched ? 'synod, watched' : 'synod', c, put)), watched });
        }
  } finally {
    await watch(false);
    await synod.stop();
  }
  const file = writeResults('inspect', machine, { seconds: SECONDS, rounds: ROUNDS, rows });
  const mean = (c: number, watched: boolean, field: 'putsPerSecond' | 'p50Ms') => {
    const values = rows
      .filter((r) => r.clients === c && r.watched === watched)
      .map((r) => r[field]);
    return values.reduce((a, b) => a + b, 0) / values.length;
  };
  const lines = CONCURRENCY.map((c) => {
    const off = mean(c, false, 'putsPerSecond');
    const on = mean(c, true, 'putsPerSecond');
    return `| ${c} | ${Math.round(off).toLocaleString('en-US')} | ${Math.round(on).toLocaleString('en-US')} | ${round(on / off, 3)}x | ${round((1 - on / off) * 100, 1)}% | ${round(mean(c, false, 'p50Ms'), 2)} / ${round(mean(c, true, 'p50Ms'), 2)} |`;
  });
  const table = [
    '## Inspection overhead (`npm run bench:inspect`)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; the consensus benchmark's puts (3 \`synod node start\` processes over ${machine.natsServer}, fsync on), ${SECONDS} s per row, ${ROUNDS} rows per setting, interleaved; watched: \`synod inspect --json\` attached as a process of its own. Raw data: [${file}](${file}).`,
    '',
    '| clients | puts/s, nobody watching | puts/s, watched | watched/unwatched | throughput lost | p50 ms unwatched / watched |',
    '|---:|---:|---:|---:|---:|---:|',
    ...lines,
  ].join('\n');
  updateReadme('inspect', table);
  console.log(table);
}

await main();
process.exit(0);
