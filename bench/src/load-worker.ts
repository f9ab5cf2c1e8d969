// One load generator, a process of its own: `node load-worker.js '<LoadSpec as JSON>'`.
// Every system gets the same kind of generator, apart from the servers, so none pays for
// sharing a process with the other's client. It connects, runs `clients` workers (each one
// operation at a time) for the warm-up and then the measured seconds, and prints on stdout:
// the line `measure` when the measured part starts (the parent reads the servers' CPU time
// then), and a LoadSummary as JSON when it ends.
import { connectDriver, type Driver, type LoadSpec } from './load-drivers.js';
import { percentile, round } from './stats.js';

export interface LoadSummary {
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time of this process (user + system) per operation, in µs. */
  readonly clientCpuUsPerOp: number;
  readonly retries: number | null;
  readonly rssMiB: number;
}

/** Latencies in ms of every operation the workers finished before `seconds` ran out. */
async function drive(driver: Driver, clients: number, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const t0 = performance.now();
        await driver.run(worker, n);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const driver = await connectDriver(spec);
  // JIT, connections, the leader lookups of SynodClient: before the clock, for every system.
  if (spec.warmupSeconds > 0) await drive(driver, spec.clients, spec.warmupSeconds);
  const retriesBefore = driver.retries?.() ?? 0;
  process.stdout.write('measure\n');
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const latencies = await drive(driver, spec.clients, spec.seconds);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const summary: LoadSummary = {
    ops: latencies.length,
    seconds: round(seconds, 3),
    opsPerSecond: Math.round(latencies.length / seconds),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    clientCpuUsPerOp: Math.round((cpu.user + cpu.system) / latencies.length),
    retries: driver.retries === undefined ? null : driver.retries() - retriesBefore,
    rssMiB: round(process.memoryUsage().rss / 2 ** 20, 1),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  await driver.close();
}

await main();
// etcd3's channel and NATS timers would keep the process alive a while after close.
process.exit(0);
