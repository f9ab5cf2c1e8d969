// npm run bench:profile — where a put's time goes at 1 client (issue 4's latency target), or
// at BENCH_CLIENTS clients (issue 17's throughput target; its own README section).
// Starts three `synod node start` processes with V8's CPU profiler on, runs the clients for
// BENCH_SECONDS (default 8), stops the nodes cleanly so they write their profiles, and prints
// for the leader and a follower: CPU time per put, split into idle, GC and JavaScript, and
// the functions with the most self time. Profiles stay in bench/results/profiles/.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SynodClient } from '@synod/client';
import { startNatsServer, waitFor } from '@synod/testkit';
import { connectNats } from '@synod/transport';
import { cpuMs } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { BENCH_DIR, updateReadme, writeResults } from './report.js';
import { percentile, round } from './stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
/** Clients with one put in flight each, over one NATS connection. */
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1);
/** BENCH_PROFILE=0: the same run without the profiler, for CPU figures it does not inflate. */
const PROFILE = process.env.BENCH_PROFILE !== '0';
const SYNOD = createRequire(import.meta.url)
  .resolve('@synod/cli/package.json')
  .replace(/package\.json$/, 'dist/main.js');

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function summarize(file: string, puts: number): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const frame = byId.get(id)!.callFrame;
    const where =
      frame.url === ''
        ? ''
        : ` ${frame.url.replace(/^.*\/(node_modules|packages)\//, '')}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || '(anonymous)'}${where}`;
    self.set(name, (self.get(name) ?? 0) + us);
  });
  const idle = self.get('(idle)') ?? 0;
  const gc = self.get('(garbage collector)') ?? 0;
  const busy = total - idle;
  const top = [...self.entries()]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(
      ([name, us]) => `    ${round(us / puts, 1)} µs/put  ${round((100 * us) / busy, 1)}%  ${name}`,
    );
  return [
    `  busy ${round(busy / 1000, 0)} ms of ${round(total / 1000, 0)} ms (${round((100 * busy) / total, 1)}%); ${round(busy / puts, 0)} µs of CPU per put, of which GC ${round(gc / puts, 0)} µs`,
    ...top,
  ];
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'synod-profile-'));
  const profiles = join(BENCH_DIR, 'results', 'profiles');
  mkdirSync(profiles, { recursive: true });
  for (const old of readdirSync(profiles)) await rm(join(profiles, old), { force: true });
  const peers = ['a', 'b', 'c'];
  const children = peers.map((id) =>
    spawn(
      process.execPath,
      [
        ...(PROFILE
          ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`, `--cpu-prof-name=${id}.cpuprofile`]
          : []),
        SYNOD,
        'node',
        'start',
        ...['--id', id, '--group', 'profile', '--peers', peers.join(',')],
        ...['--nats', nats.url, '--data', join(dir, id)],
      ],
      { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error' } },
    ),
  );
  const transport = await connectNats({ servers: nats.url, name: 'profile-client' });
  let leader = '';
  await waitFor('a leader', async () => {
    const answer = await transport.gather('synod.profile.status', new Uint8Array(0), {
      timeoutMs: 300,
      map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as { leader: string | null },
    });
    leader = answer.replies[0]?.leader ?? '';
    return (
      answer.replies.length === 3 &&
      answer.replies.every((r) => r.leader === leader) &&
      leader !== ''
    );
  });
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) =>
      new SynodClient({ transport, group: 'profile', clientId: `profile${i}`, timeoutMs: 5_000 }),
  );
  await Promise.all(clients.map((client) => client.put('warm-up', 'v'))); // learn the leader
  const latencies: number[] = [];
  // Every process a put passes through, to see how much CPU one put costs in all.
  const processes = [
    ...peers.map((id, i) => ({ name: `node ${id}`, pid: children[i]!.pid! })),
    { name: 'nats-server', pid: nats.pid },
    { name: 'client', pid: process.pid },
  ];
  const cpuBefore = processes.map((p) => cpuMs(p.pid));
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async (client, i) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const t0 = performance.now();
        await client.put(`k${i}-${String(n).padStart(12, '0')}`, 'v'.repeat(100));
        latencies.push(performance.now() - t0);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const cpuPerPut = processes.map((p, i) => ({
    name: p.name,
    us: round(((cpuMs(p.pid) - cpuBefore[i]!) * 1000) / latencies.length, 0),
  }));
  await transport.close();
  const exited = children.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(exited);
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
  const puts = latencies.length;
  const totalUs = cpuPerPut.reduce((sum, p) => sum + p.us, 0);
  const meanUs = round((SECONDS * 1e6) / puts, 0);
  const lines = [
    `${CLIENTS} client${CLIENTS === 1 ? '' : 's'}, ${SECONDS} s: ${puts} puts, p50 ${round(percentile(latencies, 50), 2)} ms, p99 ${round(percentile(latencies, 99), 2)} ms; leader ${leader}`,
    `CPU per put, all processes (from /proc, profiler ${PROFILE ? 'on' : 'off'}): ${totalUs} µs, against ${meanUs} µs of wall time per put on ${machine.cores} cores: ${cpuPerPut.map((p) => `${p.name} ${p.us}`).join(', ')}`,
  ];
  for (const id of PROFILE ? [leader, peers.find((p) => p !== leader)!] : []) {
    lines.push(`${id === leader ? 'leader' : 'follower'} ${id}:`);
    lines.push(...summarize(join(profiles, `${id}.cpuprofile`), puts));
  }
  const file = writeResults(CLIENTS === 1 ? 'profile' : `profile-${CLIENTS}`, machine, {
    seconds: SECONDS,
    clients: CLIENTS,
    puts,
    lines,
  });
  const section = [
    CLIENTS === 1
      ? '## Where a put goes at 1 client (`npm run bench:profile`)'
      : `## Where a put goes at ${CLIENTS} clients (\`BENCH_CLIENTS=${CLIENTS} npm run bench:profile\`)`,
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: three \`synod node start\` processes under V8's CPU profiler, ${CLIENTS === 1 ? 'one client' : `${CLIENTS} clients`}. Self time per put of the functions that use the most. Raw data: [${file}](${file}); profiles in results/profiles/ (not committed).`,
    '',
    '```',
    ...lines,
    '```',
  ].join('\n');
  if (PROFILE) updateReadme(CLIENTS === 1 ? 'profile' : `profile-${CLIENTS}`, section);
  console.log(lines.join('\n'));
}

await main();
process.exit(0);
