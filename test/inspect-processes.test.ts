// Issue 6 with real processes: three `synod node start` processes over a real nats-server,
// watched by `synod inspect` in a terminal (tmux), as JSON, and in headless Chromium.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeStatus, ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const run = promisify(execFile);
const peers = ['a', 'b', 'c'];
/** Where the browser test keeps its screenshot (test/artifacts is not committed). */
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('synod inspect against node processes', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  let seq = 0;
  const synod = (...args: string[]) =>
    run(process.execPath, [SYNOD, ...args, '--group', 'watched', '--nats', server.url]);
  /** `synod inspect` on the group as a process of its own; `output()` is what it printed so far. */
  const inspectProcess = (...args: string[]) => {
    const child = spawn(process.execPath, [
      ...[SYNOD, 'inspect', '--group', 'watched', '--nats', server.url],
      ...args,
    ]);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    return { child, output: () => out };
  };
  const put = (key: string) =>
    group.ask('synod.watched.write', {
      clientId: 'inspect-test',
      seq: ++seq,
      command: { op: 'put', key, value: 'v' },
    });

  beforeAll(async () => {
    server = await startNatsServer();
    group = await ProcessCluster.start('watched', peers, [server.url], ['--metrics-port', '0']);
    await until(
      'a leader all nodes agree on',
      async () => (await group.oneLeader()) !== undefined,
      20_000,
    );
  }, 30_000);
  afterAll(async () => {
    await group.stop();
    await server.stop();
  });

  it('streams node summaries and actor events as JSON lines with --json', async () => {
    const { child, output } = inspectProcess('--json');
    // The complete lines printed so far.
    const lines = (): Record<string, unknown>[] =>
      output()
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    try {
      await until(
        'a summary of every node',
        async () => peers.every((id) => lines().some((l) => l.type === 'node' && l.node === id)),
        10_000,
      );
      expect((await put('json-key')).ok).toBe(true);
      await until(
        'an acceptor event',
        async () =>
          lines().some(
            (l) =>
              l.type === 'event' &&
              String(l.actor).startsWith('acceptor#') &&
              l.event === 'message',
          ),
        10_000,
      );
      const summary = lines().find((l) => l.type === 'node')!;
      expect(summary).toMatchObject({
        role: expect.any(String),
        ballot: expect.any(String),
        commitIndex: expect.any(Number),
      });
    } finally {
      await stopChild(child);
    }
  }, 30_000);

  it('shows a leader change in the terminal view (tmux) when the leader is killed', async () => {
    const socket = `synod-test-${process.pid}`;
    const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
    await tmux(
      'new-session',
      '-d',
      '-s',
      'inspect',
      '-x',
      '160',
      '-y',
      '50',
      `${process.execPath} ${SYNOD} inspect --group watched --nats ${server.url}`,
    );
    const screen = async () => (await tmux('capture-pane', '-p', '-t', 'inspect')).stdout;
    const leaderOnScreen = async () => /leader (\S+)\s+nodes/.exec(await screen())?.[1];
    let first: string | undefined;
    try {
      first = await group.oneLeader();
      await until(
        'the terminal view shows the leader',
        async () => (await leaderOnScreen()) === first,
        15_000,
      );
      const text = await screen();
      for (const id of peers)
        expect(text).toMatch(new RegExp(`^${id}\\s+(leader|follower)\\s`, 'm'));
      expect(text).toMatch(/leader:\S+/); // each node's leader machine and its state
      await group.kill(first!);
      let second: string | undefined;
      await until(
        'the terminal view shows a new leader',
        async () => {
          second = await leaderOnScreen();
          return second !== undefined && second !== first && second !== '(none)';
        },
        20_000,
      );
      expect(peers).toContain(second);
      await until(
        'the killed node shows as gone',
        async () => new RegExp(`^${first}\\s+gone\\s`, 'm').test(await screen()),
        10_000,
      );
    } finally {
      await tmux('kill-server').catch(() => undefined);
      if (first !== undefined) group.startNode(first);
    }
  }, 60_000);

  it('serves a web view: the leader, and a write advancing the commit index on every node card (headless Chromium)', async () => {
    await until(
      'a leader all nodes agree on',
      async () => (await group.oneLeader()) !== undefined,
      20_000,
    );
    const { child, output } = inspectProcess('--web', '127.0.0.1:0');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      await until('the web view address', async () => /web view: (http\S+)/.test(output()), 10_000);
      const url = /web view: (http\S+)/.exec(output())![1]!;
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(url);
      const leader = await group.oneLeader();
      await page.waitForSelector(`section[data-node="${leader}"][data-role="leader"]`, {
        timeout: 15_000,
      });
      expect(await page.textContent('#leader')).toBe(leader);
      for (const id of peers)
        await page.waitForSelector(`section[data-node="${id}"]`, { timeout: 10_000 });
      const commits = async () =>
        Object.fromEntries(
          await Promise.all(
            peers.map(
              async (id) =>
                [id, Number(await page.textContent(`section[data-node="${id}"] .commit`))] as const,
            ),
          ),
        );
      const before = await commits();
      const answer = await put('web-key');
      expect(answer.ok).toBe(true);
      const slot = answer.slot as number;
      await until(
        'every card shows the write committed',
        async () => {
          const now = await commits();
          return peers.every((id) => now[id]! >= slot && now[id]! > before[id]!);
        },
        10_000,
      );
      await page.waitForSelector('.slot.applied');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'inspect-web.png'), fullPage: true });
    } finally {
      await browser.close();
      await stopChild(child);
    }
  }, 60_000);

  it("reports each node's metrics in synod status, and serves them to Prometheus", async () => {
    await until(
      'a leader all nodes agree on',
      async () => (await group.oneLeader()) !== undefined,
      20_000,
    );
    expect((await put('metrics-key')).ok).toBe(true);
    const nodes = JSON.parse((await synod('status', '--json')).stdout) as (NodeStatus & {
      metrics: { port: number; commits: number; fsyncs: number; leaderChanges: number };
    })[];
    expect(nodes.map((n) => n.node)).toEqual(peers);
    const leader = nodes.find((n) => n.leader === n.node)!;
    expect(leader.metrics.commits).toBeGreaterThanOrEqual(1);
    for (const n of nodes) expect(n.metrics.fsyncs, n.node).toBeGreaterThan(0);
    const text = (await synod('status')).stdout;
    expect(text).toMatch(
      /^node +commits +commit ms +fsyncs +fsync ms +leader chg +reconnects +metrics$/m,
    );
    const scraped = await (await fetch(`http://127.0.0.1:${leader.metrics.port}/metrics`)).text();
    expect(scraped).toMatch(
      new RegExp(
        `^synod_commit_latency_seconds_count\\{group="watched",node="${leader.node}"\\} [1-9]`,
        'm',
      ),
    );
    expect(scraped).toMatch(/^synod_fsync_latency_seconds_bucket\{/m);
  }, 30_000);
});

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))]);
  child.kill('SIGKILL');
}
