// npm run bench:memory — a burst of large writes (see burst.ts), then issue 4's memory target: a node's memory after 1,000,000 writes must
// be within 2x of its memory after 10,000 (state in memory must not grow with the log).
// Three `synod node start` processes (fsync on) take puts from 256 concurrent clients over a
// bounded key space (10,240 keys of 16 bytes, 100-byte values), so the state machine's size
// is the same at both points and only the log grows.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SynodClient } from '@synod/client';
import { BURST_BYTES, BURST_WRITES, burstTable, measureBurst } from './burst.js';
import { rssMiB, startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

const CLIENTS = 256;
const KEYS_PER_CLIENT = 40;
const CHECKPOINTS = [10_000, Number(process.env.BENCH_WRITES ?? 1_000_000)];
const VALUE = 'v'.repeat(100);
const key = (worker: number, n: number): string =>
  `m${String(worker).padStart(5, '0')}${String(n % KEYS_PER_CLIENT).padStart(10, '0')}`;

interface NodeStatus {
  readonly node: string;
  readonly appliedThrough: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly arrayBuffersBytes: number;
  readonly snapshotThrough: number;
  readonly compactedThrough: number;
}

interface Sample {
  readonly writes: number;
  readonly seconds: number;
  readonly nodes: {
    readonly node: string;
    readonly rssMiB: number;
    readonly heapUsedMiB: number;
    readonly buffersMiB: number;
    readonly appliedThrough: number;
    readonly compactedThrough: number;
    readonly acceptorLogKiB: number;
  }[];
}

const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

/** BENCH_ONLY=burst or BENCH_ONLY=log runs one part of this benchmark. */
const ONLY = process.env.BENCH_ONLY;

async function burst(): Promise<void> {
  const machine = describeMachine();
  const result = await measureBurst();
  const file = writeResults('memory-burst', machine, result);
  const table = [
    '## Memory under a burst (`npm run bench:memory`, `BENCH_ONLY=burst` for this part alone)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: three \`synod node start\` processes (fsync on, default limits), ${BURST_WRITES} concurrent clients each putting one ${BURST_BYTES / 1024} KiB value at once, twice; each client retries (same clientId and seq) up to 20 times, 10 s per attempt, honouring BUSY's retry hint. RSS is sampled every 50 ms; the last row is after garbage collection. Raw data: [${file}](${file}).`,
    '',
    ...burstTable(result),
  ].join('\n');
  updateReadme('burst', table);
  console.log(table);
}

async function main(): Promise<void> {
  if (ONLY !== 'log') await burst();
  if (ONLY === 'burst') return;
  const machine = describeMachine();
  // --expose-gc: each measurement collects garbage first, so it shows live memory.
  const synod = await startSynod('memory', [], ['--expose-gc']);
  const samples: Sample[] = [];
  try {
    const clients = Array.from(
      { length: CLIENTS },
      (_, i) =>
        new SynodClient({
          transport: synod.transport,
          group: 'memory',
          clientId: `mem-${i}`,
          timeoutMs: 10_000,
        }),
    );
    const sample = async (writes: number, seconds: number): Promise<void> => {
      const answer = await synod.transport.gather(
        'synod.memory.status',
        new TextEncoder().encode('{"gc":true}'),
        {
          timeoutMs: 1_000,
          map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeStatus,
        },
      );
      const nodes = [...answer.replies]
        .sort((a, b) => a.node.localeCompare(b.node))
        .map((s, i) => ({
          node: s.node,
          rssMiB: rssMiB(synod.pids[['a', 'b', 'c'].indexOf(s.node)] ?? synod.pids[i]!),
          heapUsedMiB: mib(s.heapUsedBytes),
          buffersMiB: mib(s.arrayBuffersBytes),
          appliedThrough: s.appliedThrough,
          compactedThrough: s.compactedThrough,
          acceptorLogKiB: round(
            statSync(join(synod.dataDir, s.node, 'memory.acceptor.log')).size / 1024,
            0,
          ),
        }));
      samples.push({ writes, seconds: round(seconds, 1), nodes });
      console.error(`after ${writes} writes (${round(seconds, 1)} s): ${JSON.stringify(nodes)}`);
    };
    let written = 0;
    const started = performance.now();
    for (const target of CHECKPOINTS) {
      await Promise.all(
        clients.map(async (client, worker) => {
          for (let n = 0; written < target; n++) {
            written++;
            await client.put(key(worker, n + written), VALUE);
          }
        }),
      );
      // Let the followers finish applying and a pending snapshot land before measuring.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await sample(written, (performance.now() - started) / 1000);
    }
  } finally {
    await synod.stop();
  }
  const [small, large] = samples as [Sample, Sample];
  const ratio = (pick: (n: Sample['nodes'][number]) => number): number =>
    round(Math.max(...large.nodes.map((n, i) => pick(n) / pick(small.nodes[i]!))), 2);
  const file = writeResults('memory', machine, {
    clients: CLIENTS,
    keys: CLIENTS * KEYS_PER_CLIENT,
    samples,
  });
  const rows = small.nodes.map((n, i) => {
    const l = large.nodes[i]!;
    return `| ${n.node} | ${n.rssMiB} / ${n.heapUsedMiB} / ${n.buffersMiB} | ${l.rssMiB} / ${l.heapUsedMiB} / ${l.buffersMiB} | ${round(l.rssMiB / n.rssMiB, 2)}x | ${l.appliedThrough.toLocaleString('en-US')} / ${l.compactedThrough.toLocaleString('en-US')} | ${l.acceptorLogKiB.toLocaleString('en-US')} |`;
  });
  const table = [
    '## Memory against log length (`npm run bench:memory`)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: three \`synod node start\` processes (fsync on; default snapshots every 10,000 slots or 4 MiB of log; kept below a snapshot: at most 256 slots and 2 MiB), ${CLIENTS} concurrent clients putting 100-byte values over ${CLIENTS * KEYS_PER_CLIENT} keys. ${large.writes.toLocaleString('en-US')} writes took ${large.seconds} s. Raw data: [${file}](${file}).`,
    '',
    `| node | after ${small.writes.toLocaleString('en-US')} writes: RSS / heap / buffers MiB | after ${large.writes.toLocaleString('en-US')}: RSS / heap / buffers MiB | RSS ratio | slots applied / compacted through | acceptor log KiB |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Largest ratio: RSS ${ratio((n) => n.rssMiB)}x, heap + buffers ${ratio((n) => n.heapUsedMiB + n.buffersMiB)}x (target: within 2x).`,
  ].join('\n');
  updateReadme('memory', table);
  console.log(table);
}

await main();
process.exit(0);
