// npm run bench:consensus — put throughput and latency (p50, p99) of a 3-node synod group and a
// 3-member etcd cluster in the same run (separate processes, fsync on, loopback), for 16-byte
// keys and 100-byte values at 1, 16 and 256 concurrent clients, plus each node's memory.
import { hasEtcd, rssMiB, startEtcd, startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { key, load, type Row, SECONDS, synodPut, VALUE, WARMUP_SECONDS } from './put-load.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

const CONCURRENCY = [1, 16, 256];

async function main(): Promise<void> {
  if (!hasEtcd()) {
    console.error(
      'etcd is not installed: apt-get install -y etcd-server (the comparison needs it)',
    );
    process.exit(2);
  }
  const machine = describeMachine();
  const rows: Row[] = [];
  const memory: Record<string, number[]> = {};

  const synod = await startSynod('bench');
  try {
    const put = synodPut(synod.transport, 'bench');
    await load('synod warm-up', 16, put, WARMUP_SECONDS);
    for (const c of CONCURRENCY) rows.push(await load('synod', c, put));
    memory.synod = synod.pids.map(rssMiB);
  } finally {
    await synod.stop();
  }

  const etcd = await startEtcd();
  try {
    const put = async (worker: number, n: number): Promise<void> => {
      const body = JSON.stringify({
        key: Buffer.from(key(worker, n)).toString('base64'),
        value: Buffer.from(VALUE).toString('base64'),
      });
      const response = await fetch(`${etcd.endpoints[worker % 3]}/v3/kv/put`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      if (!response.ok) throw new Error(`etcd put failed: ${response.status}`);
      await response.arrayBuffer();
    };
    await load('etcd warm-up', 16, put, WARMUP_SECONDS);
    for (const c of CONCURRENCY) rows.push(await load('etcd', c, put));
    memory.etcd = etcd.pids.map(rssMiB);
  } finally {
    await etcd.stop();
  }

  const file = writeResults('consensus', machine, {
    seconds: SECONDS,
    keyBytes: 16,
    valueBytes: 100,
    rows,
    memoryMiB: memory,
  });
  const lines = CONCURRENCY.map((c) => {
    const s = rows.find((r) => r.system === 'synod' && r.clients === c)!;
    const e = rows.find((r) => r.system === 'etcd' && r.clients === c)!;
    return `| ${c} | ${s.putsPerSecond.toLocaleString('en-US')} | ${e.putsPerSecond.toLocaleString('en-US')} | ${round(s.putsPerSecond / e.putsPerSecond, 2)}x | ${s.p50Ms} / ${s.p99Ms} | ${e.p50Ms} / ${e.p99Ms} | ${round(s.p50Ms / e.p50Ms, 2)}x |`;
  });
  const table = [
    '## Consensus: synod vs etcd (`npm run bench:consensus`)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}; both systems as 3 separate processes on loopback with fsync on (synod over ${machine.natsServer}; Debian etcd-server 3.4 through its JSON gateway from Node fetch); 16-byte keys, 100-byte values, ${WARMUP_SECONDS} s of warm-up at 16 clients, then ${SECONDS} s per row. Raw data: [${file}](${file}).`,
    '',
    '| clients | synod puts/s | etcd puts/s | synod/etcd | synod p50 / p99 ms | etcd p50 / p99 ms | p50 synod/etcd |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...lines,
    '',
    `Memory after the run (RSS, MiB per process): synod ${memory.synod?.join(', ')}; etcd ${memory.etcd?.join(', ')}.`,
  ].join('\n');
  updateReadme('consensus', table);
  console.log(table);
}

await main();
process.exit(0);
