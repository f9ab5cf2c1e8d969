// Transactions across groups (issue 18): three `synod node start --group north,south` kv
// processes over one nats-server; a `txn` on north's write subject commits through Paxos
// Commit on every replica of both groups, or on none.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SynodClient } from '@synod/client';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, SYNOD, until } from './support/process-cluster.js';

const run = promisify(execFile);

const peers = ['a', 'b', 'c'];
const GROUPS = 'north,south';

interface Answer {
  readonly ok: boolean;
  readonly result?: { committed?: boolean; outcome?: string; found?: boolean; value?: string };
  readonly error?: { code: string; message: string };
}

function txnHelpers(cluster: () => ProcessCluster) {
  let seq = 0;
  const clientId = `txn-test-${process.pid}`;
  return {
    /** A transaction on north's write subject (north coordinates). */
    txn: async (ops: unknown[], timeoutMs = 15_000): Promise<Answer> =>
      (await cluster().ask(
        'synod.north.write',
        { clientId, seq: ++seq, command: { op: 'txn', ops } },
        timeoutMs,
      )) as unknown as Answer,
    /** What one replica holds for `key` (its own state, no consensus). */
    replica: async (group: string, id: string, key: string): Promise<Answer> =>
      (await cluster().ask(`synod.${group}.node.${id}.read`, {
        command: { op: 'get', key },
        consistency: 'optimistic',
      })) as unknown as Answer,
  };
}

/** Every replica of `group` holds `value` for `key` (undefined: absent), once it has applied. */
async function everyReplica(
  cluster: ProcessCluster,
  group: string,
  key: string,
  value: string | undefined,
): Promise<void> {
  const { replica } = txnHelpers(() => cluster);
  await until(
    `${group}/${key} = ${value} on every replica`,
    async () => {
      for (const id of peers) {
        const a = await replica(group, id, key).catch(() => undefined);
        if (a?.ok !== true) return false;
        if (value === undefined ? a.result?.found !== false : a.result?.value !== value)
          return false;
      }
      return true;
    },
    20_000,
  );
}

/**
 * A nats-server and the three `--group north,south` processes, started before a describe
 * block's tests (with these flags and environment) and stopped after; `set` receives them.
 */
function withCluster(
  set: (cluster: ProcessCluster) => void,
  extraArgs: readonly string[] = [],
  env: Record<string, string> = {},
): void {
  let server: NatsServer | undefined;
  let cluster: ProcessCluster | undefined;
  beforeAll(async () => {
    server = await startNatsServer();
    const started = await ProcessCluster.start(GROUPS, peers, [server.url], extraArgs, env);
    cluster = started;
    set(started);
    for (const group of ['north', 'south'])
      await until(
        `a leader of ${group}`,
        async () => (await started.oneLeader(3, group)) !== undefined,
        20_000,
      );
  }, 40_000);
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });
}

describe.each(['paxos-commit', 'faster-paxos-commit', '2pc'])(
  'a transaction across two groups, through %s',
  (protocol) => {
    let cluster: ProcessCluster;
    const { txn, replica } = txnHelpers(() => cluster);
    withCluster((c) => (cluster = c), ['--commit-protocol', protocol]);

    it('commits on every replica of both groups', async () => {
      const answer = await txn([
        { group: 'north', op: 'put', key: 'x', value: 'x1' },
        { group: 'south', op: 'put', key: 'y', value: 'y1' },
        { group: 'south', op: 'cas', key: 'z', expect: null, value: 'z1' },
      ]);
      expect(answer).toMatchObject({ ok: true, result: { committed: true, outcome: 'committed' } });
      await everyReplica(cluster, 'north', 'x', 'x1');
      await everyReplica(cluster, 'south', 'y', 'y1');
      await everyReplica(cluster, 'south', 'z', 'z1');
      // Committed means a linearizable read anywhere sees it at once.
      const read = await cluster.ask('synod.south.read', {
        command: { op: 'get', key: 'y' },
        consistency: 'linearizable',
      });
      expect(read).toMatchObject({ ok: true, result: { value: 'y1' } });
    });

    it('one group votes aborted (its cas fails): nothing is applied in the other', async () => {
      const answer = await txn([
        { group: 'north', op: 'put', key: 'x', value: 'x2' },
        { group: 'south', op: 'cas', key: 'z', expect: 'not-z1', value: 'z2' },
      ]);
      expect(answer).toMatchObject({ ok: true, result: { committed: false, outcome: 'aborted' } });
      // The abort is decided; give the replicas time to apply it, then nothing changed.
      await everyReplica(cluster, 'south', 'z', 'z1');
      await everyReplica(cluster, 'north', 'x', 'x1');
      // And the keys are free again: a plain write to x goes through.
      const put = await cluster.ask('synod.north.write', {
        clientId: 'plain',
        seq: 1,
        command: { op: 'put', key: 'x', value: 'x3' },
      });
      expect(put).toMatchObject({ ok: true });
    });

    it('SynodClient.txn commits, and its reads see the result', async () => {
      const client = new SynodClient({ group: 'south', transport: cluster.transport });
      const answer = await client.txn([
        { group: 'south', op: 'put', key: 'from-client', value: 's' },
        { group: 'north', op: 'delete', key: 'x' },
      ]);
      expect(answer.result).toMatchObject({
        committed: true,
        txid: expect.stringMatching(/^south\./),
      });
      expect((await client.get('from-client', 'linearizable')).result).toEqual({
        found: true,
        value: 's',
      });
      await everyReplica(cluster, 'north', 'x', undefined);
    });

    it('synod kv txn commits, and says so', async () => {
      const ops = [
        { group: 'north', op: 'put', key: 'cli', value: 'n' },
        { group: 'south', op: 'put', key: 'cli', value: 's' },
      ];
      const { stdout } = await run(process.execPath, [
        SYNOD,
        'kv',
        'txn',
        '--group',
        'north',
        JSON.stringify(ops),
        '--nats',
        cluster.natsUrls[0]!,
      ]);
      expect(stdout.trim()).toMatch(/^committed \(north\.\d+\)$/);
      await everyReplica(cluster, 'south', 'cli', 's');
      const bad = await run(process.execPath, [SYNOD, 'kv', 'txn', '--group', 'north', '{}']).catch(
        (error: { code: number; stderr: string }) => error,
      );
      expect(bad).toMatchObject({ code: 2 });
      expect((bad as { stderr: string }).stderr).toContain('a JSON array of writes');
    });

    it("refuses a bad transaction with a clear error, and nodes' own entries from clients", async () => {
      const bad = await txn([{ group: 'no such.group', op: 'put', key: 'k', value: 'v' }]);
      expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(bad.error?.message).toContain('group');
      const forged = await cluster.ask('synod.south.write', {
        clientId: 'forger',
        seq: 1,
        command: { op: 'txn_outcome', txid: 'north.1', outcome: 'committed' },
      });
      expect(forged).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      const a = await replica('south', 'a', 'y');
      expect(a).toMatchObject({ ok: true, result: { value: 'y1' } });
    });
  },
);

describe('the coordinator SIGKILLed between prepare and outcome', () => {
  let cluster: ProcessCluster;
  const { txn } = txnHelpers(() => cluster);
  // Every node kills itself (SIGKILL) the moment a coordinator of its knows an outcome,
  // before it tells any RM or the client; restarted, it runs without the failpoint.
  withCluster((c) => (cluster = c), [], { SYNOD_FAILPOINT: 'commit-coordinator-decided' });

  it('the RMs learn the outcome from a new coordinator, and it is the same everywhere', async () => {
    const coordinator = (await cluster.oneLeader(3, 'north'))!;
    const answer = await txn(
      [
        { group: 'north', op: 'put', key: 'p', value: 'p1' },
        { group: 'south', op: 'put', key: 'q', value: 'q1' },
      ],
      3_000,
    ).catch((error: Error) => ({ ok: false, error: { code: 'TIMEOUT', message: error.message } }));
    // The coordinator died before answering: the client hears nothing.
    expect(answer.ok).toBe(false);
    const child = cluster.processes.get(coordinator)!;
    await until('the coordinator is dead', async () => child.signalCode === 'SIGKILL', 10_000);
    // Every group prepared, so the outcome was commit; the survivors' RMs ask, the new
    // north leader takes over by phase 1 and finds every vote prepared.
    const alive = peers.filter((id) => id !== coordinator);
    const { replica } = txnHelpers(() => cluster);
    for (const [group, key, value] of [
      ['north', 'p', 'p1'],
      ['south', 'q', 'q1'],
    ] as const)
      await until(
        `${group}/${key} committed on the survivors`,
        async () => {
          for (const id of alive) {
            const a = await replica(group, id, key).catch(() => undefined);
            if (a?.result?.value !== value) return false;
          }
          return true;
        },
        20_000,
      );
    // The client's retry (same clientId and seq) gets the same transaction's outcome.
    cluster.startNode(coordinator);
    await everyReplica(cluster, 'north', 'p', 'p1');
    await everyReplica(cluster, 'south', 'q', 'q1');
  });
});

describe("a group's RM SIGKILLed once its vote is in its log, before it proposes it", () => {
  let cluster: ProcessCluster;
  const { txn } = txnHelpers(() => cluster);
  withCluster((c) => (cluster = c), [], { SYNOD_FAILPOINT: 'commit-rm-prepared:south' });

  it("south's next leader finds the vote; the transaction ends alike in both groups and frees its keys", async () => {
    const rm = (await cluster.oneLeader(3, 'south'))!;
    const answer = await txn(
      [
        { group: 'north', op: 'put', key: 'r', value: 'r1' },
        { group: 'south', op: 'put', key: 's', value: 's1' },
      ],
      5_000,
    ).catch((error: Error) => ({ ok: false, error: { code: 'TIMEOUT', message: error.message } }));
    const child = cluster.processes.get(rm)!;
    await until('the RM is dead', async () => child.signalCode === 'SIGKILL', 10_000);
    cluster.startNode(rm);
    // Once every replica has applied the outcome, both keys are free and say the same thing.
    const { replica } = txnHelpers(() => cluster);
    let outcome: boolean | undefined;
    await until(
      'the outcome applied on every replica of both groups',
      async () => {
        const seen = new Set<string>();
        for (const [group, key] of [
          ['north', 'r'],
          ['south', 's'],
        ] as const)
          for (const id of peers) {
            const a = await replica(group, id, key).catch(() => undefined);
            if (a?.ok !== true) return false; // held, or the node is starting
            seen.add(String(a.result?.found === true));
          }
        if (seen.size !== 1) return false;
        outcome = seen.has('true');
        return true;
      },
      30_000,
    );
    console.log(`RM killed after prepare: ${outcome ? 'committed' : 'aborted'} everywhere`);
    if (answer.ok) expect((answer as Answer).result?.committed).toBe(outcome);
  });
});
