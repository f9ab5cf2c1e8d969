// pg_paxos's paxos_join_group with real processes: a nats-server and `synod node start
// --machine sql` processes, each with its embedded PostgreSQL. A fourth node started with
// --join becomes a member and gets the replicated table and its rows from the log; then a
// founder leaves (`synod group leave`), two nodes are killed with SIGKILL, and the two left
// still decide: the quorums moved to the new members.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const founders = ['a', 'b', 'c'];
const run = promisify(execFile);

describe('a SQL group of real processes changes its members', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  let seq = 0;

  const ask = (subject: string, body: unknown) => group.ask(subject, body);
  const sql = (id: string, text: string) =>
    ask(`synod.joins.node.${id}.write`, {
      clientId: 'membership',
      seq: ++seq,
      command: { op: 'sql', sql: text },
    });
  const rows = async (id: string): Promise<unknown> => {
    const answer = await ask(`synod.joins.node.${id}.read`, {
      command: { op: 'query', sql: 'SELECT x, y FROM coordinates ORDER BY x' },
      consistency: 'strong',
    });
    return (answer.result as { rows?: unknown } | undefined)?.rows;
  };
  const synod = (...args: string[]) =>
    run(process.execPath, [SYNOD, ...args, '--group', 'joins', '--nats', server.url]);
  const statusOf = async () =>
    (await group.status()) as unknown as { node: string; members: string[]; stateDigest: string }[];

  beforeAll(async () => {
    server = await startNatsServer();
    group = await ProcessCluster.start('joins', founders, [server.url], (id) => [
      '--machine',
      'sql',
      ...(id === 'd' ? ['--join'] : []),
    ]);
    for (const id of founders)
      await until(
        `node ${id} answering`,
        async () =>
          (
            await ask(`synod.joins.node.${id}.read`, {
              command: { op: 'query', sql: 'SELECT 1' },
              consistency: 'optimistic',
            })
          ).ok === true,
        60_000,
      );
    expect(
      await ask('synod.joins.node.a.read', {
        command: { op: 'query', sql: 'CREATE TABLE coordinates (x int PRIMARY KEY, y int)' },
        consistency: 'optimistic',
      }),
    ).toMatchObject({ ok: true });
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 30_000);
    await synod('table', 'replicate', 'coordinates');
    expect(await sql('a', 'INSERT INTO coordinates VALUES (3, 3)')).toMatchObject({ ok: true });
    expect(await sql('b', 'INSERT INTO coordinates VALUES (4, 4)')).toMatchObject({ ok: true });
  }, 120_000);
  afterAll(async () => {
    await group?.stop();
    await server?.stop();
  });

  it('a node started with --join becomes a member with the table and its rows', async () => {
    group.startNode('d');
    await until(
      'every node lists d, and d has the same rows',
      async () => {
        const nodes = await statusOf();
        return (
          nodes.length === 4 &&
          nodes.every((n) => n.members.join(',') === 'a,b,c,d') &&
          new Set(nodes.map((n) => n.stateDigest)).size === 1
        );
      },
      60_000,
    );
    expect(await rows('d')).toEqual([
      { x: 3, y: 3 },
      { x: 4, y: 4 },
    ]);
  }, 90_000);

  it('after synod group leave, the remaining members decide with two nodes killed', async () => {
    const left = await synod('group', 'leave', 'a');
    expect(left.stdout).toMatch(/^members of joins: b, c, d \(from slot \d+\)\n$/);
    await group.kill('a');
    await group.kill('b');
    // Under the founders {a, b, c} only c is left: no majority. Under {b, c, d}, c and d are.
    expect(await sql('d', 'INSERT INTO coordinates VALUES (5, 5)')).toMatchObject({ ok: true });
    for (const id of ['c', 'd'])
      expect(await rows(id), id).toEqual([
        { x: 3, y: 3 },
        { x: 4, y: 4 },
        { x: 5, y: 5 },
      ]);
  }, 90_000);

  it('refuses a bad group command before connecting, and a bad node id with a clear error', async () => {
    await expect(synod('group', 'join')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/group join takes one NODE/),
    });
    await expect(synod('group', 'join', 'no.dots')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/node id/),
    });
  }, 30_000);
});
