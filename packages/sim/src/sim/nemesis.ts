import { isMembershipValue, type Value } from '@synod/protocol';
import type { Rng } from '@synod/transport';
import type { SimCluster, SimNode } from './cluster.js';
import { Rogue } from './rogue.js';
import { GROUP, pick, type SimWorld } from './world.js';

/**
 * The streams the nemesis draws from. Each of its faults has its own, so that a fault added
 * later left the other choices of every seed recorded before it as they were.
 */
export interface NemesisStreams {
  /** Random crashes, restarts, partitions and heals. */
  readonly faults: Rng;
  /** Partitions aimed at the members of a membership change. */
  readonly split: Rng;
  readonly rogue: Rng;
  /** Accepts lost and leaders killed with slots open below a chosen one. */
  readonly gap: Rng;
  /** New leaders cut off alone while clients still read from them. */
  readonly isolate: Rng;
}

/**
 * Everything that goes wrong in a run until the heal: crashes and restarts, random and aimed
 * partitions, lost accepts, a rogue sender. Message faults are the network's own (the
 * scenario's); at the heal the nemesis turns them off, heals the network and restarts every
 * node that is down.
 */
export class Nemesis {
  #healed = false;
  /** Until when a partition a nemesis aimed holds (random partitions and heals wait). */
  #aimedPartitionUntil = 0;
  #gapDeaths = 0;

  constructor(
    private readonly world: SimWorld,
    private readonly cluster: SimCluster,
    private readonly rngs: NemesisStreams,
    /** A leader was cut off alone: `other`, on the other side, takes a client's write. */
    private readonly leaderCutOff: (leader: SimNode, other: SimNode) => void = () => undefined,
  ) {}

  get healed(): boolean {
    return this.#healed;
  }

  /** Sets the faults going, the heal that ends them, and the rogue if the scenario has one. */
  start(): void {
    const { scenario, scheduler, network, trace, peers, healAt } = this.world;
    this.#scheduleFault();
    scheduler.setTimer(healAt, () => {
      trace?.('HEAL: faults end');
      this.#healed = true;
      network.heal();
      network.configureFaults({
        dropRate: 0,
        duplicateRate: 0,
        reorderRate: 0,
        minDelayMs: 0.1,
        maxDelayMs: 1,
      });
      for (const node of this.cluster.down()) this.cluster.start(node);
    });
    if (scenario.rogue) {
      const rogue = new Rogue(
        network,
        this.rngs.rogue,
        {
          group: GROUP,
          members: peers,
          leaderMode: scenario.mode === 'leader',
          deliveredThrough: () =>
            Math.max(-1, ...this.cluster.up().map((n) => n.host!.deliveredThrough)),
          highestRound: () => Math.max(0, ...this.cluster.up().map((n) => n.host!.highestRound)),
        },
        trace,
      );
      rogue.run(scheduler, { min: 2, max: 30 }, healAt + 500);
    }
  }

  #aimedPartition(sides: readonly (readonly string[])[], forMs: number): void {
    const { scheduler, network, trace } = this.world;
    network.partition(...sides);
    this.#aimedPartitionUntil = scheduler.now() + forMs;
    scheduler.setTimer(forMs, () => {
      if (this.#healed) return;
      trace?.('network heals');
      network.heal();
    });
  }

  /** Crashes, restarts and partitions at random times until the heal. */
  #scheduleFault(): void {
    const { scenario, scheduler, network, trace, peers } = this.world;
    const faultRng = this.rngs.faults;
    const delay = faultRng.next() * 2 * scenario.faultEveryMs;
    scheduler.setTimer(delay, () => {
      if (this.#healed) return;
      const roll = faultRng.next();
      const live = this.cluster.up();
      const dead = this.cluster.down();
      if (roll < 0.3 && live.length > 0) {
        // Like a nemesis that knows where it hurts, prefer a node with writes in flight: a
        // crash there tests that nothing was acknowledged before it was durable.
        const exposed = live.filter((n) => n.disk.hasUnsyncedWrites);
        const victim = pick(faultRng, exposed.length > 0 && faultRng.chance(0.8) ? exposed : live);
        this.cluster.crash(victim);
        // Half the crashes are reboots (a supervisor restarts the process at once): the node
        // is back while messages of its last life are still in flight.
        if (faultRng.chance(0.5))
          scheduler.setTimer(
            faultRng.next() * 5,
            () => !this.#healed && victim.host === undefined && this.cluster.start(victim),
          );
      } else if (roll < 0.55 && dead.length > 0) this.cluster.start(pick(faultRng, dead));
      // A partition a nemesis made on purpose holds for its time: random ones wait.
      else if (scheduler.now() < this.#aimedPartitionUntil) {
        // nothing
      } else if (roll < 0.75) {
        const sides = split(faultRng, peers);
        trace?.(`partition [${sides[0]!.join(',')}] | [${sides[1]!.join(',')}]`);
        network.partition(...sides);
      } else if (roll < 0.9) {
        trace?.('network heals');
        network.heal();
      }
      this.#scheduleFault();
    });
  }

  /**
   * Right after the operator submitted a membership change to `members`: often the leader
   * dies, so the next one runs phase 1 across the change, with slots in flight on both sides
   * of it. These choices draw from the operator's stream, `operatorRng`, as they always
   * have: another stream would change every seed with membership changes.
   */
  afterMembershipChange(members: readonly string[], operatorRng: Rng): void {
    const { scenario, scheduler, trace, peers } = this.world;
    scheduler.setTimer(operatorRng.next() * 20, () => {
      const leader = this.cluster.up().find((n) => n.host?.leader === n.id);
      if (this.#healed || leader === undefined || !operatorRng.chance(0.5)) return;
      trace?.(`nemesis: the leader ${leader.id} dies after a membership change`);
      this.cluster.crash(leader);
      scheduler.setTimer(
        operatorRng.next() * 50,
        () => !this.#healed && leader.host === undefined && this.cluster.start(leader),
      );
    });
    // Or the new members are cut off from the rest for a while: each side may then elect a
    // leader of its own, one from before the change and one from after it, and only phase 1
    // at the new members keeps the old side's leader from deciding their slots blind.
    const splitRng = this.rngs.split;
    if (scenario.membership?.cutOff === true && splitRng.chance(0.75)) {
      const apart = peers.filter((id) => !members.includes(id));
      scheduler.setTimer(splitRng.next() * 100, () => {
        if (this.#healed || apart.length === 0) return;
        trace?.(`nemesis: the new members [${members.join(',')}] are cut off`);
        this.#aimedPartition([members, apart], 50 + splitRng.next() * 300);
      });
    }
  }

  /** `id`, the host of `node`, delivered `slot`. */
  delivered(node: SimNode, id: string, slot: number, value: Value): void {
    // (A compare-and-set change whose members were replaced meanwhile holds nowhere.)
    if (
      isMembershipValue(value) &&
      node.host?.leader === id &&
      node.host.membership.changes.at(-1)?.slot === slot
    )
      this.#leaderDeliveredChange(id);
  }

  /**
   * The leader just delivered a membership change: sometimes it is cut off together with the
   * new members, for long enough that the old members left behind elect a leader of their
   * own. The first leader goes on deciding the new members' slots with them; the second must
   * ask those members before it decides the same slots.
   */
  #leaderDeliveredChange(leader: string): void {
    const { scenario, trace, peers } = this.world;
    const splitRng = this.rngs.split;
    if (scenario.membership?.cutOff !== true || this.#healed || !splitRng.chance(0.75)) return;
    const membership = this.cluster.nodes.get(leader)?.host?.membership;
    if (membership === undefined) return;
    const now = membership.latest;
    const before = membership.changes.at(-2)?.members ?? membership.genesis;
    // The leader with the members the change brought in, apart from the ones it kept: when
    // those are a majority of the new members and the rest a majority of the old ones, both
    // sides can decide.
    const side = [...new Set([...now.filter((id) => !before.includes(id)), leader])];
    const apart = peers.filter((id) => !side.includes(id));
    if (apart.length === 0 || side.length === 1) return;
    trace?.(`nemesis: the leader ${leader} and the new members [${side.join(',')}] are cut off`);
    this.#aimedPartition([side, apart], 300 + splitRng.next() * 700);
  }

  /**
   * Leader mode: a new leader is sometimes cut off alone a little after it took over, for
   * longer than an election takes. It goes on believing it leads while the others elect
   * another and acknowledge writes, and clients that knew it still send it reads: a leader
   * that served them on its own word (no ReadIndex round) would answer from a stale state.
   */
  maybeIsolateLeader(node: SimNode): void {
    const { scenario, scheduler, trace, peers } = this.world;
    const isolateRng = this.rngs.isolate;
    if (!scenario.leaderReads || this.#healed || !isolateRng.chance(0.3)) return;
    const host = node.host;
    scheduler.setTimer(10 + isolateRng.next() * 50, () => {
      if (this.#healed || node.host !== host || host?.leader !== node.id) return;
      if (scheduler.now() < this.#aimedPartitionUntil) return;
      const others = this.cluster.up().filter((n) => n !== node);
      if (others.length === 0) return;
      trace?.(`nemesis: the leader ${node.id} is cut off alone`);
      this.#aimedPartition(
        [[node.id], peers.filter((id) => id !== node.id)],
        400 + isolateRng.next() * 800,
      );
      this.leaderCutOff(node, pick(isolateRng, others));
    });
  }

  /** Sometimes the accepts a leader is sending now are lost to every other node. */
  maybeLoseAccept(leader: string): void {
    const { scenario, scheduler, trace, peers } = this.world;
    if (!scenario.leaderDiesAtGap || this.#healed || scheduler.now() < this.#aimedPartitionUntil)
      return;
    if (!this.rngs.gap.chance(0.1)) return;
    trace?.(`nemesis: the accepts ${leader} sends now are lost`);
    this.#aimedPartition([[leader], peers.filter((id) => id !== leader)], 0.05);
  }

  /**
   * `node` chose `slot`: if it leads and a slot below is still open, it dies now and then,
   * before it resends the lower slot's accepts (see Scenario.leaderDiesAtGap).
   */
  maybeDieAtGap(node: SimNode, slot: number): void {
    const { scenario, scheduler, trace } = this.world;
    const gapRng = this.rngs.gap;
    const host = node.host;
    if (!scenario.leaderDiesAtGap || this.#healed || this.#gapDeaths >= 3 || host === undefined)
      return;
    if (host.leader !== node.id || host.deliveredThrough >= slot - 1 || !gapRng.chance(0.5)) return;
    this.#gapDeaths++;
    scheduler.setTimer(0, () => {
      if (node.host !== host) return;
      trace?.(`nemesis: the leader ${node.id} dies with slots open below ${slot}`);
      this.cluster.crash(node);
      scheduler.setTimer(
        20 + gapRng.next() * 100,
        () => !this.#healed && node.host === undefined && this.cluster.start(node),
      );
    });
  }
}

/** A random split of the nodes into two sides. */
function split(rng: Rng, peers: readonly string[]): string[][] {
  const a: string[] = [];
  const b: string[] = [];
  for (const id of peers) (rng.chance(0.5) ? a : b).push(id);
  return [a, b];
}
