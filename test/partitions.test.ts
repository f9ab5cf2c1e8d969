// Network partitions, really: three "hosts", each a network namespace made by this test with
// one nats-server of a 3-server NATS cluster and the synod node connected to it, joined by a
// veth link per pair (test/support/netns.ts). Clients attach to every side. The links are cut
// and degraded while they write and read: the leader isolated, a follower isolated, a bridge
// (leader and one follower cut apart, both still reaching the third), 10% packet loss with
// 50±20 ms of delay everywhere. Afterwards the client history must be linearizable, every
// acknowledged write readable, and the three replicas identical. A client attached to an
// isolated side must complete nothing while it is cut off; the majority must keep writing.
//
// Needs root and `ip netns` (it fails, with the reason, without them). About a minute.
//
//   SYNOD_PARTITION_ROUNDS=N  opt-in long run: after the fixed schedule, N rounds of faults
//                             chosen at random (about 12 s each)
//   SYNOD_PARTITION_SEED=S    seed of those choices and of the clients' (default random; printed)
//   SYNOD_TEST_LOGS=DIR       keep each nats-server's and node's log in DIR
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOperations, kvModel } from '@synod/sim';
import { createRng } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsCluster } from './support/netns-cluster.js';
import { SHARED_KEYS, Workload } from './support/partition-workload.js';
import { until } from './support/process-cluster.js';

const ROUNDS = Number(process.env.SYNOD_PARTITION_ROUNDS ?? 0);
const SEED = Number(process.env.SYNOD_PARTITION_SEED ?? Math.floor(Math.random() * 2 ** 31));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A time when `isolated` was cut off from every other node. */
interface Isolation {
  readonly isolated: number;
  readonly from: number;
  readonly to: number;
}

describe(`network partitions between namespaces (seed ${SEED}, ${ROUNDS} random rounds)`, () => {
  let cluster: NetnsCluster;
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}`);

  beforeAll(async () => {
    cluster = await NetnsCluster.start('partition');
    await until(
      'one leader',
      async () => (await cluster.leaderSeenFrom(1, 3)) !== undefined,
      30_000,
    );
    log(`3 namespaces up, leader ${await cluster.leaderSeenFrom(1, 3)}`);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it(
    'keeps a linearizable history, loses no acknowledged write and converges',
    async () => {
      const net = cluster.net;
      const nodes = [1, 2, 3];
      const rng = createRng(SEED);
      const workload = new Workload(cluster, SEED);
      const isolations: Isolation[] = [];
      /** The leader all three agree on, waiting out an election under way. */
      const leader = async (timeoutMs = 15_000): Promise<number> => {
        let agreed: string | undefined;
        const check = async () => {
          agreed = await cluster.leaderSeenFrom(1, 3);
          return agreed !== undefined;
        };
        await until('one leader for all three', check, timeoutMs);
        return cluster.node(agreed!);
      };
      const acks = (from: number) =>
        nodes
          .map(
            (side) =>
              `n${side}:${workload.completed((s) => s === side, from, performance.now(), 'put')}`,
          )
          .join(' ');

      async function heal(): Promise<void> {
        const from = performance.now();
        await cluster.setDelay(0);
        await net.healAll();
        await cluster.waitForRoutes(30_000);
        const agreed = await leader(30_000);
        log(`healed: routes and one leader (${cluster.id(agreed)}) in ${ms(from)}`);
      }

      async function isolate(node: number, holdMs: number, what: string): Promise<void> {
        await net.isolate(node);
        const from = performance.now();
        const probe = nodes.find((n) => n !== node)!;
        await until(
          `a leader other than n${node} agreed by the majority`,
          async () => {
            const seen = await cluster.leaderSeenFrom(probe, 2);
            return seen !== undefined && cluster.node(seen) !== node;
          },
          20_000,
        );
        const leaderNow = await cluster.leaderSeenFrom(probe, 2);
        log(`${what} n${node} isolated: majority led by ${leaderNow} after ${ms(from)}`);
        await sleep(holdMs);
        isolations.push({ isolated: node, from, to: performance.now() });
        // NATS drops a black-holed route after 3-9 s of missed pings (1 s apart, 3 missed);
        // a shorter cut keeps it, and TCP delivers what queued up once the link heals.
        const routes = JSON.stringify(await cluster.routeCounts());
        log(`  ${ms(from)} isolated: puts by side ${acks(from)}; NATS routes per server ${routes}`);
        await heal();
      }

      async function bridge(a: number, b: number, holdMs: number): Promise<void> {
        await net.setLoss(a, b, 100);
        const from = performance.now();
        await sleep(holdMs);
        log(
          `bridge n${a} -x- n${b} (both reach the third) ${ms(from)}: puts by side ${acks(from)}`,
        );
        await heal();
      }

      async function degrade(percent: number, delayMs: number, jitterMs: number, holdMs: number) {
        await net.lossEverywhere(percent);
        await cluster.setDelay(delayMs, jitterMs);
        const from = performance.now();
        await sleep(holdMs);
        log(
          `${percent}% loss, ${delayMs}±${jitterMs} ms delay on every link ${ms(from)}: puts by side ${acks(from)}`,
        );
        await heal();
      }

      // The fixed schedule: what CI runs.
      await sleep(3_000);
      log(`healthy: puts by side ${acks(started)}`);
      // Long enough for NATS to drop the old leader's routes (they are dialled again on the
      // heal), then short enough for the follower's to survive (stale messages arrive late).
      await isolate(await leader(), 8_000, 'leader');
      const second = await leader();
      await isolate(nodes.find((n) => n !== second)!, 1_500, 'follower');
      const third = await leader();
      await bridge(third, nodes.find((n) => n !== third)!, 5_000);
      await degrade(10, 50, 20, 8_000);

      // The opt-in long run: the same faults and a few more, chosen and timed from the seed.
      for (let round = 1; round <= ROUNDS; round++) {
        const pick = rng.int(0, 5);
        const node = nodes[rng.int(0, 2)]!;
        const other = nodes.filter((n) => n !== node)[rng.int(0, 1)]!;
        const holdMs = 1_000 + rng.int(0, 10_000);
        log(`round ${round}/${ROUNDS}`);
        if (pick === 0) await isolate(await leader(), holdMs, 'leader');
        else if (pick === 1) await isolate(node, holdMs, 'node');
        else if (pick === 2) await bridge(node, other, holdMs);
        else if (pick === 3) await degrade(rng.int(5, 30), rng.int(0, 100), rng.int(0, 50), holdMs);
        else if (pick === 4) {
          await net.setLoss(node, other, rng.int(30, 70));
          await sleep(holdMs);
          log(`link n${node}-n${other} lossy (${net.describe()}) for ${holdMs} ms`);
          await heal();
        } else {
          // Flapping: a node cut off and back again faster than NATS notices dead routes.
          for (let flap = 0; flap < 5; flap++) {
            await net.isolate(nodes[rng.int(0, 2)]!);
            await sleep(200 + rng.int(0, 1_300));
            await net.healAll();
            await sleep(rng.int(0, 1_000));
          }
          log('flapping isolations');
          await heal();
        }
      }
      await sleep(2_000);
      await workload.stop();

      // Every key read once more, strongly, with everything healed; these reads are checked too.
      const finalValues = await workload.readEverything();
      const history = workload.history;
      const puts = history.filter((o) => o.input.op === 'put');
      const open = puts.filter((o) => o.return === Number.POSITIVE_INFINITY).length;
      log(
        `history: ${history.length} operations, ${puts.length - open} acknowledged puts, ${open} open, ${finalValues.size} keys read back`,
      );

      const latencies = puts
        .filter((o) => o.return !== Number.POSITIVE_INFINITY)
        .map((o) => o.return - o.call)
        .sort((a, b) => a - b);
      const at = (q: number) => Math.round(latencies[Math.floor(q * (latencies.length - 1))] ?? 0);
      log(`acknowledged put latency: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);

      const checked = performance.now();
      const verdict = checkOperations(kvModel, history, { timeoutMs: 60_000 });
      log(`checker: ${verdict.verdict} in ${ms(checked)}`);
      if (verdict.verdict !== 'linearizable') {
        const file = join(
          process.env.SYNOD_TEST_LOGS ?? tmpdir(),
          `partition-history-${SEED}.json`,
        );
        writeFileSync(file, JSON.stringify(history));
        log(`history written to ${file} (${JSON.stringify(verdict)})`);
      }

      const lost = workload.lostWrites(finalValues);
      const problems = [
        ...lost.map(
          (o) =>
            `lost: put(${o.input.key}, ${o.input.value}) acknowledged, read back as "${finalValues.get(o.input.key)}"`,
        ),
        ...isolations.flatMap(({ isolated, from, to }) => {
          const minority = workload.completed((s) => s === isolated, from, to);
          const majority = workload.completed((s) => s !== isolated, from, to, 'put');
          return [
            ...(minority > 0
              ? [`n${isolated} isolated, yet its clients completed ${minority} operations`]
              : []),
            ...(majority === 0
              ? [`n${isolated} isolated and the majority acknowledged no put`]
              : []),
          ];
        }),
      ];
      expect(problems).toEqual([]);
      expect(verdict.verdict).toBe('linearizable');
      expect(puts.length - open).toBeGreaterThan(100);
      expect(SHARED_KEYS.every((key) => finalValues.has(key))).toBe(true);

      let statuses = await cluster.status(1);
      await until(
        'three replicas at the same slot with the same state',
        async () => {
          statuses = await cluster.status(1);
          return (
            statuses.length === 3 &&
            new Set(statuses.map((n) => `${n.appliedThrough} ${n.stateDigest}`)).size === 1
          );
        },
        30_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify(statuses)}`);
      });
      log(`converged at slot ${statuses[0]!.appliedThrough}, digest ${statuses[0]!.stateDigest}`);
    },
    180_000 + ROUNDS * 60_000,
  );
});

function ms(from: number): string {
  return `${Math.round(performance.now() - from)} ms`;
}
