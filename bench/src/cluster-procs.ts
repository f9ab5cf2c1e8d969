// The two systems under test, as separate processes on loopback: a synod group of three
// `synod node start` processes over one nats-server, and a three-member etcd cluster.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupSubjects } from '@synod/protocol';
import { freePort, type NatsServer, startNatsServer, waitFor as until } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';

export const SYNOD = createRequire(import.meta.url)
  .resolve('@synod/cli/package.json')
  .replace(/package\.json$/, 'dist/main.js');

export interface Running {
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

export async function startSynod(
  /** One group, or several served by each process (`--group G1,G2,...`). */
  group: string | readonly string[],
  /** More `synod node start` flags, the same or per node. */
  extraArgs: readonly string[] | ((id: string) => readonly string[]) = [],
  nodeFlags: readonly string[] = [],
  peers: readonly string[] = ['a', 'b', 'c'],
): Promise<Running & { transport: Transport; nats: NatsServer; dataDir: string }> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'synod-bench-'));
  // A SQL node's embedded PostgreSQL runs as the OS user postgres when we are root.
  await chmod(dir, 0o755);
  const children: ChildProcess[] = peers.map((id) =>
    spawn(
      process.execPath,
      [
        ...nodeFlags,
        SYNOD,
        'node',
        'start',
        '--id',
        id,
        '--group',
        typeof group === 'string' ? group : group.join(','),
        '--peers',
        peers.join(','),
        '--nats',
        nats.url,
        '--data',
        join(dir, id),
        ...(typeof extraArgs === 'function' ? extraArgs(id) : extraArgs),
      ],
      {
        stdio: 'ignore',
        env: { ...process.env, LOG_LEVEL: 'error' },
      },
    ),
  );
  const transport = await connectNats({ servers: nats.url, name: 'bench-client' });
  for (const g of typeof group === 'string' ? [group] : group)
    await until(`a synod leader of ${g}`, async () => {
      const answer = await transport.gather(groupSubjects(g).status, new Uint8Array(0), {
        timeoutMs: 300,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as { leader: string | null },
      });
      return (
        answer.replies.length === peers.length &&
        new Set(answer.replies.map((r) => r.leader)).size === 1 &&
        answer.replies[0]!.leader !== null
      );
    });
  return {
    transport,
    nats,
    dataDir: dir,
    pids: children.map((c) => c.pid!),
    stop: async () => {
      await transport.close();
      for (const child of children) child.kill('SIGKILL');
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The installed etcd's version ("3.4.23"), or undefined when there is none. */
export function etcdVersion(): string | undefined {
  try {
    const out = execFileSync('etcd', ['--version'], { encoding: 'utf8' });
    return /etcd Version: (\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

/** A three-member etcd cluster (Debian's etcd-server, fsync on as by default). */
export async function startEtcd(): Promise<Running & { endpoints: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'etcd-bench-'));
  const members = await Promise.all(
    ['e1', 'e2', 'e3'].map(async (name) => ({
      name,
      client: await freePort(),
      peer: await freePort(),
    })),
  );
  const cluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const children = members.map((m) =>
    spawn(
      'etcd',
      [
        '--name',
        m.name,
        '--data-dir',
        join(dir, m.name),
        '--listen-client-urls',
        `http://127.0.0.1:${m.client}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${m.client}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${m.peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${m.peer}`,
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        'bench',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    ),
  );
  const endpoints = members.map((m) => `http://127.0.0.1:${m.client}`);
  await until(
    'etcd health',
    async () =>
      (await fetch(`${endpoints[0]}/health`)).ok &&
      ((await (await fetch(`${endpoints[0]}/health`)).json()) as { health: string }).health ===
        'true',
  );
  return {
    endpoints,
    pids: children.map((c) => c.pid!),
    stop: async () => {
      for (const child of children) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const kib = Number(
    execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim(),
  );
  return Math.round((kib / 1024) * 10) / 10;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat; after "pid (comm) " they are 11 and 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** The leader of `group`, as `synod status` reports it. */
export function leaderOf(natsUrl: string, group: string): string {
  const nodes = JSON.parse(
    execFileSync(
      process.execPath,
      [SYNOD, 'status', '--group', group, '--nats', natsUrl, '--json'],
      {
        encoding: 'utf8',
      },
    ),
  ) as { node: string; leader: string | null }[];
  const leader = nodes.find((n) => n.leader === n.node)?.node;
  if (leader === undefined) throw new Error(`no ${group} leader in ${JSON.stringify(nodes)}`);
  return leader;
}
