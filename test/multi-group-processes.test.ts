// Several groups in one node process (issue 18): three `synod node start --group north,south`
// processes over one nats-server. Each group has its own leader, log and state; each has its
// own directory under DIR; both go on through a SIGKILL of a node and catch it up after.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const run = promisify(execFile);
const peers = ['a', 'b', 'c'];
const GROUPS = ['north', 'south'];

interface StatusRow {
  readonly node: string;
  readonly leader: string | null;
  readonly appliedThrough: number;
}

describe('one node process serving two groups', () => {
  let server: NatsServer;
  let cluster: ProcessCluster;
  const synod = (group: string, ...args: string[]) =>
    run(process.execPath, [SYNOD, ...args, '--group', group, '--nats', server.url]);
  const status = async (group: string): Promise<StatusRow[]> =>
    JSON.parse((await synod(group, 'status', '--json')).stdout) as StatusRow[];
  const leaderOf = async (group: string, count = 3): Promise<string | undefined> => {
    const rows = await status(group);
    const leaders = new Set(rows.map((r) => r.leader));
    return rows.length === count && leaders.size === 1 && !leaders.has(null)
      ? rows[0]!.leader!
      : undefined;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    cluster = await ProcessCluster.start(GROUPS.join(','), peers, [server.url]);
    for (const group of GROUPS)
      await until(
        `a leader of ${group}`,
        async () => (await leaderOf(group)) !== undefined,
        20_000,
      );
  }, 40_000);
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });

  it('keeps each group its own state, log and directory', async () => {
    expect((await synod('north', 'kv', 'put', 'k', 'from-north')).stdout).toMatch(/^OK/);
    expect((await synod('south', 'kv', 'put', 'k', 'from-south')).stdout).toMatch(/^OK/);
    expect((await synod('north', 'kv', 'get', 'k')).stdout.trim()).toBe('from-north');
    expect((await synod('south', 'kv', 'get', 'k')).stdout.trim()).toBe('from-south');
    for (const id of peers)
      for (const group of GROUPS)
        expect(
          existsSync(join(cluster.dir, id, group, `${group}.acceptor.log`)),
          `${id}/${group}`,
        ).toBe(true);
  });

  it("both groups go on through a SIGKILL of the north leader's process, which catches up both", async () => {
    const victim = (await leaderOf('north'))!;
    await cluster.kill(victim);
    for (const [i, group] of GROUPS.entries())
      await until(
        `a write to ${group} without ${victim}`,
        async () => {
          try {
            const { stdout } = await synod(group, 'kv', 'put', 'after', `${group}-${i}`);
            return /^OK/.test(stdout);
          } catch {
            return false; // no leader yet: the group is electing one
          }
        },
        20_000,
      );
    cluster.startNode(victim);
    for (const group of GROUPS)
      await until(
        `${victim} caught up in ${group}`,
        async () => {
          const rows = await status(group);
          const applied = new Set(rows.map((r) => r.appliedThrough));
          return rows.length === 3 && applied.size === 1;
        },
        20_000,
      );
    expect(
      (await synod('south', 'kv', 'get', 'after', '--consistency', 'optimistic')).stdout.trim(),
    ).toBe('south-1');
  });

  it('a node stopped with SIGTERM while both groups take writes exits 0, each group closing only its own share of the connection', async () => {
    let writing = true;
    let seq = 0;
    const load = Promise.all(
      GROUPS.map(async (group) => {
        while (writing)
          await cluster
            .ask(
              `synod.${group}.write`,
              {
                clientId: `stop-${group}`,
                seq: ++seq,
                command: { op: 'put', key: 'k', value: `${seq}` },
              },
              2_000,
            )
            .catch(() => undefined);
      }),
    );
    // The leader of north: its host stops while it still leads and sends.
    for (const id of [(await leaderOf('north'))!]) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const child = cluster.processes.get(id)!;
      const exited = new Promise<[number | null, string | null]>((resolve) =>
        child.once('exit', (code, signal) => resolve([code, signal])),
      );
      child.kill('SIGTERM');
      expect(await exited, `${id}'s exit`).toEqual([0, null]);
      cluster.startNode(id);
      for (const group of GROUPS)
        await until(
          `a leader of ${group} again`,
          async () => (await leaderOf(group)) !== undefined,
          20_000,
        );
    }
    writing = false;
    await load;
  }, 90_000);

  it('refuses a group named twice, and SQL tables not given to one group, saying why', async () => {
    const start = (...args: string[]) =>
      run(process.execPath, [
        SYNOD,
        'node',
        'start',
        '--id',
        'z',
        '--peers',
        'z',
        '--data',
        join(cluster.dir, 'refused'),
        '--nats',
        server.url,
        ...args,
      ]).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
      );
    const twice = await start('--group', 'north,north');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('--group names a group twice');
    const sql = (replicate: string, groups = 'north,south') =>
      start('--group', groups, '--machine', 'sql', '--replicate', replicate);
    const unnamed = await sql('accounts');
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toContain(
      "--replicate accounts: a node of several groups names each table's group, as GROUP:TABLE (north:accounts)",
    );
    const stranger = await sql('east:accounts');
    expect(stranger.code).toBe(2);
    expect(stranger.stderr).toContain('east is not one of --group north,south');
    const both = await sql('north:accounts,south:accounts');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--replicate names accounts for north and south');
    const database = await sql('north:accounts', 'north,postgres');
    expect(database.code).toBe(2);
    expect(database.stderr).toContain('name no group "postgres"');
  });
});
