// Issue 13's lost disk, with real `synod node start` processes: a node whose data directory
// was deleted must not vote (Paxos assumes an acceptor never forgets), no acknowledged write
// may be lost, and the documented replacement (group leave, then --join) must work. Also: one
// process per data directory.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type NatsServer, startNatsServer, whileLeaderMoves } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const GROUP = 'lostdisk';
const peers = ['a', 'b', 'c'];
const run = promisify(execFile);

interface Exit {
  readonly code: number | null;
  readonly output: string;
  readonly ms: number;
}

describe('a node that lost its disk does not vote', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  /** Nodes started with --join from now on. */
  const joining = new Set<string>();
  let seq = 0;
  let firstLeaderMs = 0;

  const put = async (i: number): Promise<void> => {
    const answer = await whileLeaderMoves(() =>
      group.ask(`synod.${GROUP}.write`, {
        clientId: 'writer',
        seq: ++seq,
        command: { op: 'put', key: `k${i}`, value: `v${i}` },
      }),
    );
    expect(answer, `put k${i}`).toMatchObject({ ok: true });
  };
  const everyKeyThere = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const got = await whileLeaderMoves(() =>
        group.ask(`synod.${GROUP}.read`, {
          command: { op: 'get', key: `k${i}` },
          consistency: 'strong',
        }),
      );
      expect(got, `k${i}`).toMatchObject({ ok: true, result: { found: true, value: `v${i}` } });
    }
  };
  /** `synod node start` for `id` on its directory in the cluster, its output captured. */
  const startCaptured = (id: string, groupName = GROUP, founders = peers): ChildProcess =>
    spawn(
      process.execPath,
      [
        SYNOD,
        'node',
        'start',
        '--id',
        id,
        '--group',
        groupName,
        '--peers',
        founders.join(','),
        '--nats',
        server.url,
        '--data',
        join(group.dir, groupName === GROUP ? id : `${groupName}-${id}`),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'error' } },
    );
  const exitOf = (child: ChildProcess, timeoutMs: number): Promise<Exit> => {
    const started = Date.now();
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`still running after ${timeoutMs} ms; output so far: ${output}`));
      }, timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, output, ms: Date.now() - started });
      });
    });
  };
  const statusOf = async () =>
    (await group.status()) as unknown as {
      node: string;
      pid: number;
      members: string[];
      appliedThrough: number;
      stateDigest: string;
    }[];

  beforeAll(async () => {
    server = await startNatsServer();
    const begun = Date.now();
    group = await ProcessCluster.start(GROUP, peers, [server.url], (id) =>
      joining.has(id) ? ['--join'] : [],
    );
    await until('a leader of a, b, c', async () => (await group.oneLeader()) !== undefined, 30_000);
    firstLeaderMs = Date.now() - begun;
  }, 60_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
  });

  it('a fresh group of three empty directories elects a leader at once, with no flag', () => {
    // Three node processes start, admit each other and elect: a few seconds on a busy machine.
    expect(firstLeaderMs).toBeLessThan(15_000);
  });

  it('c, its directory deleted, is refused with the way to replace it; no acknowledged write is lost', async () => {
    for (let i = 0; i < 200; i++) await put(i);
    await group.kill('b');
    // Acknowledged by a and c alone.
    for (let i = 200; i < 250; i++) await put(i);
    await group.kill('a');
    await group.kill('c');
    await rm(join(group.dir, 'c'), { recursive: true, force: true });
    // c starts first: nobody answers (a and b are down), so it waits, without voting.
    const waiting = startCaptured('c');
    const refusedLate = exitOf(waiting, 40_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(waiting.exitCode).toBeNull();
    group.startNode('b');
    // b knows c voted: c is refused as soon as it hears b.
    const late = await refusedLate;
    expect(late.code, late.output).not.toBe(0);
    const refusal =
      /node c of group lostdisk has no acceptor state in .*: its promises and accepted values are lost, so it must not vote again; replace it: run `synod group leave --group lostdisk c`, then start c again with --join/;
    expect(late.output).toMatch(refusal);
    const identity = JSON.parse(
      await readFile(join(group.dir, 'c', 'synod.identity.json'), 'utf8'),
    ) as { state: string };
    expect(identity.state).toBe('waiting');
    // Started again once b runs, it is refused at once.
    const again = await exitOf(startCaptured('c'), 20_000);
    expect(again.code, again.output).not.toBe(0);
    expect(again.output).toMatch(refusal);
    expect(again.output.trim().split('\n')).toHaveLength(1);
    // a comes back: with b, a majority; a holds the 50 writes b missed.
    group.startNode('a');
    await until(
      'a leader of a and b',
      async () => (await group.oneLeader(2)) !== undefined,
      30_000,
    );
    await everyKeyThere(250);
  }, 100_000);

  it('replaced (group leave, then --join on its empty directory), c becomes a member and catches up', async () => {
    const left = await run(process.execPath, [
      SYNOD,
      'group',
      'leave',
      '--group',
      GROUP,
      '--nats',
      server.url,
      'c',
    ]);
    expect(left.stdout).toMatch(/^members of lostdisk: a, b \(from slot \d+\)\n$/);
    joining.add('c');
    group.startNode('c');
    await until(
      'c is a member again, with the same applied slot and state as a and b',
      async () => {
        const nodes = await statusOf();
        return (
          nodes.length === 3 &&
          nodes.every((n) => n.members.join(',') === 'a,b,c') &&
          new Set(nodes.map((n) => n.appliedThrough)).size === 1 &&
          new Set(nodes.map((n) => n.stateDigest)).size === 1
        );
      },
      45_000,
    );
    await everyKeyThere(250);
  }, 90_000);

  it('a second `synod node start` on a directory in use exits at once with a clear message', async () => {
    const before = (await statusOf()).find((n) => n.node === 'a')!;
    const second = await exitOf(startCaptured('a'), 20_000);
    expect(second.code, second.output).not.toBe(0);
    expect(second.output).toMatch(
      new RegExp(`data directory .*/a is in use by another synod node \\(pid ${before.pid} `),
    );
    // The node that holds the directory is untouched.
    const after = (await statusOf()).find((n) => n.node === 'a');
    expect(after?.pid).toBe(before.pid);
  }, 30_000);

  it('a node that waits for its peers (it votes only once they recorded it) stops at once on SIGTERM', async () => {
    const alone = startCaptured('x', 'waits', ['x', 'y', 'z']);
    const exit = exitOf(alone, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(alone.exitCode).toBeNull();
    const asked = Date.now();
    alone.kill('SIGTERM');
    const stopped = await exit;
    expect(stopped.code, stopped.output).toBe(0);
    expect(Date.now() - asked).toBeLessThan(3_000);
  }, 30_000);
});
