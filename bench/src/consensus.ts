// npm run bench:consensus — puts and linearizable reads against a 3-node synod group and a
// 3-member etcd cluster in the same run (separate processes, fsync on, loopback), each system
// driven through the client its users take, from a load generator process of its own: etcd
// through its gRPC client to the leader; synod through SynodClient and through its JSON
// subject from a plain NATS client. Rows at 1, 16, 256 and 1,024 clients (reads at 1 and 256).
import { createRequire } from 'node:module';
import { etcdVersion, rssMiB, startEtcd, startSynod } from './cluster-procs.js';
import { consensusSection } from './consensus-table.js';
import { etcdLeader } from './etcd-leader.js';
import type { LoadSpec, OpKind, SystemId } from './load-drivers.js';
import { type LoadRow, runLoad } from './load-run.js';
import { describeMachine } from './machine.js';
import { SECONDS, WARMUP_SECONDS } from './put-load.js';
import { updateReadme, writeResults } from './report.js';

/** BENCH_CLIENTS=256 runs the put rows at that concurrency only (to try a change quickly). */
const PUT_CLIENTS = (process.env.BENCH_CLIENTS ?? '1,16,256,1024').split(',').map(Number);
const READ_CLIENTS = [1, 256].filter((c) => PUT_CLIENTS.includes(c));
/** The gateway row is a reference only: two concurrencies keep it cheap. */
const GATEWAY_CLIENTS = [1, 256].filter((c) => PUT_CLIENTS.includes(c));
const GROUP = 'bench';

const LABELS: Record<SystemId, string> = {
  etcd: 'etcd (etcd3 gRPC, to the leader)',
  'etcd-gateway': "etcd JSON gateway (not its users' path)",
  'synod-client': 'synod (SynodClient)',
  'synod-nats': 'synod (plain NATS, JSON subject)',
};

/** Runs one generator per concurrency, one after the other, and collects their rows. */
async function rowsFor(
  system: SystemId,
  op: OpKind,
  clients: readonly number[],
  endpoints: readonly string[],
  serverPids: readonly number[],
): Promise<LoadRow[]> {
  const rows: LoadRow[] = [];
  for (const c of clients) {
    const spec: LoadSpec = {
      system,
      op,
      clients: c,
      seconds: SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      endpoints,
      group: GROUP,
    };
    rows.push(await runLoad(LABELS[system], spec, serverPids));
  }
  return rows;
}

/** How this run was started, BENCH_* settings included, for the README. */
function command(): string {
  const settings = Object.entries(process.env)
    .filter(([name]) => name.startsWith('BENCH_'))
    .map(([name, value]) => `${name}=${value}`);
  return [...settings, 'npm run bench:consensus'].join(' ');
}

async function main(): Promise<void> {
  const etcd = etcdVersion();
  if (etcd === undefined) {
    console.error(
      'etcd is not installed: apt-get install -y etcd-server (the comparison needs it)',
    );
    process.exit(2);
  }
  const machine = describeMachine();
  const rows: LoadRow[] = [];
  const memory: Record<string, number[]> = {};

  const synod = await startSynod(GROUP);
  try {
    const pids = [...synod.pids, synod.nats.pid];
    const nats = [synod.nats.url];
    rows.push(...(await rowsFor('synod-client', 'put', PUT_CLIENTS, nats, pids)));
    rows.push(...(await rowsFor('synod-nats', 'put', PUT_CLIENTS, nats, pids)));
    // After the puts: the reads ask for keys those rows wrote.
    rows.push(...(await rowsFor('synod-client', 'read', READ_CLIENTS, nats, pids)));
    memory['synod nodes'] = synod.pids.map(rssMiB);
    memory['nats-server'] = [rssMiB(synod.nats.pid)];
  } finally {
    await synod.stop();
  }

  const cluster = await startEtcd();
  try {
    const leader = await etcdLeader(cluster.endpoints);
    const pids = cluster.pids;
    rows.push(...(await rowsFor('etcd', 'put', PUT_CLIENTS, [leader], pids)));
    rows.push(...(await rowsFor('etcd', 'read', READ_CLIENTS, [leader], pids)));
    rows.push(...(await rowsFor('etcd-gateway', 'put', GATEWAY_CLIENTS, cluster.endpoints, pids)));
    memory['etcd members'] = cluster.pids.map(rssMiB);
  } finally {
    await cluster.stop();
  }

  const etcd3Version = (createRequire(import.meta.url)('etcd3/package.json') as { version: string })
    .version;
  const run = {
    command: command(),
    etcdVersion: etcd,
    etcd3Version,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    group: GROUP,
    keyBytes: 16,
    valueBytes: 100,
    rows,
    memoryMiB: memory,
  };
  const resultsFile = writeResults('consensus', machine, run);
  const section = consensusSection({ ...run, machine, resultsFile });
  updateReadme('consensus', section);
  console.log(section);
}

await main();
process.exit(0);
