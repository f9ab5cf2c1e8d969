// Transfers between accounts of two groups while node processes are SIGKILLed (issue 18): each
// transfer is one `txn` with a cas in each group and a marker key in each. Checked on every
// replica at the end: a transfer's markers are in both groups or in neither (all or nothing),
// in both when its client was told committed, in neither when told aborted; the balances
// always sum to what they started with. With a planted bug (an RM that commits on its own
// vote) the same checker finds a transaction applied in one group only.
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];
const GROUPS = ['north', 'south'] as const;
const ACCOUNTS = 3;
const START = 100;

interface Answer {
  readonly ok: boolean;
  readonly result?: { committed?: boolean; found?: boolean; value?: string };
  readonly error?: { code: string; message: string };
}

type Told = 'committed' | 'aborted' | 'unknown';

async function ask(cluster: ProcessCluster, subject: string, body: unknown, timeoutMs = 5_000) {
  return (await cluster.ask(subject, body, timeoutMs).catch((error: Error) => ({
    ok: false,
    error: { code: 'TIMEOUT', message: error.message },
  }))) as unknown as Answer;
}

/** A linearizable read, again while a prepared transaction holds the key (BUSY). */
async function balance(cluster: ProcessCluster, group: string, key: string): Promise<number> {
  for (;;) {
    const a = await ask(cluster, `synod.${group}.read`, {
      command: { op: 'get', key },
      consistency: 'linearizable',
    });
    if (a.ok) return Number(a.result?.value);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startCluster(server: NatsServer, env: Record<string, string> = {}) {
  const cluster = await ProcessCluster.start(GROUPS.join(','), peers, [server.url], [], env);
  for (const group of GROUPS)
    for (let i = 0; i < ACCOUNTS; i++)
      await until(
        `${group} account ${i} opened`,
        async () =>
          (
            await ask(cluster, `synod.${group}.write`, {
              clientId: `open-${group}-${i}`,
              seq: 1,
              command: { op: 'put', key: `acct-${i}`, value: String(START) },
            })
          ).ok,
        30_000,
      );
  return cluster;
}

/** One transfer between an account of each group; what its client was told. */
async function transfer(cluster: ProcessCluster, id: string, amount: number): Promise<Told> {
  const from = GROUPS[Math.floor(Math.random() * 2)]!;
  const to = from === 'north' ? 'south' : 'north';
  const fromKey = `acct-${Math.floor(Math.random() * ACCOUNTS)}`;
  const toKey = `acct-${Math.floor(Math.random() * ACCOUNTS)}`;
  const [have, other] = await Promise.all([
    balance(cluster, from, fromKey),
    balance(cluster, to, toKey),
  ]);
  const answer = await ask(cluster, `synod.${GROUPS[Math.floor(Math.random() * 2)]}.write`, {
    clientId: `bank-${id}`,
    seq: 1,
    command: {
      op: 'txn',
      ops: [
        {
          group: from,
          op: 'cas',
          key: fromKey,
          expect: String(have),
          value: String(have - amount),
        },
        { group: to, op: 'cas', key: toKey, expect: String(other), value: String(other + amount) },
        { group: 'north', op: 'put', key: `mark-${id}`, value: '1' },
        { group: 'south', op: 'put', key: `mark-${id}`, value: '1' },
      ],
    },
  });
  if (!answer.ok) return 'unknown';
  return answer.result?.committed === true ? 'committed' : 'aborted';
}

/** What one replica holds for `key`, once no transaction holds it. */
async function onReplica(cluster: ProcessCluster, group: string, id: string, key: string) {
  for (let tries = 0; ; tries++) {
    const a = await ask(cluster, `synod.${group}.node.${id}.read`, {
      command: { op: 'get', key },
      consistency: 'optimistic',
    });
    if (a.ok) return a.result?.found === true ? (a.result.value ?? '') : undefined;
    if (tries > 400) throw new Error(`${group}/${key} on ${id}: ${a.error?.message}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Every violation of all-or-nothing on every replica: a transfer in one group and not the
 * other, a committed one missing, an aborted one applied, a sum that moved, replicas that differ.
 */
async function violations(cluster: ProcessCluster, told: Map<string, Told>): Promise<string[]> {
  const found: string[] = [];
  // Every replica applied everything decided: compare once every node's state settles.
  for (const [id, answer] of told) {
    const seen = new Set<string>();
    for (const group of GROUPS)
      for (const node of peers)
        seen.add(`${(await onReplica(cluster, group, node, `mark-${id}`)) !== undefined}`);
    if (seen.size > 1) found.push(`transfer ${id} applied in one group or on some replicas only`);
    const applied = seen.has('true');
    if (answer === 'committed' && !applied) found.push(`transfer ${id} told committed, lost`);
    if (answer === 'aborted' && applied) found.push(`transfer ${id} told aborted, applied`);
  }
  for (const node of peers) {
    let sum = 0;
    for (const group of GROUPS)
      for (let i = 0; i < ACCOUNTS; i++)
        sum += Number(await onReplica(cluster, group, node, `acct-${i}`));
    if (sum !== START * ACCOUNTS * GROUPS.length) found.push(`${node}: balances sum to ${sum}`);
  }
  // No transaction is left prepared anywhere, holding its keys for good.
  const open = async () => {
    const left: string[] = [];
    for (const group of GROUPS)
      for (const node of peers) {
        const a = await ask(cluster, `synod.${group}.node.${node}.read`, {
          command: { op: 'txn_open' },
          consistency: 'optimistic',
        });
        const txns = (a.result as unknown as unknown[] | undefined) ?? ['(no answer)'];
        if (txns.length > 0) left.push(`${group} on ${node}: ${txns.length} still prepared`);
      }
    return left;
  };
  const deadline = Date.now() + 20_000;
  let left = await open();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await open();
  }
  found.push(...left);
  return found;
}

/** Waits until every node of both groups has applied as far as the others. */
async function settled(cluster: ProcessCluster): Promise<void> {
  await until(
    'every replica caught up',
    async () => {
      for (const group of GROUPS) {
        const replies = await cluster.status(group);
        const digests = new Set(replies.map((r) => r.stateDigest));
        if (replies.length !== 3 || digests.size !== 1) return false;
      }
      return true;
    },
    30_000,
  );
}

describe('transfers across two groups through SIGKILLs of node processes', () => {
  let server: NatsServer;
  let cluster: ProcessCluster;
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });

  it('applies each transfer in both groups or in neither, on every replica, and loses no committed one', async () => {
    server = await startNatsServer();
    cluster = await startCluster(server);
    const told = new Map<string, Told>();
    let running = true;
    const clients = [0, 1, 2, 3].map(async (c) => {
      for (let n = 0; running; n++) {
        const id = `${c}-${n}`;
        told.set(id, 'unknown');
        told.set(id, await transfer(cluster, id, 1 + (n % 7)));
      }
    });
    // The nemesis: SIGKILL a random node, start it again, four times.
    for (let round = 0; round < 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const victim = peers[Math.floor(Math.random() * peers.length)]!;
      await cluster.kill(victim);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      cluster.startNode(victim);
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    running = false;
    await Promise.all(clients);
    await settled(cluster);
    const count = (what: Told) => [...told.values()].filter((t) => t === what).length;
    console.log(
      `bank: ${count('committed')} committed, ${count('aborted')} aborted, ${count('unknown')} unknown`,
    );
    expect(count('committed'), 'transfers committed').toBeGreaterThan(10);
    expect(await violations(cluster, told)).toEqual([]);
  }, 120_000);
});

describe('the same checker, with an RM that commits on its own vote (a planted bug)', () => {
  let server: NatsServer;
  let cluster: ProcessCluster;
  afterAll(async () => {
    await cluster?.stop();
    await server?.stop();
  });

  it('finds a transfer applied in one group only', async () => {
    server = await startNatsServer();
    cluster = await startCluster(server, { SYNOD_COMMIT_PLANT: 'rm-commits-on-own-vote' });
    // Transfers whose cas fails in south: north's RM, planted, commits on its own vote as soon
    // as that vote is chosen, unless the coordinator's abort (phase 3) reaches it first, a race
    // either can win; so up to ten, until the checker sees one.
    const told = new Map<string, Told>();
    let found: string[] = [];
    for (let i = 0; i < 10 && found.length === 0; i++) {
      const id = `planted-${i}`;
      const have = await balance(cluster, 'north', 'acct-0');
      const answer = await ask(cluster, 'synod.north.write', {
        clientId: `bank-${id}`,
        seq: 1,
        command: {
          op: 'txn',
          ops: [
            {
              group: 'north',
              op: 'cas',
              key: 'acct-0',
              expect: String(have),
              value: String(have - 10),
            },
            { group: 'south', op: 'cas', key: 'acct-0', expect: 'not the balance', value: '110' },
            { group: 'north', op: 'put', key: `mark-${id}`, value: '1' },
            { group: 'south', op: 'put', key: `mark-${id}`, value: '1' },
          ],
        },
      });
      expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true });
      told.set(id, 'unknown');
      await settled(cluster);
      found = await violations(cluster, told);
    }
    // The attempts before it aborted everywhere: only the last moved a balance.
    const last = [...told.keys()].at(-1);
    expect(found).toContain(`transfer ${last} applied in one group or on some replicas only`);
    expect(found.some((f) => f.includes(`balances sum to ${START * ACCOUNTS * 2 - 10}`))).toBe(
      true,
    );
  }, 120_000);
});
