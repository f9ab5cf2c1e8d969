import type { StoreRecord, Value } from '@synod/protocol';
import { MemoryNetwork, type Scheduler, VirtualScheduler } from '@synod/transport';
import {
  type Disk,
  GroupHost,
  type GroupHostOptions,
  type HostLimits,
  type SnapshotHooks,
  type SubmitResult,
} from '../src/index.js';

export const GROUP = 'hosttest';
export const PEERS = ['a', 'b', 'c'] as const;

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Durable records in memory; a write lands and is acknowledged on a later scheduler turn. */
export class MemoryDisk implements Disk {
  durable: StoreRecord[] = [];
  writes = 0;
  rewrites = 0;

  constructor(private readonly scheduler: Scheduler) {}

  write(records: readonly StoreRecord[], done: () => void): void {
    this.writes++;
    this.scheduler.setTimer(1, () => {
      this.durable.push(...records);
      done();
    });
  }

  rewrite(records: readonly StoreRecord[]): void {
    this.rewrites++;
    this.durable = [...records];
  }
}

export interface NodeOptions {
  readonly snapshots?: SnapshotHooks;
  readonly limits?: Partial<HostLimits>;
  readonly delivered?: (slot: number, value: Value) => void;
}

/** Hosts of one group on an in-memory network under virtual time; no faults unless asked. */
export class Cluster {
  readonly scheduler = new VirtualScheduler();
  readonly network = new MemoryNetwork({ seed: 7, scheduler: this.scheduler });
  readonly disks = new Map<string, MemoryDisk>();
  readonly hosts = new Map<string, GroupHost>();
  /** Every host ever started (earlier lives included), for their failure counts. */
  readonly everyHost: GroupHost[] = [];
  readonly failures: { node: string; error: unknown }[] = [];
  readonly transports: ReturnType<MemoryNetwork['connect']>[] = [];
  #lives = 0;

  constructor(
    readonly mode: 'leader' | 'leaderless',
    readonly peers: readonly string[] = PEERS,
  ) {}

  /** Starts (or restarts, on the disk it kept) `id`. */
  start(id: string, options: NodeOptions = {}): GroupHost {
    let disk = this.disks.get(id);
    if (disk === undefined) {
      disk = new MemoryDisk(this.scheduler);
      this.disks.set(id, disk);
    }
    const transport = this.network.connect(id);
    this.transports.push(transport);
    const life = ++this.#lives;
    const hostOptions: GroupHostOptions = {
      group: GROUP,
      nodeId: id,
      founders: this.peers,
      transport,
      scheduler: this.scheduler,
      disk,
      seed: 1000 * life + this.peers.indexOf(id),
      mode: this.mode,
      observer: {
        failed: (node, error) => void this.failures.push({ node, error }),
        ...(options.delivered === undefined
          ? {}
          : { delivered: (_node, slot, value) => options.delivered!(slot, value) }),
      },
      ...(options.snapshots === undefined ? {} : { snapshots: options.snapshots }),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    };
    const host = new GroupHost(hostOptions);
    this.hosts.set(id, host);
    this.everyHost.push(host);
    return host;
  }

  startAll(): void {
    for (const id of this.peers) this.start(id);
  }

  host(id: string): GroupHost {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`no host ${id}`);
    return host;
  }

  stop(id: string): void {
    this.host(id).stop();
    this.hosts.delete(id);
  }

  /**
   * Steps virtual time until `done` holds; fails if it does not within `withinMs` of
   * simulated time. Returns the simulated time it took.
   */
  runUntil(done: () => boolean, withinMs: number): number {
    const start = this.scheduler.now();
    const deadline = start + withinMs;
    while (!done()) {
      if (this.scheduler.now() > deadline || !this.scheduler.step())
        throw new Error(`condition not reached within ${withinMs} simulated ms`);
    }
    return this.scheduler.now() - start;
  }

  /** Lets `ms` of simulated time pass. */
  advance(ms: number): void {
    this.scheduler.runUntil(this.scheduler.now() + ms);
  }

  /** The leader every running host agrees on, if they all agree on one. */
  agreedLeader(): string | undefined {
    const views = [...this.hosts.values()].map((h) => h.leader);
    const first = views[0];
    return first !== undefined && views.every((v) => v === first) ? first : undefined;
  }

  /** Elects a leader, returns its id. */
  elect(withinMs = 2_000): string {
    this.runUntil(() => this.agreedLeader() !== undefined, withinMs);
    return this.agreedLeader()!;
  }

  /** Submits on `id` and runs until it is answered. */
  submit(id: string, value: string, withinMs = 1_000): SubmitResult {
    let result: SubmitResult | undefined;
    this.host(id).submit(bytes(value), (r) => {
      result = r;
    });
    this.runUntil(() => result !== undefined, withinMs);
    return result!;
  }

  /** Errors no one should have seen: machine failures and transport handler exceptions. */
  problems(): unknown[] {
    return [
      ...this.failures,
      ...this.transports
        .filter((t) => t.stats().handlerErrors > 0)
        .map((t) => `${t.nodeId}: ${t.stats().handlerErrors} handler errors`),
    ];
  }

  stopAll(): void {
    for (const id of [...this.hosts.keys()]) this.stop(id);
  }
}

/** A host's log as [slot, text] pairs, in slot order. */
export function logOf(host: GroupHost): [number, string][] {
  return [...host.log.entries()].sort(([x], [y]) => x - y).map(([slot, v]) => [slot, text(v)]);
}
