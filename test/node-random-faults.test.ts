// A random fault run against real processes: for a bounded time, a seeded nemesis kills,
// restarts and pauses synod node processes while clients write and read; afterwards the
// group heals, the client history must be linearizable and every node's state identical.
import { SynodClient } from '@synod/client';
import { checkOperations, type KvInput, kvModel, type Operation } from '@synod/sim';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { createRng } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const SEED = Number(process.env.FAULT_SEED ?? 7);
const FAULT_MS = Number(process.env.FAULT_MS ?? 8_000);
const peers = ['a', 'b', 'c'];

describe(`random faults on real processes (seed ${SEED}, ${FAULT_MS} ms)`, () => {
  let server: NatsServer;
  let group: ProcessCluster;

  beforeAll(async () => {
    server = await startNatsServer();
    // Snapshots every 20 slots, 5 kept: nodes that come back after a kill or a pause usually
    // find their peers compacted past them and must install a snapshot.
    group = await ProcessCluster.start(
      'random',
      peers,
      [server.url],
      ['--snapshot-every', '20', '--retain-slots', '5'],
    );
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 20_000);
  }, 30_000);
  afterAll(async () => {
    await group.stop();
    await server.stop();
  });

  it('keeps a linearizable history and identical replicas through kills, restarts and pauses', async () => {
    const rng = createRng(SEED);
    const history: Operation<KvInput, string>[] = [];
    let faulting = true;
    const down = new Set<string>();
    const paused = new Set<string>();
    const nemesis = (async () => {
      while (faulting) {
        await new Promise((r) => setTimeout(r, 200 + rng.int(0, 600)));
        const id = peers[rng.int(0, peers.length - 1)]!;
        const roll = rng.next();
        if (down.has(id)) {
          group.startNode(id);
          down.delete(id);
        } else if (paused.has(id)) {
          group.signal(id, 'SIGCONT');
          paused.delete(id);
        } else if (down.size + paused.size >= 1) {
        } else if (roll < 0.5) {
          await group.kill(id);
          down.add(id);
        } else {
          group.signal(id, 'SIGSTOP');
          paused.add(id);
        }
      }
      for (const id of paused) group.signal(id, 'SIGCONT');
      for (const id of down) group.startNode(id);
    })();

    const clients = Array.from(
      { length: 3 },
      (_, i) =>
        new SynodClient({
          transport: group.transport,
          group: 'random',
          clientId: `r${i}`,
          timeoutMs: 1_000,
          attempts: 4,
        }),
    );
    const work = clients.map(async (client, i) => {
      for (let n = 0; faulting; n++) {
        const key = `k${rng.int(0, 1)}`;
        const call = performance.now();
        if (n % 3 !== 2) {
          const value = `${i}.${n}`;
          const ok = await client.put(key, value).then(
            () => true,
            () => false,
          );
          history.push({
            clientId: `${i}.${n}`,
            input: { op: 'put', key, value },
            call,
            output: ok ? '' : undefined,
            return: ok ? performance.now() : Number.POSITIVE_INFINITY,
          });
          if (!ok) return; // this client's outcome is unknown: like a Jepsen process, it is done
        } else {
          // Both consistent read paths: pg_paxos's strong read and the leader's linearizable one.
          const consistency = n % 2 === 0 ? 'strong' : 'linearizable';
          const answer = await client.get(key, consistency).catch(() => undefined);
          if (answer !== undefined) {
            const result = answer.result as { found: boolean; value?: string };
            history.push({
              clientId: `${i}.${n}`,
              input: { op: 'get', key },
              call,
              output: result.found ? result.value! : '',
              return: performance.now(),
            });
          }
        }
      }
    });
    await new Promise((r) => setTimeout(r, FAULT_MS));
    faulting = false;
    await Promise.all([nemesis, ...work]);

    await until(
      'a healed group with one leader',
      async () => (await group.oneLeader()) !== undefined,
      30_000,
    );
    expect(history.filter((op) => op.return !== Number.POSITIVE_INFINITY).length).toBeGreaterThan(
      20,
    );
    expect(checkOperations(kvModel, history, { timeoutMs: 20_000 }).verdict).toBe('linearizable');
    const reader = new SynodClient({
      transport: group.transport,
      group: 'random',
      clientId: 'final',
    });
    await reader.get('k0', 'strong');
    const installs = (await group.status()).reduce((sum, n) => sum + n.snapshotsInstalled, 0);
    console.log(`snapshots installed from peers during the run: ${installs}`);
    await until(
      'identical replicas',
      async () => {
        const nodes = await group.status();
        return nodes.length === 3 && new Set(nodes.map((n) => n.stateDigest)).size === 1;
      },
      20_000,
    );
  }, 90_000);
});
