// npm run bench:transport — request/reply round trip (p50, p99) and pipelined request
// throughput at 1, 64 and 512 in flight, over a real nats-server on loopback and over the
// in-memory transport. These are the floor every consensus figure is compared with.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect as rawConnect } from '@nats-io/transport-node';
import { startNatsServer } from '@synod/testkit';
import { connectNats, MemoryNetwork, type Transport } from '@synod/transport';
import { describeMachine } from './machine.js';
import { updateReadme, writeResults } from './report.js';
import { percentile, round } from './stats.js';

const SUBJECT = 'synod.bench.echo';
const PAYLOAD = new Uint8Array(100).fill(7);
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 5_000);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const IN_FLIGHT = [1, 64, 512];

interface Row {
  readonly transport: string;
  readonly inFlight: number;
  readonly requestsPerSecond: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

type RequestFn = () => Promise<unknown>;

async function latency(request: RequestFn): Promise<{ p50Ms: number; p99Ms: number }> {
  for (let i = 0; i < 500; i++) await request();
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const start = performance.now();
    await request();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: round(percentile(samples, 50), 3), p99Ms: round(percentile(samples, 99), 3) };
}

async function throughput(request: RequestFn, inFlight: number): Promise<number> {
  const deadline = performance.now() + THROUGHPUT_SECONDS * 1000;
  let completed = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await request();
      completed++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return Math.round(completed / ((performance.now() - start) / 1000));
}

async function measure(name: string, request: RequestFn): Promise<Row[]> {
  const rows: Row[] = [];
  const { p50Ms, p99Ms } = await latency(request);
  for (const inFlight of IN_FLIGHT) {
    const requestsPerSecond = await throughput(request, inFlight);
    rows.push(
      inFlight === 1
        ? { transport: name, inFlight, requestsPerSecond, p50Ms, p99Ms }
        : { transport: name, inFlight, requestsPerSecond },
    );
    console.error(
      `${name} in-flight=${inFlight}: ${requestsPerSecond} req/s${inFlight === 1 ? ` p50=${p50Ms} ms p99=${p99Ms} ms` : ''}`,
    );
  }
  return rows;
}

async function startResponder(url: string): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./responder.js', import.meta.url));
  const child = spawn(process.execPath, [script, url, SUBJECT], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout!, 'data');
  return child;
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const rows: Row[] = [];

  const server = await startNatsServer();
  const responder = await startResponder(server.url);
  try {
    const nats: Transport = await connectNats({ servers: server.url, name: 'bench-requester' });
    rows.push(
      ...(await measure('NATS (synod transport)', () =>
        nats.request(SUBJECT, PAYLOAD, { timeoutMs: 10_000 }),
      )),
    );
    await nats.close();
    // nats.js's own request() (one subscription per request), as a reference for the shared inbox.
    const raw = await rawConnect({ servers: server.url });
    rows.push(
      ...(await measure('NATS (nats.js request(), reference)', () =>
        raw.request(SUBJECT, PAYLOAD, { timeout: 10_000 }),
      )),
    );
    await raw.close();
  } finally {
    responder.kill('SIGTERM');
    await server.stop();
  }

  const network = new MemoryNetwork();
  const echo = network.connect('responder');
  echo.subscribe(SUBJECT, (m) => echo.publish(m.reply!, m.data));
  const memory = network.connect('requester');
  rows.push(
    ...(await measure('in-memory', () => memory.request(SUBJECT, PAYLOAD, { timeoutMs: 10_000 }))),
  );

  const file = writeResults('transport', machine, {
    payloadBytes: PAYLOAD.length,
    throughputSeconds: THROUGHPUT_SECONDS,
    latencySamples: LATENCY_SAMPLES,
    rows,
  });
  const table = [
    `## Transport floor (\`npm run bench:transport\`)`,
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}, ${machine.natsServer}; ${PAYLOAD.length}-byte request and reply, responder in another process for NATS. Raw data: [${file}](${file}).`,
    '',
    '| transport | in flight | requests/s | round trip p50 (ms) | p99 (ms) |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.transport} | ${r.inFlight} | ${r.requestsPerSecond.toLocaleString('en-US')} | ${r.p50Ms ?? ''} | ${r.p99Ms ?? ''} |`,
    ),
  ].join('\n');
  updateReadme('transport', table);
  console.log(table);
}

await main();
process.exit(0);
