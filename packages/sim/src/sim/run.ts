import { createRng, MemoryNetwork, VirtualScheduler } from '@synod/transport';
import { SafetyChecker } from './checker.js';
import { checkHistory, checkRunEnded, coverage, type MembershipShapes } from './checks.js';
import { SimCluster } from './cluster.js';
import { scheduleMembershipChanges } from './membership-changes.js';
import { Nemesis } from './nemesis.js';
import { chooseScenario, type Scenario, type ScenarioOptions } from './scenario.js';
import { at, type TraceSink } from './trace.js';
import { Workload } from './workload.js';
import type { KvOperation, SimWorld } from './world.js';

export interface SeedResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly violations: readonly string[];
  readonly steps: number;
  readonly simTimeMs: number;
  readonly history: readonly KvOperation[];
  readonly acknowledged: number;
  /** 'unknown' when the check ran out of time: a violation too (undecided is not a pass). */
  readonly linearizability: 'linearizable' | 'not-linearizable' | 'unknown';
  /** Compactions done and peer snapshots installed (leader mode with compaction). */
  readonly compactions: number;
  readonly snapshotsInstalled: number;
  /** Leader mode with Scenario.leaderReads: what became of the reads sent to leaders. */
  readonly leaderReads: {
    readonly served: number;
    readonly refused: number;
    readonly stalenessProbes: number;
  };
  /** Membership changes in the log, as the node that delivered most of them knows them. */
  readonly membershipChanges: number;
  /** What those changes were like: what the simulator claims to cover. */
  readonly membershipShapes: MembershipShapes;
  /** Peer messages the nodes did not believe, by reason, over all their lives (PeerFilter). */
  readonly droppedPeerMessages: Readonly<Record<string, number>>;
}

const STEP_BUDGET = 2_000_000;

export interface RunOptions extends ScenarioOptions {
  /**
   * Hears every delivered and dropped message, timer, crash, restart, partition, membership
   * change, chosen and delivered value and violation, with its simulated time.
   */
  readonly trace?: TraceSink;
  /** End the run at the first violation (tests that only need to know a bug is caught). */
  readonly stopAtFirstViolation?: boolean;
}

/** Runs one seed: a workload under faults, then a healed phase that must make progress. */
export function runSeed(seed: number, options: RunOptions = {}): SeedResult {
  const rng = createRng(seed);
  const scenario = chooseScenario(seed, rng.fork(), options);
  const scheduler = new VirtualScheduler();
  const sink = options.trace;
  const trace =
    sink === undefined ? undefined : (what: string): void => sink(`${at(scheduler.now())} ${what}`);
  const network = new MemoryNetwork({
    seed: rng.int(0, 2 ** 31),
    scheduler,
    faults: scenario.faults,
    ...(trace === undefined
      ? {}
      : {
          trace: (e) => {
            // Deliveries are traced decoded, by the host that receives them.
            if (e.kind !== 'deliver') trace(`${e.to} ${e.kind} ${e.subject} from ${e.from}`);
          },
        }),
  });
  const checker = new SafetyChecker(
    () => scheduler.now(),
    trace && ((message) => trace(`VIOLATION ${message}`)),
  );
  trace?.(`scenario ${JSON.stringify(scenario)}`);
  const peers = Array.from({ length: scenario.nodes }, (_, i) => `n${i + 1}`);
  const world: SimWorld = {
    seed,
    scenario,
    scheduler,
    network,
    checker,
    trace,
    peers,
    founders: peers.slice(0, scenario.membership?.founders ?? peers.length),
    healAt: scenario.faultPhaseMs,
  };

  // Every part draws from streams of its own, forked from `rng` in this order (the cluster
  // forks one per disk): a stream added later goes last, so the seeds recorded before it keep
  // their choices, and another order would change every seed.
  const faultRng = rng.fork();
  const clientRng = rng.fork();
  // The nodes call on the nemesis and the workload only once the run steps.
  const cluster = new SimCluster(world, rng, {
    chosen: (node, slot) => nemesis.maybeDieAtGap(node, slot),
    delivered: (node, id, slot, value) => nemesis.delivered(node, id, slot, value),
    sentAccept: (leader) => nemesis.maybeLoseAccept(leader),
    leads: (node) => {
      nemesis.maybeIsolateLeader(node);
      workload.readAtTakeover(node, takeover);
    },
    crashed: (node) => workload.crashed(node),
  });
  const changes = rng.fork();
  const split = rng.fork();
  const backToBack = rng.fork();
  const rogue = rng.fork();
  const gap = rng.fork();
  const isolate = rng.fork();
  const takeover = rng.fork();

  const nemesis = new Nemesis(
    world,
    cluster,
    { faults: faultRng, split, rogue, gap, isolate },
    (leader, other) => workload.probeStaleRead(leader, other),
  );
  const workload = new Workload(world, cluster, clientRng, () => nemesis.healed);
  // Timers due at the same time fire in the order they were set: this order is part of a seed.
  nemesis.start();
  scheduleMembershipChanges(world, cluster, workload, nemesis, { changes, backToBack });
  workload.start();

  // Without a leader the run ends when nothing is left to do. A leader's heartbeats never
  // stop, so in leader mode the run ends a simulated second after the final reads, long
  // enough for a straggling message to show a violation.
  let steps = 0;
  const settled = (): boolean =>
    workload.finishedAt !== undefined &&
    scenario.mode === 'leader' &&
    scheduler.now() > workload.finishedAt + 1_000;
  const stopEarly = (): boolean =>
    options.stopAtFirstViolation === true && checker.violations.length > 0;
  while (steps < STEP_BUDGET && !settled() && !stopEarly() && scheduler.step()) steps++;
  checkRunEnded(checker, {
    stoppedEarly: stopEarly(),
    steps,
    stepBudget: STEP_BUDGET,
    finalReadsDone: workload.finalReadsDone,
  });
  const live = cluster.up().map((n) => n.host!);
  const covered = coverage(live, cluster.gone);
  for (const host of live) host.stop();
  const linearizability = checkHistory(checker, workload.history, stopEarly);

  return {
    seed,
    scenario,
    violations: checker.violations,
    steps,
    simTimeMs: scheduler.now(),
    history: workload.history,
    acknowledged: checker.acknowledgedCount,
    linearizability,
    compactions: cluster.compactions,
    snapshotsInstalled: cluster.snapshotsInstalled,
    leaderReads: { ...workload.leaderReads },
    membershipChanges: covered.membershipChanges,
    membershipShapes: covered.membershipShapes,
    droppedPeerMessages: covered.droppedPeerMessages,
  };
}
