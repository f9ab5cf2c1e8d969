// The consensus benchmark's README section: every row against etcd's gRPC row at the same
// operation and concurrency, and where synod stands against issue 17's goals.
import type { LoadRow } from './load-run.js';
import type { Machine } from './machine.js';
import { round } from './stats.js';

export interface ConsensusRun {
  readonly machine: Machine;
  /** The command as run, with any BENCH_* settings in front. */
  readonly command: string;
  readonly etcdVersion: string;
  readonly etcd3Version: string;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly group: string;
  readonly rows: readonly LoadRow[];
  readonly memoryMiB: Readonly<Record<string, readonly number[]>>;
  readonly resultsFile: string;
}

const OPERATION = { put: 'put', read: 'linearizable read' } as const;
const ratio = (value: number): string => (Number.isFinite(value) ? `${round(value, 2)}x` : '');
const number = (value: number): string => value.toLocaleString('en-US');

/** etcd's gRPC row for the same operation and concurrency, which every ratio is against. */
function baseline(rows: readonly LoadRow[], row: LoadRow): LoadRow | undefined {
  return rows.find((r) => r.system === 'etcd' && r.op === row.op && r.clients === row.clients);
}

function tableRow(rows: readonly LoadRow[], row: LoadRow): string {
  const etcd = baseline(rows, row);
  const compared = etcd !== undefined && row !== etcd;
  return [
    '',
    OPERATION[row.op],
    row.label,
    row.clients,
    number(row.opsPerSecond),
    `${row.p50Ms} / ${row.p99Ms}`,
    compared ? ratio(row.opsPerSecond / etcd.opsPerSecond) : '',
    compared ? ratio(row.p50Ms / etcd.p50Ms) : '',
    number(row.serverCpuUsPerOp),
    number(row.clientCpuUsPerOp),
    '',
  ].join(' | ');
}

/** Issue 17's two goals, for each way of driving synod, as measured in this run. */
function goals(rows: readonly LoadRow[]): string[] {
  const labels = [...new Set(rows.filter((r) => r.system.startsWith('synod')).map((r) => r.label))];
  return labels.map((label) => {
    const at = (clients: number) => {
      const row = rows.find((r) => r.label === label && r.op === 'put' && r.clients === clients);
      return row === undefined ? undefined : { row, etcd: baseline(rows, row) };
    };
    const many = at(256);
    const one = at(1);
    const throughput =
      many?.etcd === undefined ? Number.NaN : many.row.opsPerSecond / many.etcd.opsPerSecond;
    const latency = one?.etcd === undefined ? Number.NaN : one.row.p50Ms / one.etcd.p50Ms;
    const verdict = (met: boolean) => (met ? 'reached' : '**not reached**');
    return `- ${label}: ${ratio(throughput)} etcd's put throughput at 256 clients (${verdict(throughput >= 10)}); p50 ${ratio(latency)} etcd's at 1 client (${verdict(latency <= 0.6)}).`;
  });
}

export function consensusSection(run: ConsensusRun): string {
  const { machine: m } = run;
  const order = (r: LoadRow) => (r.op === 'put' ? 0 : 1) * 1e6 + r.clients;
  const rows = [...run.rows].sort((a, b) => order(a) - order(b));
  const memory = Object.entries(run.memoryMiB)
    .map(([what, mib]) => `${what} ${mib.join(', ')}`)
    .join('; ');
  return [
    '## Consensus: synod vs etcd (`npm run bench:consensus`)',
    '',
    `${m.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Command: \`${run.command}\`. Raw data: [${run.resultsFile}](${run.resultsFile}).`,
    '',
    `Both systems run as 3 separate processes on loopback with fsync on: synod as three \`synod node start\` over one nats-server (${m.natsServer}), etcd as Debian's etcd-server ${run.etcdVersion}. Each system is driven the way its users drive it, by a load generator that is a process of its own, the same for every row (bench/src/load-worker.ts); each of its clients has one operation in flight at a time:`,
    '',
    `- **etcd**: npm \`etcd3\` ${run.etcd3Version} with its defaults (gRPC, one channel), connected to the leader only (found with the maintenance Status RPC).`,
    '- **synod (SynodClient)**: one `SynodClient` per client over one NATS connection; it sends writes to the leader.',
    `- **synod (plain NATS)**: no synod code: nats.js \`request()\` (one shared muxed inbox) with the public JSON body on \`synod.${run.group}.write\`, each client its own clientId with seq counting up. Any node answers that subject; a follower forwards to the leader.`,
    "- **linearizable reads**: etcd's default `get` (a ReadIndex round at the leader); synod's `get(key, 'linearizable')` through SynodClient (a ReadIndex round at the leader too, since 2026-12-06: before, the leader put reads in a slot of the log, 2.5-3.9 ms p50 at 1 client).",
    "- The etcd JSON gateway row is the old benchmark's path, fetch spread over the members: no etcd user's path, kept for comparison with earlier tables.",
    '',
    `16-byte keys, 100-byte values. Per row: ${run.warmupSeconds} s of warm-up at the row's clients, then ${run.seconds} s measured. Ratios are against etcd's gRPC row at the same operation and clients. CPU per operation: the servers' from /proc (synod: the three nodes and nats-server; etcd: the three members), the generator's from process.cpuUsage().`,
    '',
    '| operation | system | clients | ops/s | p50 / p99 ms | ops/s vs etcd | p50 vs etcd | server CPU µs/op | client CPU µs/op |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => tableRow(rows, row).trim()),
    '',
    "Issue 17's goals, against etcd through its gRPC client: at 256 clients at least 10x etcd's put throughput, and at 1 client a put p50 at most 0.6x etcd's. In this run:",
    '',
    ...goals(rows),
    '',
    `Memory after the run (RSS, MiB per process): ${memory}.`,
  ].join('\n');
}
