// The put load of the consensus benchmarks: workers that each put 16-byte keys with 100-byte
// values back to back for a number of seconds, and the throughput and latency they saw.
import { SynodClient } from '@synod/client';
import type { Transport } from '@synod/transport';
import { percentile, round } from './stats.js';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** Load before the measured rows, for each system alike: JIT compilation, caches, connections. */
export const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
export const VALUE = 'v'.repeat(100);
export const key = (worker: number, n: number): string =>
  `k${String(worker).padStart(4, '0')}${String(n % 100_000).padStart(11, '0')}`; // 16 bytes

export interface Row {
  readonly system: string;
  readonly clients: number;
  readonly putsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export async function load(
  system: string,
  clients: number,
  put: (worker: number, n: number) => Promise<unknown>,
  seconds = SECONDS,
): Promise<Row> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const t0 = performance.now();
        await put(worker, n);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const row = {
    system,
    clients,
    putsPerSecond: Math.round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
  };
  console.error(
    `${system} clients=${clients}: ${row.putsPerSecond} puts/s p50=${row.p50Ms} ms p99=${row.p99Ms} ms`,
  );
  return row;
}

/** A put for each of 256 workers, each worker a client of its own against `group`. */
export function synodPut(
  transport: Transport,
  group: string,
): (worker: number, n: number) => Promise<unknown> {
  const clients = Array.from(
    { length: 256 },
    (_, i) => new SynodClient({ transport, group, clientId: `bench-${i}`, timeoutMs: 5_000 }),
  );
  return (worker, n) => clients[worker]!.put(key(worker, n), VALUE);
}
