// The parent's side of a load generator (load-worker.ts): spawns it, reads the servers' CPU
// time from /proc while it measures, and returns one row of the consensus table.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuMs } from './cluster-procs.js';
import type { LoadSpec } from './load-drivers.js';
import type { LoadSummary } from './load-worker.js';

const WORKER = fileURLToPath(new URL('./load-worker.js', import.meta.url));

export interface LoadRow extends LoadSummary {
  /** What the table calls the system (how it was driven). */
  readonly label: string;
  readonly system: LoadSpec['system'];
  readonly op: LoadSpec['op'];
  readonly clients: number;
  /** CPU time of every server process (nodes, nats-server; etcd members) per operation, in µs. */
  readonly serverCpuUsPerOp: number;
}

export async function runLoad(
  label: string,
  spec: LoadSpec,
  serverPids: readonly number[],
): Promise<LoadRow> {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const serverCpu = () => serverPids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  let cpuAtStart: number | undefined;
  let cpuAtEnd = 0;
  let summary: LoadSummary | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'measure') cpuAtStart = serverCpu();
    else if (line.startsWith('{')) {
      // Read before parsing: the generator prints its summary the moment its clock stops.
      cpuAtEnd = serverCpu();
      summary = JSON.parse(line) as LoadSummary;
    }
  }
  const code = await exited;
  if (summary === undefined || cpuAtStart === undefined || code !== 0)
    throw new Error(`load generator for ${label} at ${spec.clients} clients failed (exit ${code})`);
  const row: LoadRow = {
    label,
    system: spec.system,
    op: spec.op,
    clients: spec.clients,
    ...summary,
    serverCpuUsPerOp: Math.round(((cpuAtEnd - cpuAtStart) * 1000) / summary.ops),
  };
  console.error(
    `${label} ${spec.op} clients=${spec.clients}: ${row.opsPerSecond} ops/s p50=${row.p50Ms} ms p99=${row.p99Ms} ms, CPU/op server ${row.serverCpuUsPerOp} µs client ${row.clientCpuUsPerOp} µs`,
  );
  return row;
}
