// A node's data directory with real parts: node runtimes over a real nats-server, each with its
// fsynced store. The directory is locked (one process, one runtime), it records the group, the
// node and an incarnation, and a node whose directory lost its acceptor state does not vote.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, waitFor, whileLeaderMoves } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DataDirError,
  IDENTITY_FILE,
  type Identity,
  identitySubject,
  LOCK_FILE,
  NodeRuntime,
  type NodeRuntimeOptions,
} from '../src/index.js';
import { FAST_TIMING } from './node-group.js';

type Extra = Partial<Omit<NodeRuntimeOptions, 'group' | 'nodeId' | 'transport' | 'dataDir'>>;

let server: NatsServer;
let root: string;
let client: Transport;
const running = new Set<NodeRuntime>();

/** Starts a runtime; its transport is closed with it, or at once if it does not start. */
async function start(
  group: string,
  nodeId: string,
  dataDir: string,
  extra: Extra = {},
): Promise<NodeRuntime> {
  const transport = await connectNats({ servers: server.url, name: `${group}-${nodeId}` });
  try {
    const runtime = await NodeRuntime.start({
      leaderTiming: FAST_TIMING,
      peers: [nodeId],
      ...extra,
      group,
      nodeId,
      transport,
      dataDir,
    });
    running.add(runtime);
    return runtime;
  } catch (error) {
    await transport.close();
    throw error;
  }
}

async function stop(runtime: NodeRuntime): Promise<void> {
  running.delete(runtime);
  await runtime.stop();
}

/** The reason start() gave up: its DataDirError. */
async function refusal(starting: Promise<unknown>): Promise<DataDirError> {
  const error = await starting.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataDirError);
  return error as DataDirError;
}

const identityOf = async (dir: string): Promise<Identity> =>
  JSON.parse(await readFile(join(dir, IDENTITY_FILE), 'utf8')) as Identity;

async function ask(
  group: string,
  subject: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  return whileLeaderMoves(async () => {
    const reply = await client.request(
      `synod.${group}.${subject}`,
      new TextEncoder().encode(JSON.stringify(body)),
      { timeoutMs: 10_000 },
    );
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  });
}

/** A pid no process has: one that just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

beforeAll(async () => {
  server = await startNatsServer();
  root = await mkdtemp(join(tmpdir(), 'synod-data-dir-'));
  client = await connectNats({ servers: server.url, name: 'client' });
});
afterAll(async () => {
  for (const runtime of running) await runtime.stop();
  await client?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('the identity of a data directory', () => {
  it('is written at the first start, votes once the founders admitted each other, and is kept', async () => {
    const peers = ['a', 'b', 'c'];
    const dir = (id: string) => join(root, 'fresh', id);
    // One after another, as the demo and the in-process tests do: a start does not wait for
    // founders that are not running yet.
    const nodes: NodeRuntime[] = [];
    const begun = Date.now();
    for (const id of peers) nodes.push(await start('fresh', id, dir(id), { peers }));
    await waitFor(
      'one leader',
      async () => nodes.every((n) => n.leader !== undefined && n.leader === nodes[0]!.leader),
      10_000,
      20,
    );
    expect(Date.now() - begun).toBeLessThan(5_000);
    const identities = await Promise.all(peers.map((id) => identityOf(dir(id))));
    for (const [i, identity] of identities.entries()) {
      expect(identity).toMatchObject({
        format: 1,
        group: 'fresh',
        node: peers[i],
        state: 'voting',
      });
      // Each founder witnessed the others' incarnations.
      for (const other of identities.filter((x) => x !== identity))
        expect(identity.known[other.node]?.incarnation).toBe(other.incarnation);
    }
    expect(new Set(identities.map((x) => x.incarnation)).size).toBe(3);
    // A restart with its directory asks nothing and keeps its incarnation.
    await stop(nodes[2]!);
    const again = await start('fresh', 'c', dir('c'), { peers });
    expect((await identityOf(dir('c'))).incarnation).toBe(identities[2]!.incarnation);
    await waitFor('c follows the leader again', async () => again.leader !== undefined, 10_000, 20);
    for (const node of [nodes[0]!, nodes[1]!, again]) await stop(node);
  }, 30_000);

  it("refuses another group's or another node's directory, naming whose it is", async () => {
    const dir = join(root, 'solo');
    await stop(await start('solo', 'x', dir));
    const otherNode = await refusal(start('solo', 'y', dir));
    expect(otherNode.code).toBe('FOREIGN');
    expect(otherNode.message).toMatch(
      /belongs to node x of group solo .*not to node y of group solo/,
    );
    const otherGroup = await refusal(start('elsewhere', 'x', dir));
    expect(otherGroup.message).toMatch(/belongs to node x of group solo/);
    // A directory from before identity files, holding another group's acceptor log.
    const legacy = join(root, 'legacy');
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, 'old.acceptor.log'), '');
    expect((await refusal(start('solo', 'x', legacy))).message).toMatch(
      /holds another group's acceptor log \(old\.acceptor\.log\)/,
    );
  }, 20_000);

  it('refuses a malformed identity file with a clear error, and never treats it as empty', async () => {
    const dir = join(root, 'damaged');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, IDENTITY_FILE), '{"format":1,"group":"solo",');
    const truncated = await refusal(start('solo', 'x', dir));
    expect(truncated.code).toBe('MALFORMED');
    expect(truncated.message).toMatch(
      /synod\.identity\.json is not a valid synod identity file \(not JSON\)/,
    );
    await writeFile(
      join(dir, IDENTITY_FILE),
      JSON.stringify({
        format: 1,
        group: 'solo',
        node: 'x',
        incarnation: 'short',
        state: 'voting',
      }),
    );
    expect((await refusal(start('solo', 'x', dir))).message).toMatch(/no valid "incarnation"/);
  }, 20_000);

  it('refuses a voting identity whose acceptor log is gone', async () => {
    const dir = join(root, 'no-log');
    await stop(await start('solo', 'x', dir));
    await rm(join(dir, 'solo.acceptor.log'));
    const error = await refusal(start('solo', 'x', dir));
    expect(error.code).toBe('LOG_MISSING');
    expect(error.message).toMatch(/synod group leave --group solo x/);
  }, 20_000);
});

describe('the lock of a data directory', () => {
  it('refuses a second runtime on the same directory while the first runs, and frees it on stop', async () => {
    const dir = join(root, 'locked');
    const first = await start('solo', 'x', dir);
    const lock = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(process.pid);
    const second = await refusal(start('solo', 'x', dir));
    expect(second.code).toBe('IN_USE');
    expect(second.message).toMatch(
      new RegExp(`data directory .*locked is in use by another synod node \\(pid ${process.pid} `),
    );
    await stop(first);
    await expect(readFile(join(dir, LOCK_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    await stop(await start('solo', 'x', dir));
  }, 20_000);

  it('takes over a stale lock: its process is gone, or its pid now names another process', async () => {
    const dir = join(root, 'stale');
    await stop(await start('solo', 'x', dir));
    const stale = (pid: number, startTicks: string) =>
      writeFile(
        join(dir, LOCK_FILE),
        JSON.stringify({
          pid,
          hostname: hostname(),
          bootId: null,
          startTicks,
          startedAt: '2020-01-01T00:00:00.000Z',
          token: 'killed-with-sigkill',
        }),
      );
    await stale(await deadPid(), '1');
    const taken = await start('solo', 'x', dir);
    const lock = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(process.pid);
    await stop(taken);
    // This very pid, but a process that started at another time: the pid was reused.
    await stale(process.pid, '1');
    await stop(await start('solo', 'x', dir));
    // A lock file left empty by a crash between creating and writing it.
    await writeFile(join(dir, LOCK_FILE), '');
    await utimes(
      join(dir, LOCK_FILE),
      new Date(Date.now() - 60_000),
      new Date(Date.now() - 60_000),
    );
    await stop(await start('solo', 'x', dir));
  }, 20_000);
});

describe('a node whose data directory lost its acceptor state', () => {
  const peers = ['a', 'b', 'c'];
  const dir = (id: string) => join(root, 'lost', id);
  const nodes = new Map<string, NodeRuntime>();
  const launch = async (id: string, extra: Extra = {}) => {
    nodes.set(id, await start('lost', id, dir(id), { peers, requestTimeoutMs: 3_000, ...extra }));
  };
  let seq = 0;
  const put = async (key: string) => {
    const answer = await ask('lost', 'write', {
      clientId: 'writer',
      seq: ++seq,
      command: { op: 'put', key, value: `v-${key}` },
    });
    expect(answer, key).toMatchObject({ ok: true });
  };
  const allThere = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const got = await ask('lost', 'read', {
        command: { op: 'get', key: `k${i}` },
        consistency: 'strong',
      });
      expect(got, `k${i}`).toMatchObject({ ok: true, result: { found: true, value: `v-k${i}` } });
    }
  };

  it('is refused with the way to replace it, and once replaced (leave, --join) catches up', async () => {
    for (const id of peers) await launch(id);
    for (let i = 0; i < 20; i++) await put(`k${i}`);
    await stop(nodes.get('c')!);
    await rm(dir('c'), { recursive: true, force: true });
    const error = await refusal(start('lost', 'c', dir('c'), { peers }));
    expect(error.code).toBe('LOST_DISK');
    expect(error.message).toMatch(
      /node c of group lost has no acceptor state in .*: .*run `synod group leave --group lost c`, then start c again with --join/,
    );
    await allThere(20);
    const left = await ask('lost', 'write', {
      clientId: 'operator',
      seq: 1,
      command: { op: 'leave', node: 'c' },
    });
    expect(left).toMatchObject({ ok: true, result: { members: ['a', 'b'] } });
    // Without --join it is told to use it; with --join it joins as a new incarnation.
    expect((await refusal(start('lost', 'c', dir('c'), { peers }))).code).toBe('NOT_A_MEMBER');
    await launch('c', { join: true });
    const c = nodes.get('c')!;
    await waitFor(
      'c is a member again and has applied what the others have',
      async () => {
        const a = nodes.get('a')!;
        return (
          c.status().members.join(',') === 'a,b,c' &&
          c.appliedThrough === a.appliedThrough &&
          c.status().stateDigest === a.status().stateDigest
        );
      },
      20_000,
      50,
    );
    await allThere(20);
  }, 60_000);

  it('a node started with --join whose id is still a member is told to leave first', async () => {
    await stop(nodes.get('c')!);
    await rm(dir('c'), { recursive: true, force: true });
    const error = await refusal(start('lost', 'c', dir('c'), { peers, join: true }));
    expect(error.code).toBe('STILL_A_MEMBER');
    expect(error.message).toMatch(/run `synod group leave --group lost c` first/);
    for (const id of ['a', 'b']) await stop(nodes.get(id)!);
  }, 30_000);
});

describe('a node that waits to be admitted', () => {
  it('does not vote, answers clients as a node that knows no leader, ignores malformed identity messages, and stops promptly', async () => {
    const peers = ['a', 'b', 'c'];
    // Whatever it says to peers: an election would have sent prepares within this time.
    const toPeers: string[] = [];
    const listen = ['synod.alone.acceptor', 'synod.alone.learn', 'synod.alone.node.*'].map((s) =>
      client.subscribe(s, (m) => {
        toPeers.push(m.subject);
      }),
    );
    const waiting = await start('alone', 'a', join(root, 'alone', 'a'), { peers });
    // Its peers never start: it is not admitted, so it neither votes nor proposes.
    await new Promise((resolve) => setTimeout(resolve, 800));
    for (const subscription of listen) subscription.unsubscribe();
    expect(toPeers).toEqual([]);
    expect(waiting.leader).toBeUndefined();
    // It still answers clients, as a node that knows no leader.
    const status = await client.gather('synod.alone.status', new Uint8Array(0), {
      timeoutMs: 1_000,
      map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>,
      until: (r) => r.length > 0,
    });
    expect(status.replies).toMatchObject([{ node: 'a', leader: null }]);
    expect((await identityOf(join(root, 'alone', 'a'))).state).toBe('waiting');
    // Bad identity requests get no answer; a good one does (a waiting node witnesses too).
    const bad = ['not json', '{"type":"identity-request","v":1,"group":"alone"}', '[]'];
    for (const body of bad) {
      const answers = await client.gather(
        identitySubject('alone'),
        new TextEncoder().encode(body),
        {
          timeoutMs: 150,
          map: (m) => m,
        },
      );
      expect(answers.replies, body).toHaveLength(0);
    }
    const good = await client.gather(
      identitySubject('alone'),
      new TextEncoder().encode(
        JSON.stringify({
          type: 'identity-request',
          v: 1,
          group: 'alone',
          node: 'b',
          incarnation: 'b-incarnation-1',
          voting: false,
          join: false,
          founders: peers,
        }),
      ),
      {
        timeoutMs: 1_000,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)),
        until: (r) => r.length > 0,
      },
    );
    expect(good.replies[0]).toMatchObject({
      node: 'a',
      voting: false,
      verdict: 'recorded',
      members: null,
    });
    const stopping = Date.now();
    await stop(waiting);
    expect(Date.now() - stopping).toBeLessThan(1_000);
  }, 20_000);
});
