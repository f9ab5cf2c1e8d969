// A group of real `synod node start` processes for cross-package tests: start, kill, pause,
// restart them, and read their status over NATS.
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopLeftoverPostgres } from '@synod/pg-applier';
import { connectNats, type Transport } from '@synod/transport';

export const SYNOD = createRequire(import.meta.url)
  .resolve('@synod/cli/package.json')
  .replace(/package\.json$/, 'dist/main.js');

export interface NodeStatus {
  readonly node: string;
  readonly leader: string | null;
  readonly appliedThrough: number;
  readonly stateDigest: string;
  readonly phase1Answers: number;
  readonly phase2Answers: number;
  readonly snapshotsInstalled: number;
}

export class ProcessCluster {
  readonly processes = new Map<string, ChildProcess>();
  private constructor(
    readonly group: string,
    readonly peers: readonly string[],
    readonly natsUrls: readonly string[],
    readonly dir: string,
    readonly transport: Transport,
    readonly extraArgs: readonly string[] | ((id: string) => readonly string[]),
  ) {}

  static async start(
    group: string,
    peers: readonly string[],
    natsUrls: readonly string[],
    /** More `synod node start` flags (e.g. --snapshot-every), the same or per node. */
    extraArgs: readonly string[] | ((id: string) => readonly string[]) = [],
    /** More environment for the first start of every node (a later startNode gets none). */
    env: Readonly<Record<string, string>> = {},
  ): Promise<ProcessCluster> {
    const dir = await mkdtemp(join(tmpdir(), `synod-${group}-`));
    // An embedded PostgreSQL runs as the OS user postgres when we are root: it must be able
    // to reach its data directory inside this one.
    await chmod(dir, 0o755);
    const transport = await connectNats({ servers: [...natsUrls], name: `test-${group}` });
    const cluster = new ProcessCluster(group, peers, natsUrls, dir, transport, extraArgs);
    for (const id of peers) cluster.startNode(id, env);
    return cluster;
  }

  /** `env`: more environment for this start only (a failpoint, say). */
  startNode(id: string, env: Readonly<Record<string, string>> = {}): void {
    const args = [
      'node',
      'start',
      '--id',
      id,
      '--group',
      this.group,
      '--peers',
      this.peers.join(','),
      '--nats',
      this.natsUrls.join(','),
      '--data',
      join(this.dir, id),
      ...(typeof this.extraArgs === 'function' ? this.extraArgs(id) : this.extraArgs),
    ];
    this.processes.set(
      id,
      spawn(process.execPath, [SYNOD, ...args], {
        // SYNOD_TEST_LOGS=DIR keeps each node's log in DIR/<group>-<id>.log, for debugging.
        stdio:
          process.env.SYNOD_TEST_LOGS === undefined
            ? 'ignore'
            : [
                'ignore',
                openSync(join(process.env.SYNOD_TEST_LOGS, `${this.group}-${id}.log`), 'a'),
                'inherit',
              ],
        env: {
          ...process.env,
          LOG_LEVEL: process.env.SYNOD_TEST_LOGS === undefined ? 'error' : 'info',
          ...env,
        },
      }),
    );
  }

  /** One JSON request to `subject` (a node's or the group's), answered as JSON. */
  async ask(subject: string, body: unknown, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const reply = await this.transport.request(
      subject,
      new TextEncoder().encode(JSON.stringify(body)),
      { timeoutMs },
    );
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  }

  async kill(id: string): Promise<void> {
    const child = this.processes.get(id)!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  signal(id: string, signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.processes.get(id)!.kill(signal);
  }

  /** Every answering node's status in `group` (one of a node's groups when it serves several). */
  async status(group = this.group): Promise<NodeStatus[]> {
    const result = await this.transport.gather(
      `synod.${group}.status`,
      new TextEncoder().encode('{"digest":true}'),
      {
        timeoutMs: 300,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeStatus,
      },
    );
    return [...result.replies].sort((x, y) => (x.node < y.node ? -1 : 1));
  }

  /** The leader every answering node agrees on, when `count` nodes answer. */
  async oneLeader(count = this.peers.length, group = this.group): Promise<string | undefined> {
    const nodes = await this.status(group);
    const leaders = new Set(nodes.map((n) => n.leader));
    return nodes.length === count && leaders.size === 1 && !leaders.has(null)
      ? nodes[0]!.leader!
      : undefined;
  }

  async stop(): Promise<void> {
    // SIGTERM first: a node stops what it started (an embedded PostgreSQL) before it exits.
    const exits = [...this.processes.values()]
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of this.processes.values()) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
    }
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    for (const child of this.processes.values()) child.kill('SIGKILL');
    // A node killed with SIGKILL and never started again leaves its embedded PostgreSQL
    // running (a restarted node stops it itself): stop those before their directory goes.
    await Promise.all(
      [...this.processes.keys()].map((id) =>
        stopLeftoverPostgres(join(this.dir, id, 'postgres', 'data')),
      ),
    );
    await this.transport.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
export { waitFor as until } from '@synod/testkit';
