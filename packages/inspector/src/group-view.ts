import { groupSubjects } from '@synod/protocol';
import type { Subscription, Transport } from '@synod/transport';
import {
  type ActorState,
  decodeInspectBatch,
  type InspectBatch,
  type InspectEvent,
  type NodeSummary,
} from './batch.js';

/** What a viewer knows of one node: its last batch, and rates over the last few. */
export interface NodeView {
  readonly node: string;
  readonly summary: NodeSummary;
  readonly actors: readonly ActorState[];
  /** Inspection events (actor messages and transitions) per second, dropped ones included. */
  readonly eventsPerSecond: number;
  /** Phase-1 and phase-2 answers per second of this node's acceptor. */
  readonly messagesPerSecond: number;
  /** When the last batch arrived, viewer's clock (ms). */
  readonly seenAt: number;
}

/** An event as a viewer lists it: which node. */
export interface ViewEvent extends InspectEvent {
  readonly node: string;
}

export interface GroupViewOptions {
  readonly transport: Transport;
  readonly group: string;
  /** How often the viewer tells nodes it watches. Default 1,000 ms (nodes stop after 3 s of silence). */
  readonly heartbeatMs?: number;
  /** How many of the latest events it keeps. Default 200. */
  readonly keepEvents?: number;
  /** A node silent this long is shown as gone. Default 3,000 ms. */
  readonly staleMs?: number;
  readonly now?: () => number;
}

/**
 * A viewer's picture of a group, built from the nodes' inspection batches: each node's
 * summary and actors, the latest events of all nodes, and the rates. It tells the nodes it
 * watches (a heartbeat on `synod.<group>.inspect`); a malformed batch is dropped and
 * counted. The terminal and web views render it.
 */
export class GroupView {
  readonly group: string;
  readonly #o: GroupViewOptions;
  readonly #now: () => number;
  readonly #nodes = new Map<string, NodeView & { readonly batch: InspectBatch }>();
  readonly #events: ViewEvent[] = [];
  readonly #listeners = new Set<(batch: InspectBatch) => void>();
  readonly #subscription: Subscription;
  readonly #heartbeat: ReturnType<typeof setInterval>;
  /** Batches that did not decode: dropped. */
  malformed = 0;

  constructor(options: GroupViewOptions) {
    this.#o = options;
    this.group = options.group;
    this.#now = options.now ?? Date.now;
    const subjects = groupSubjects(options.group);
    this.#subscription = options.transport.subscribe(subjects.inspectAll, (m) => {
      let batch: InspectBatch;
      try {
        batch = decodeInspectBatch(m.data);
        if (batch.group !== options.group) throw new Error('another group');
      } catch {
        this.malformed++;
        return;
      }
      this.#take(batch);
    });
    const beat = () => {
      if (!options.transport.closed)
        options.transport.publish(subjects.inspectWatch, new Uint8Array());
    };
    beat();
    this.#heartbeat = setInterval(beat, options.heartbeatMs ?? 1_000);
  }

  /** Called with every batch that arrives (after the view took it). */
  onBatch(listener: (batch: InspectBatch) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The nodes heard from, by name, with `stale` set for one silent too long. */
  nodes(): (NodeView & { readonly stale: boolean })[] {
    const staleMs = this.#o.staleMs ?? 3_000;
    return [...this.#nodes.values()]
      .sort((a, b) => a.node.localeCompare(b.node))
      .map(({ batch: _, ...view }) => ({ ...view, stale: this.#now() - view.seenAt > staleMs }));
  }

  /** The latest events, oldest first. */
  events(): readonly ViewEvent[] {
    return this.#events;
  }

  /** The leader as most live nodes name it (null: none named). */
  leader(): string | null {
    const votes = new Map<string, number>();
    for (const view of this.nodes())
      if (!view.stale && view.summary.leader !== null)
        votes.set(view.summary.leader, (votes.get(view.summary.leader) ?? 0) + 1);
    let best: string | null = null;
    for (const [leader, count] of votes)
      if (best === null || count > votes.get(best)!) best = leader;
    return best;
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    this.#subscription.unsubscribe();
    this.#listeners.clear();
  }

  #take(batch: InspectBatch): void {
    const previous = this.#nodes.get(batch.node)?.batch;
    const seconds = previous === undefined ? 0 : (batch.at - previous.at) / 1000;
    const restarted = previous !== undefined && batch.seq <= previous.seq;
    const rate = (delta: number) => (seconds > 0 && !restarted ? Math.max(0, delta) / seconds : 0);
    this.#nodes.set(batch.node, {
      node: batch.node,
      batch,
      summary: batch.summary,
      actors: batch.actors,
      eventsPerSecond: rate(batch.events.length + batch.dropped),
      messagesPerSecond:
        previous === undefined
          ? 0
          : rate(
              batch.summary.phase1Answers +
                batch.summary.phase2Answers -
                previous.summary.phase1Answers -
                previous.summary.phase2Answers,
            ),
      seenAt: this.#now(),
    });
    for (const event of batch.events) this.#events.push({ ...event, node: batch.node });
    const keep = this.#o.keepEvents ?? 200;
    if (this.#events.length > keep) this.#events.splice(0, this.#events.length - keep);
    for (const listener of this.#listeners) listener(batch);
  }
}
