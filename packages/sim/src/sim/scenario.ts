import type { PlantedBug } from '@synod/actors';
import type { FaultOptions, Rng } from '@synod/transport';

/**
 * What one seed runs ("swarm testing": the seed picks the scenario, not only the schedule).
 * Times are simulated milliseconds.
 */
export interface Scenario {
  readonly seed: number;
  readonly nodes: number;
  readonly clients: number;
  readonly keys: number;
  readonly opsPerClient: number;
  readonly faults: FaultOptions;
  readonly fsyncMs: { readonly min: number; readonly max: number };
  /** How long faults (crashes, partitions, message faults) go on. */
  readonly faultPhaseMs: number;
  /** Mean time between two fault events (crash, restart, partition, heal). */
  readonly faultEveryMs: number;
  /** After the network heals, every pending operation must finish within this. */
  readonly livenessBoundMs: number;
  /** A client gives up on an operation after this long (it stays open in the history). */
  readonly opTimeoutMs: number;
  readonly plant?: PlantedBug;
  /** 'leaderless': pg_paxos's algorithm; 'leader': a distinguished leader (issue 4). */
  readonly mode: SimMode;
  /**
   * Leader mode: each node snapshots its state machine every `every` slots and, once the
   * snapshot is durable, compacts its log through `retain` slots before it. Snapshots move
   * between nodes in pieces of `chunkBytes`.
   */
  readonly compaction?: {
    readonly every: number;
    readonly retain: number;
    readonly chunkBytes: number;
  };
  /**
   * Leader mode: the group starts with the first `founders` nodes as members (the others run,
   * as acceptors nobody counts yet), and an operator changes the members `changes` times
   * during the fault phase, each time to a random set of the nodes.
   */
  /**
   * A sender that is no member publishes forged peer messages until shortly after the heal
   * (see Rogue): nothing it sends may change what any node believes.
   */
  readonly rogue: boolean;
  /**
   * Leader mode: a leader that has just chosen a slot above one still open (its accepts for
   * the lower slot were lost) often dies at once. The next leader may then fill the open slot
   * with newer writes, ahead of ones the dead leader already chose, where a node that answers
   * clients on chosen instead of applied loses acknowledged writes.
   */
  readonly leaderDiesAtGap: boolean;
  /**
   * Leader mode: a node that believes it leads serves reads without a log slot (ReadIndex),
   * clients prefer nodes that believe they lead for reads, and a new leader is sometimes cut
   * off alone while a client writes elsewhere and then reads from it (Nemesis
   * maybeIsolateLeader). Without it every read is pg_paxos's, as before ReadIndex existed.
   */
  readonly leaderReads: boolean;
  readonly membership?: {
    readonly founders: number;
    readonly changes: number;
    /** Slots between a change and the slots it governs: small, so changes take effect in a run. */
    readonly window: number;
    /**
     * Whether the new members of a change are often cut off from the others for a while
     * after it, so that each side may elect a leader of its own across the change.
     */
    readonly cutOff: boolean;
    /** Whether a change is often followed at once by another: two changes in adjacent slots. */
    readonly backToBack: boolean;
  };
}

export type SimMode = 'leaderless' | 'leader';

export interface ScenarioOptions {
  readonly nodes?: number;
  /**
   * Fixes Scenario.leaderReads instead of drawing it: a seed recorded before ReadIndex existed
   * replays as it ran then with `leaderReads: false`.
   */
  readonly leaderReads?: boolean;
  readonly plant?: PlantedBug;
  readonly mode?: SimMode;
}

export function chooseScenario(seed: number, rng: Rng, options: ScenarioOptions = {}): Scenario {
  const nodes = options.nodes ?? (rng.chance(0.5) ? 3 : 5);
  const mode = options.mode ?? 'leaderless';
  return {
    seed,
    nodes,
    clients: rng.int(2, 4),
    keys: rng.int(1, 3),
    opsPerClient: rng.int(4, 10),
    faults: {
      dropRate: rng.chance(0.7) ? rng.next() * 0.15 : 0,
      duplicateRate: rng.chance(0.5) ? rng.next() * 0.1 : 0,
      minDelayMs: 0.1,
      maxDelayMs: 0.2 + rng.next() * 5,
      reorderRate: rng.chance(0.5) ? rng.next() * 0.2 : 0,
      reorderDelayMs: 10,
    },
    // A third of the seeds get a slow disk (a cloud volume): a wide window between an answer
    // and its durability is where reply-before-persist bugs lose data in a crash.
    fsyncMs: rng.chance(1 / 3)
      ? { min: 2, max: 5 + rng.next() * 20 }
      : { min: 0.1, max: 0.2 + rng.next() * 3 },
    faultPhaseMs: rng.int(200, 1500),
    faultEveryMs: rng.int(20, 200),
    livenessBoundMs: 30_000,
    opTimeoutMs: 3_000,
    ...(options.plant === undefined ? {} : { plant: options.plant }),
    mode,
    // Drawn last, so the other choices of a seed stay what they were before compaction existed.
    ...(mode === 'leader' && rng.chance(0.6)
      ? {
          compaction: {
            every: rng.int(1, 12),
            retain: rng.int(0, 4),
            chunkBytes: rng.chance(0.5) ? rng.int(16, 512) : 256 * 1024,
          },
        }
      : {}),
    ...(mode === 'leader' && rng.chance(0.5)
      ? {
          membership: {
            founders: rng.int(1, nodes),
            changes: rng.int(2, 8),
            window: rng.int(1, 3),
            // Drawn last: the seeds without it run exactly as before it existed.
            cutOff: rng.chance(0.7),
            backToBack: rng.chance(0.3),
          },
        }
      : {}),
    // Drawn after everything else, like the options above.
    rogue: rng.chance(0.3),
    leaderDiesAtGap: mode === 'leader' && rng.chance(0.3),
    // Drawn last: the seeds without it run exactly as before it existed.
    leaderReads: mode === 'leader' && rng.chance(0.5) && options.leaderReads !== false,
  };
}
