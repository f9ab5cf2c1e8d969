import { DecodeError, packChecked, unpackStrict } from '@synod/protocol';

/**
 * What a node publishes on `synod.<group>.inspect.<node>` while a viewer watches: every few
 * hundred milliseconds, one batch with the node's summary, the current state of each of its
 * actors, and the inspection events since the last batch (msgpack, like every peer message).
 */
export interface InspectBatch {
  readonly v: 1;
  readonly group: string;
  readonly node: string;
  /** Counts this node's batches since it started: a viewer sees gaps and restarts. */
  readonly seq: number;
  /** Unix milliseconds at the node when the batch was cut. */
  readonly at: number;
  readonly summary: NodeSummary;
  /** Every live actor of the node and the state it is in now. */
  readonly actors: readonly ActorState[];
  readonly events: readonly InspectEvent[];
  /**
   * Events left out to keep the batch bounded: once a batch is full the node stops watching
   * until the next, and estimates how many it missed from the rate the batch filled at.
   */
  readonly dropped: number;
}

/** What `synod status` says of a node, the part a viewer shows. */
export interface NodeSummary {
  readonly role: string;
  readonly leader: string | null;
  readonly ballot: string;
  readonly commitIndex: number;
  /** The highest slot this node's acceptor accepted a value for. */
  readonly acceptedThrough: number;
  readonly appliedThrough: number;
  readonly members: readonly string[];
  /** Phase-1 and phase-2 answers this node's acceptor gave since it started. */
  readonly phase1Answers: number;
  readonly phase2Answers: number;
}

export interface ActorState {
  /** Unique on the node: the host's name for a root actor (`leader#2`), `root/child` below it. */
  readonly id: string;
  /** The machine's id (`leader`, `acceptor`, `learner`, `proposer`, ...). */
  readonly machine: string;
  /** The state value, as text: `leading`, `campaigning.phase1`, ... */
  readonly state: string;
}

/**
 * One XState inspection event, with actor refs replaced by names (refs form cycles):
 * - `actor`: an actor was created;
 * - `event`: an actor received `event` (from `source`, when an actor sent it);
 * - `transition`: an actor's state value changed to `state`.
 */
export interface InspectEvent {
  readonly at: number;
  readonly kind: 'actor' | 'event' | 'transition';
  readonly actor: string;
  readonly event?: string;
  readonly source?: string;
  readonly state?: string;
}

/** A batch bigger than this is not sent (the events are cut well before it). */
export const MAX_INSPECT_BATCH_BYTES = 512 * 1024;

export function encodeInspectBatch(batch: InspectBatch): Uint8Array {
  return packChecked(batch, MAX_INSPECT_BATCH_BYTES);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= -1;

function fail(what: string): never {
  throw new DecodeError('MALFORMED', `inspection batch: ${what}`);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} is not a map`);
  return v as Record<string, unknown>;
}

/**
 * Decodes and checks a batch field by field (msgpack decodes some random bytes without
 * error, DEPENDENCIES.md). Throws DecodeError for anything else; a viewer drops and counts it.
 */
export function decodeInspectBatch(bytes: Uint8Array): InspectBatch {
  const b = record(unpackStrict(bytes, MAX_INSPECT_BATCH_BYTES), 'the batch');
  if (b.v !== 1) fail(`version ${String(b.v)}, not 1`);
  if (!isString(b.group) || !isString(b.node)) fail('group or node is not text');
  if (!isCount(b.seq) || !isCount(b.at) || !isCount(b.dropped))
    fail('seq, at or dropped is not a count');
  const s = record(b.summary, 'summary');
  if (
    !isString(s.role) ||
    !(s.leader === null || isString(s.leader)) ||
    !isString(s.ballot) ||
    !isCount(s.commitIndex) ||
    !isCount(s.acceptedThrough) ||
    !isCount(s.appliedThrough) ||
    !isCount(s.phase1Answers) ||
    !isCount(s.phase2Answers) ||
    !Array.isArray(s.members) ||
    !s.members.every(isString)
  )
    fail('summary has a field of the wrong type');
  if (!Array.isArray(b.actors) || !Array.isArray(b.events)) fail('actors or events is not a list');
  const actors = b.actors.map((a) => {
    const r = record(a, 'an actor');
    if (!isString(r.id) || !isString(r.machine) || !isString(r.state))
      fail('an actor has a field of the wrong type');
    return { id: r.id, machine: r.machine, state: r.state };
  });
  const events = b.events.map((e) => {
    const r = record(e, 'an event');
    if (
      !isCount(r.at) ||
      !isString(r.actor) ||
      !['actor', 'event', 'transition'].includes(r.kind as string)
    )
      fail('an event has a field of the wrong type');
    for (const field of ['event', 'source', 'state'])
      if (r[field] !== undefined && !isString(r[field])) fail(`an event's ${field} is not text`);
    return r as unknown as InspectEvent;
  });
  return {
    v: 1,
    group: b.group,
    node: b.node,
    seq: b.seq,
    at: b.at,
    summary: {
      role: s.role,
      leader: s.leader,
      ballot: s.ballot,
      commitIndex: s.commitIndex,
      acceptedThrough: s.acceptedThrough,
      appliedThrough: s.appliedThrough,
      members: s.members,
      phase1Answers: s.phase1Answers,
      phase2Answers: s.phase2Answers,
    },
    actors,
    events,
    dropped: b.dropped,
  };
}

/** The summary's fields out of a node's whole status (NodeRuntime.status()). */
export function nodeSummary(status: NodeSummary): NodeSummary {
  return {
    role: status.role,
    leader: status.leader,
    ballot: status.ballot,
    commitIndex: status.commitIndex,
    acceptedThrough: status.acceptedThrough,
    appliedThrough: status.appliedThrough,
    members: status.members,
    phase1Answers: status.phase1Answers,
    phase2Answers: status.phase2Answers,
  };
}
