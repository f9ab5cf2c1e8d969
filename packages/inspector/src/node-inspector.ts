import type { InspectionSink } from '@synod/host';
import { groupSubjects } from '@synod/protocol';
import type { Transport, Subscription as TransportSubscription } from '@synod/transport';
import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';
import {
  type ActorState,
  encodeInspectBatch,
  type InspectEvent,
  type NodeSummary,
} from './batch.js';

export interface NodeInspectorOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly nodeId: string;
  /** The node's summary, read once per batch (NodeRuntime.status()). */
  readonly summary: () => NodeSummary;
  /** How often a batch goes out while someone watches. Default 250 ms. */
  readonly flushMs?: number;
  /** Most events one batch carries; once full, the node stops watching until the next batch. Default 200. */
  readonly maxEvents?: number;
  /** A viewer that has not said it watches for this long is gone. Default 3,000 ms. */
  readonly idleMs?: number;
  readonly now?: () => number;
}

const DEFAULT_FLUSH_MS = 250;
const DEFAULT_MAX_EVENTS = 200;
const DEFAULT_IDLE_MS = 3_000;

/**
 * Publishes a node's actors to viewers (`synod inspect`), through XState's inspection API.
 *
 * The host tells it of every root actor it starts (InspectionSink). Nothing is watched while
 * nobody looks: only when a viewer's heartbeat arrives on `synod.<group>.inspect` does it
 * attach an observer to each actor's system (`actor.system.inspect`), and it detaches them
 * once heartbeats stop for `idleMs`. So a node that nobody inspects pays one map entry per
 * actor it starts, and XState skips building inspection events for systems without
 * observers. Issue 6 asked for actors created with XState's `inspect` option; that option
 * cannot be removed later and would run the observer for every event of every actor forever,
 * watched or not.
 *
 * While watched, it publishes one batch every `flushMs` on `synod.<group>.inspect.<node>`:
 * the node's summary, each live actor's current state, and at most `maxEvents` inspection
 * events. Once a batch is full the observers are detached until the next one (sampling): a
 * busy node pays for at most `maxEvents` events per period, and the batch's `dropped` is
 * estimated from the rate at which the batch filled up.
 */
export class NodeInspector implements InspectionSink {
  readonly #o: NodeInspectorOptions;
  readonly #subject: string;
  readonly #now: () => number;
  readonly #maxEvents: number;
  readonly #idleMs: number;
  /** Root actors by the host's name for them, and their system's observer while watched. */
  readonly #roots = new Map<string, { actor: AnyActorRef; watch?: Subscription }>();
  /** Actor session ids to names, for events (refs cannot be sent: they form cycles). */
  readonly #names = new Map<string, string>();
  readonly #lastState = new Map<string, string>();
  readonly #watchSubscription: TransportSubscription;
  #events: InspectEvent[] = [];
  #seq = 0;
  #watchedAt = Number.NEGATIVE_INFINITY;
  /** When the current batch's period began, and when its batch filled up (undefined: not yet). */
  #periodStart = 0;
  #fullAt: number | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  readonly #observe = (event: InspectionEvent): void => this.#record(event);

  constructor(options: NodeInspectorOptions) {
    this.#o = options;
    const subjects = groupSubjects(options.group);
    this.#subject = subjects.inspect(options.nodeId);
    this.#now = options.now ?? Date.now;
    this.#maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.#watchSubscription = options.transport.subscribe(subjects.inspectWatch, () =>
      this.#watched(),
    );
  }

  /** Whether a viewer watches now (batches go out). */
  get watching(): boolean {
    return this.#timer !== undefined;
  }

  started(name: string, actor: AnyActorRef): void {
    if (this.#stopped) return;
    this.#roots.set(name, { actor });
    this.#names.set(actor.sessionId, name);
    // Forget an actor once it stops (proposers and catch-ups come and go with requests).
    const forget = () => this.#forget(name, actor);
    actor.subscribe({ complete: forget, error: forget });
    if (this.watching && this.#fullAt === undefined) {
      this.#attach(name);
      this.#push({ at: this.#now(), kind: 'actor', actor: name });
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#idle();
    this.#watchSubscription.unsubscribe();
    this.#roots.clear();
    this.#names.clear();
  }

  #forget(name: string, actor: AnyActorRef): void {
    const root = this.#roots.get(name);
    if (root?.actor !== actor) return;
    root.watch?.unsubscribe();
    this.#roots.delete(name);
    this.#names.delete(actor.sessionId);
  }

  #watched(): void {
    if (this.#stopped) return;
    this.#watchedAt = this.#now();
    if (this.watching) return;
    this.#periodStart = this.#now();
    this.#fullAt = undefined;
    for (const name of this.#roots.keys()) this.#attach(name);
    this.#timer = setInterval(() => this.#flush(), this.#o.flushMs ?? DEFAULT_FLUSH_MS);
    this.#timer.unref?.();
    this.#flush();
  }

  #attach(name: string): void {
    const root = this.#roots.get(name);
    if (root === undefined || root.watch !== undefined) return;
    root.watch = root.actor.system.inspect(this.#observe);
  }

  /** Nobody watches: detach every observer and forget what was gathered. */
  #idle(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#detach();
    this.#fullAt = undefined;
    this.#events = [];
    this.#lastState.clear();
    // Child actors were named while watched; keep the roots' names only.
    this.#names.clear();
    for (const [name, root] of this.#roots) this.#names.set(root.actor.sessionId, name);
  }

  #nameOf(ref: { readonly sessionId: string }, rootId: string): string {
    const known = this.#names.get(ref.sessionId);
    if (known !== undefined) return known;
    const id = (ref as { id?: unknown }).id;
    const name = `${this.#names.get(rootId) ?? rootId}/${typeof id === 'string' ? id : ref.sessionId}`;
    this.#names.set(ref.sessionId, name);
    return name;
  }

  #push(event: InspectEvent): void {
    if (this.#events.length >= this.#maxEvents) return;
    this.#events.push(event);
    if (this.#events.length < this.#maxEvents) return;
    // The batch is full: stop watching until the next one, so a busy node pays for at most
    // `maxEvents` events per period (the rest are estimated at the flush).
    this.#fullAt = this.#now();
    this.#detach();
  }

  #detach(): void {
    for (const root of this.#roots.values()) {
      root.watch?.unsubscribe();
      delete root.watch;
    }
  }

  #record(event: InspectionEvent): void {
    // Actions (most inspection events) are not shown.
    if (event.type === '@xstate.action') return;
    if (event.type === '@xstate.event') {
      const source =
        event.sourceRef === undefined ? undefined : this.#nameOf(event.sourceRef, event.rootId);
      this.#push({
        at: this.#now(),
        kind: 'event',
        actor: this.#nameOf(event.actorRef, event.rootId),
        event: event.event.type,
        ...(source === undefined ? {} : { source }),
      });
    } else if (event.type === '@xstate.snapshot') {
      const actor = this.#nameOf(event.actorRef, event.rootId);
      const state = stateText(event.snapshot);
      if (this.#lastState.get(actor) === state) return;
      this.#lastState.set(actor, state);
      this.#push({ at: this.#now(), kind: 'transition', actor, state });
    } else if (event.type === '@xstate.actor') {
      this.#push({
        at: this.#now(),
        kind: 'actor',
        actor: this.#nameOf(event.actorRef, event.rootId),
      });
    }
  }

  #flush(): void {
    if (this.#now() - this.#watchedAt > this.#idleMs || this.#o.transport.closed) {
      this.#idle();
      return;
    }
    const actors: ActorState[] = [];
    for (const [name, root] of this.#roots) {
      const snapshot = root.actor.getSnapshot() as Snapshotish;
      if (snapshot.status !== 'active') {
        this.#forget(name, root.actor);
        continue;
      }
      collect(name, root.actor, snapshot, actors);
    }
    const now = this.#now();
    const events = this.#events;
    let dropped = 0;
    if (this.#fullAt !== undefined) {
      // Not watched since the batch filled up: as many more events as that rate gives.
      const filledIn = Math.max(1, this.#fullAt - this.#periodStart);
      dropped = Math.round((events.length * Math.max(0, now - this.#fullAt)) / filledIn);
      this.#fullAt = undefined;
      for (const name of this.#roots.keys()) this.#attach(name);
    }
    this.#periodStart = now;
    this.#events = [];
    try {
      this.#o.transport.publish(
        this.#subject,
        encodeInspectBatch({
          v: 1,
          group: this.#o.group,
          node: this.#o.nodeId,
          seq: this.#seq++,
          at: now,
          summary: this.#o.summary(),
          actors,
          events,
          dropped,
        }),
      );
    } catch {
      // A closed connection or an oversized batch: the next one goes out as usual.
    }
  }
}

interface Snapshotish {
  readonly status: string;
  readonly value?: unknown;
  readonly children?: Readonly<Record<string, AnyActorRef | undefined>>;
  readonly machine?: { readonly id?: string };
}

/** An actor and its children, each with its state now. */
function collect(
  name: string,
  actor: AnyActorRef,
  snapshot: Snapshotish,
  into: ActorState[],
): void {
  into.push({ id: name, machine: machineId(actor), state: stateText(snapshot) });
  for (const [key, child] of Object.entries(snapshot.children ?? {})) {
    if (child === undefined) continue;
    const childSnapshot = child.getSnapshot() as Snapshotish;
    if (childSnapshot.status === 'active') collect(`${name}/${key}`, child, childSnapshot, into);
  }
}

function machineId(actor: AnyActorRef): string {
  const logic = (actor as { logic?: { id?: unknown } }).logic;
  return typeof logic?.id === 'string' ? logic.id : 'actor';
}

/** A state value as text: `leading`, `campaigning.phase1`, parallel regions joined by commas. */
export function stateText(snapshot: unknown): string {
  const s = snapshot as Snapshotish;
  if (s.value === undefined) return s.status;
  return valueText(s.value);
}

function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([region, inner]) => {
      const rest = valueText(inner);
      return rest === '' ? region : `${region}.${rest}`;
    })
    .join(',');
}
