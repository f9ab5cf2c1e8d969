import { AcceptorState } from '@synod/actors';
import { GroupHost } from '@synod/host';
import type { Value } from '@synod/protocol';
import type { Rng } from '@synod/transport';
import { checkedObserver } from './checks.js';
import { SimDisk } from './disk.js';
import { KvStore } from './kv.js';
import { GROUP, type SimWorld } from './world.js';

export interface SimNode {
  readonly id: string;
  readonly disk: SimDisk;
  host: GroupHost | undefined;
  kv: KvStore;
  incarnation: number;
  /** Writes chosen here that wait to be applied here before their client is answered. */
  applyWaiters: { readonly slot: number; readonly fire: () => void }[];
}

/**
 * Where a node's events go beyond the node itself: the nemesis strikes at some of them, and
 * the clients of a crashed node lose their operations. The cluster gets these before the
 * nemesis and the workload exist: nothing calls them before the run steps.
 */
export interface NodeEvents {
  chosen(node: SimNode, slot: number): void;
  delivered(node: SimNode, id: string, slot: number, value: Value): void;
  sentAccept(leader: string): void;
  leads(node: SimNode): void;
  crashed(node: SimNode): void;
}

/** The simulated nodes: their disks, their lives (start, crash) and what they have applied. */
export class SimCluster {
  readonly nodes = new Map<string, SimNode>();
  /** Hosts of earlier lives, for what they counted. */
  readonly gone: GroupHost[] = [];
  #compactions = 0;
  #snapshotsInstalled = 0;

  /** Starts every node, each with a disk that draws from a stream forked from `rng`. */
  constructor(
    private readonly world: SimWorld,
    rng: Rng,
    private readonly events: NodeEvents,
  ) {
    for (const id of world.peers) {
      const node: SimNode = {
        id,
        disk: new SimDisk(world.scheduler, rng.fork(), world.scenario.fsyncMs),
        host: undefined,
        kv: new KvStore(),
        incarnation: 0,
        applyWaiters: [],
      };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  /** Compactions done (leader mode with compaction). */
  get compactions(): number {
    return this.#compactions;
  }

  /** Snapshots installed from peers (leader mode). */
  get snapshotsInstalled(): number {
    return this.#snapshotsInstalled;
  }

  up(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.host !== undefined);
  }

  down(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.host === undefined);
  }

  /** Runs `fire` once `node` (its current life) has applied `slot`. */
  whenApplied(node: SimNode, slot: number, fire: () => void): void {
    if ((node.host?.deliveredThrough ?? -1) >= slot) fire();
    else node.applyWaiters.push({ slot, fire });
  }

  /** Answers the writes waiting at `node` whose slots are now applied there. */
  #releaseApplied(node: SimNode, through: number): void {
    if (node.applyWaiters.length === 0) return;
    const ready = node.applyWaiters.filter((w) => w.slot <= through);
    node.applyWaiters = node.applyWaiters.filter((w) => w.slot > through);
    for (const waiter of ready) waiter.fire();
  }

  /** A new life of `node`, from what its disk kept. */
  start(node: SimNode): void {
    const { seed, scenario, scheduler, network, checker, trace, peers, founders } = this.world;
    node.incarnation++;
    node.applyWaiters = [];
    trace?.(`${node.id} starts (life ${node.incarnation})`);
    const saved = node.disk.snapshot;
    node.kv = saved === undefined ? new KvStore() : KvStore.restore(saved.bytes);
    checker.restarted(node.id, saved?.throughSlot ?? -1, node.kv);
    if (node.incarnation > 1)
      checker.recoveredAcceptor(node.id, AcceptorState.recover(node.disk.durable));
    const compaction = scenario.compaction;
    let snapshotThrough = saved?.throughSlot ?? -1;
    const incarnation = node.incarnation;
    /** Snapshot every `every` slots; once it is durable, compact all but the last `retain` slots. */
    const maybeSnapshot = (slot: number): void => {
      if (compaction === undefined || slot - snapshotThrough < compaction.every) return;
      snapshotThrough = slot;
      const membership = node.host?.membershipThrough(slot).toRecord();
      const snapshot = { throughSlot: slot, bytes: node.kv.snapshot() };
      node.disk.saveSnapshot({ ...snapshot, ...(membership && { membership }) }, () => {
        const through = slot - compaction.retain;
        if (node.incarnation !== incarnation || through < 0 || node.host === undefined) return;
        node.host.compact(through);
        this.#compactions++;
      });
    };
    node.host = new GroupHost({
      group: GROUP,
      nodeId: node.id,
      founders,
      ...(scenario.membership === undefined
        ? {}
        : { membershipWindow: scenario.membership.window }),
      transport: network.connect(node.id),
      scheduler,
      disk: node.disk,
      seed: seed * 31 + node.incarnation * 1_000_003 + peers.indexOf(node.id),
      mode: scenario.mode,
      ...(scenario.plant === undefined ? {} : { plant: scenario.plant }),
      ...(scenario.mode === 'leader'
        ? {
            snapshots: {
              initial: saved,
              latest: () => node.disk.snapshot,
              install: (snapshot) => {
                this.#snapshotsInstalled++;
                node.kv = KvStore.restore(snapshot.bytes);
                checker.installedSnapshot(node.id, snapshot.throughSlot, node.kv);
                snapshotThrough = snapshot.throughSlot;
                this.#releaseApplied(node, snapshot.throughSlot);
                node.disk.saveSnapshot(snapshot, () => undefined);
              },
            },
            limits: { snapshotChunkBytes: compaction?.chunkBytes ?? 256 * 1024 },
          }
        : {}),
      observer: checkedObserver(checker, trace, {
        apply: (v, s) => node.kv.apply(v, s),
        delivered: (n, s, v) => {
          this.#releaseApplied(node, s);
          maybeSnapshot(s);
          this.events.delivered(node, n, s, v);
        },
        chosen: (i) => this.events.chosen(node, i),
        sentAccept: (n) => this.events.sentAccept(n),
        leads: () => this.events.leads(node),
      }),
    });
  }

  crash(node: SimNode): void {
    this.world.trace?.(`${node.id} CRASHES`);
    if (node.host !== undefined) this.gone.push(node.host);
    node.host?.stop();
    node.host = undefined;
    node.disk.crash();
    this.events.crashed(node);
  }
}
