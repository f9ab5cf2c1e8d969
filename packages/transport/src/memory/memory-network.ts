import { createRng, type Rng } from '../rng.js';
import { realScheduler, type Scheduler } from '../scheduler.js';
import { subjectMatches } from '../subjects.js';
import type { TransportMessage } from '../types.js';
import { FaultModel, type FaultOptions } from './fault-model.js';
import type { Route, RouteOwner, RouteTable } from './memory-routes.js';
import { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';

/** One thing the network did with a message, for replay checks and debugging. */
export interface TraceEvent {
  readonly at: number;
  readonly kind: 'deliver' | 'drop' | 'partition' | 'no-responders';
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly bytes: number;
}

export interface MemoryNetworkOptions {
  /** Seeds every random choice: faults and queue-group picks. Default 1. */
  readonly seed?: number;
  /** Real timers by default; the simulator passes a VirtualScheduler. */
  readonly scheduler?: Scheduler;
  readonly faults?: FaultOptions;
  /** Largest payload, like NATS's max_payload. Default 1 MiB. */
  readonly maxPayloadBytes?: number;
  readonly trace?: (event: TraceEvent) => void;
}

/**
 * NATS semantics in one process: subjects with wildcards, queue groups, request/reply, and
 * at-most-once delivery through a seeded fault model (drop, duplicate, delay, reorder,
 * partitions). With a VirtualScheduler and a fixed seed, a run replays exactly.
 */
export class MemoryNetwork implements RouteTable {
  readonly scheduler: Scheduler;
  readonly faults: FaultModel;
  readonly maxPayloadBytes: number;
  readonly #rng: Rng;
  readonly #trace: ((event: TraceEvent) => void) | undefined;
  readonly #routes: Route[] = [];
  #endpoints = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.scheduler = options.scheduler ?? realScheduler;
    const rng = createRng(options.seed ?? 1);
    this.faults = new FaultModel(rng.fork());
    this.#rng = rng.fork();
    this.#trace = options.trace;
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    if (options.faults !== undefined) this.faults.configure(options.faults);
  }

  /** A transport for one node. Several transports may share a node id (same side of a partition). */
  connect(nodeId: string, options: MemoryTransportOptions = {}): MemoryTransport {
    return new MemoryTransport(this, nodeId, `_INBOX.${nodeId}-${this.#endpoints++}`, options);
  }

  configureFaults(options: FaultOptions): void {
    this.faults.configure(options);
  }

  /** Splits the nodes into sets that cannot reach one another (see FaultModel). */
  partition(...sets: (readonly string[])[]): void {
    this.faults.partition(sets);
  }

  heal(): void {
    this.faults.heal();
  }

  /** @internal */
  addRoute(route: Route): void {
    this.#routes.push(route);
  }

  /** @internal */
  removeRoute(route: Route): void {
    route.active = false;
    const index = this.#routes.indexOf(route);
    if (index >= 0) this.#routes.splice(index, 1);
  }

  /**
   * @internal Routes one published message. `onSettled` is called once every copy has been
   * delivered or dropped, which is what flush() waits for.
   */
  route(from: RouteOwner, message: TransportMessage, onSettled: () => void): void {
    const tokens = message.subject.split('.');
    const targets: Route[] = [];
    const queues = new Map<string, Route[]>();
    for (const route of this.#routes) {
      if (!route.active || !subjectMatches(route.tokens, tokens)) continue;
      if (route.queue === undefined) targets.push(route);
      else {
        const members = queues.get(route.queue) ?? [];
        members.push(route);
        queues.set(route.queue, members);
      }
    }
    for (const members of queues.values())
      targets.push(members[this.#rng.int(0, members.length - 1)]!);

    if (targets.length === 0) {
      if (message.reply !== undefined) this.#noResponders(from, message);
      onSettled();
      return;
    }
    let outstanding = 0;
    const settle = (): void => {
      if (--outstanding === 0) onSettled();
    };
    for (const target of targets) {
      const to = target.owner.nodeId;
      const fate = this.faults.fate(from.nodeId, to);
      if (fate.delaysMs.length === 0) {
        this.#emit(fate.reason === 'partitioned' ? 'partition' : 'drop', from.nodeId, to, message);
        continue;
      }
      for (const delay of fate.delaysMs) {
        outstanding++;
        this.scheduler.setTimer(delay, () => {
          if (target.active) {
            this.#emit('deliver', from.nodeId, to, message);
            target.handler({ ...message, data: message.data.slice() });
          }
          settle();
        });
      }
    }
    if (outstanding === 0) onSettled();
  }

  #noResponders(from: RouteOwner, message: TransportMessage): void {
    const reply = message.reply!;
    this.#emit('no-responders', from.nodeId, from.nodeId, message);
    this.scheduler.setTimer(0, () => from.receiveNoResponders(reply));
  }

  #emit(kind: TraceEvent['kind'], from: string, to: string, message: TransportMessage): void {
    this.#trace?.({
      at: this.scheduler.now(),
      kind,
      from,
      to,
      subject: message.subject,
      bytes: message.data.length,
    });
  }
}
