import { DecodeError } from './errors.js';
import type { Value } from './messages.js';
import { assertNodeId } from './names.js';

/**
 * How many slots after its own slot a membership change takes effect (Lamport's α), unless a
 * group is founded with another window. A leader starts slot s only once every slot up to
 * s - window is known chosen, so it always knows which members must accept s; the window is
 * also how far a leader pipelines. Every node of a group must use the same window.
 */
export const MEMBERSHIP_WINDOW = 64;

/** Most members a group may have: every member takes part in every quorum. */
export const MAX_MEMBERS = 15;

/**
 * A membership value starts with 0xC1, a byte msgpack never produces and UTF-8 never starts a
 * character with, so it cannot be mistaken for a batch of writes, a JSON value or a no-op.
 */
const MARK = 0xc1;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A change of members, as it sits in the log. */
export interface MembershipChange {
  /** The slot the change was chosen in: it governs slots from slot + the window on. */
  readonly slot: number;
  readonly members: readonly string[];
}

/** Members sorted, each a valid node id, none twice, at least one. Throws RangeError otherwise. */
export function normalizeMembers(members: readonly unknown[]): readonly string[] {
  if (members.length === 0) throw new RangeError('a group needs at least one member');
  if (members.length > MAX_MEMBERS)
    throw new RangeError(`a group has at most ${MAX_MEMBERS} members, got ${members.length}`);
  const ids = members.map((m) => assertNodeId(m));
  const unique = [...new Set(ids)].sort();
  if (unique.length !== ids.length) throw new RangeError('a member is listed twice');
  return unique;
}

/**
 * The log value that makes `members` the group's members (a window of slots later). With
 * `from`, the change holds only if the members are `from` when it is applied (compare and
 * set): two changes computed from the same members, by two leaders one after the other,
 * cannot both hold, so neither is lost unnoticed.
 */
export function encodeMembership(members: readonly string[], from?: readonly string[]): Value {
  const body = encoder.encode(
    JSON.stringify({
      members: normalizeMembers(members),
      ...(from === undefined ? {} : { from: normalizeMembers(from) }),
    }),
  );
  const value = new Uint8Array(body.length + 1);
  value[0] = MARK;
  value.set(body, 1);
  return value;
}

export function isMembershipValue(value: Value): boolean {
  return value.length > 0 && value[0] === MARK;
}

/**
 * The members a membership value names; undefined for any other value. A value marked as a
 * membership change that does not decode is a DecodeError: it must never be applied as data.
 */
export function decodeMembership(value: Value): readonly string[] | undefined {
  return decodeMembershipChange(value)?.members;
}

/** The members a membership value names, and the members it expects to replace (if any). */
export function decodeMembershipChange(
  value: Value,
): { readonly members: readonly string[]; readonly from?: readonly string[] } | undefined {
  if (!isMembershipValue(value)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(value.subarray(1)));
  } catch (cause) {
    throw new DecodeError('MALFORMED', 'a membership entry is not valid JSON', '', { cause });
  }
  const members = (doc as { members?: unknown } | null)?.members;
  const from = (doc as { from?: unknown } | null)?.from;
  if (!Array.isArray(members))
    throw new DecodeError('MALFORMED', 'a membership entry has no member list');
  if (from !== undefined && !Array.isArray(from))
    throw new DecodeError('MALFORMED', 'a membership entry has a "from" that is not a list');
  try {
    return {
      members: normalizeMembers(members),
      ...(from === undefined ? {} : { from: normalizeMembers(from) }),
    };
  } catch (cause) {
    throw new DecodeError('MALFORMED', `a membership entry is invalid: ${String(cause)}`, '', {
      cause,
    });
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((m, i) => m === b[i]);
}

/** The plain form of a Membership, for snapshots and status. */
export interface MembershipRecord {
  readonly genesis: readonly string[];
  readonly window?: number;
  readonly changes: readonly MembershipChange[];
}

/**
 * A group's members over its log: the founding members, then each change chosen in the log.
 * Immutable; pure. membersAt(s) is the set whose majority must accept slot s.
 */
export class Membership {
  readonly genesis: readonly string[];
  /** In slot order. */
  readonly changes: readonly MembershipChange[];
  /** A change chosen at slot c governs slots from c + window on. */
  readonly window: number;

  constructor(
    genesis: readonly string[],
    changes: readonly MembershipChange[] = [],
    window = MEMBERSHIP_WINDOW,
  ) {
    if (!Number.isSafeInteger(window) || window < 1)
      throw new RangeError(`the membership window must be a positive integer, got ${window}`);
    this.window = window;
    this.genesis = normalizeMembers(genesis);
    for (let i = 1; i < changes.length; i++)
      if (changes[i]!.slot <= changes[i - 1]!.slot)
        throw new RangeError('membership changes must be in slot order');
    this.changes = changes.map((c) => ({ slot: c.slot, members: normalizeMembers(c.members) }));
  }

  static from(record: MembershipRecord): Membership {
    return new Membership(record.genesis, record.changes, record.window ?? MEMBERSHIP_WINDOW);
  }

  toRecord(): MembershipRecord {
    return { genesis: this.genesis, changes: this.changes, window: this.window };
  }

  /** The members that govern `slot`. */
  membersAt(slot: number): readonly string[] {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const change = this.changes[i]!;
      if (change.slot + this.window <= slot) return change.members;
    }
    return this.genesis;
  }

  /** The members once every change so far is in effect. */
  get latest(): readonly string[] {
    return this.changes.at(-1)?.members ?? this.genesis;
  }

  /** This membership with a change chosen at `slot` (after every change it holds). */
  withChange(slot: number, members: readonly string[]): Membership {
    const last = this.changes.at(-1);
    if (last !== undefined && slot <= last.slot) return this;
    return new Membership(this.genesis, [...this.changes, { slot, members }], this.window);
  }

  /**
   * This membership after the value chosen at `slot`: changed if the value is a membership
   * change whose `from` (if it has one) is the latest members; otherwise unchanged (a damaged
   * change, or one computed from members another change replaced, holds nowhere). The log is
   * the same on every node, so this rule gives every node the same members.
   */
  after(slot: number, value: Value): Membership {
    let change: ReturnType<typeof decodeMembershipChange>;
    try {
      change = decodeMembershipChange(value);
    } catch {
      return this;
    }
    if (change === undefined) return this;
    if (change.from !== undefined && !sameMembers(change.from, this.latest)) return this;
    return this.withChange(slot, change.members);
  }

  /** Only the changes chosen at or before `slot`: what a snapshot through `slot` carries. */
  through(slot: number): Membership {
    const kept = this.changes.filter((c) => c.slot <= slot);
    return kept.length === this.changes.length
      ? this
      : new Membership(this.genesis, kept, this.window);
  }

  /** Every distinct member set that governs some slot at or after `slot`. */
  configsFrom(slot: number): (readonly string[])[] {
    const configs = [this.membersAt(slot)];
    for (const change of this.changes)
      if (change.slot + this.window > slot) configs.push(change.members);
    const seen = new Set<string>();
    return configs.filter((c) => {
      const key = c.join(',');
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
}

/** The smallest majority of `n` members. */
export function majorityOf(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`acceptor count must be a positive integer, got ${n}`);
  return Math.floor(n / 2) + 1;
}

/**
 * True once `refusals` of `acceptors` acceptors (counted, not named: pg_paxos's leaderless
 * group, where any majority of the founding acceptors decides) refused: no majority can agree.
 */
export function majorityUnreachable(refusals: number, acceptors: number): boolean {
  return refusals > acceptors - majorityOf(acceptors);
}

const countIn = (set: ReadonlySet<string>, members: readonly string[]): number =>
  members.reduce((count, member) => count + (set.has(member) ? 1 : 0), 0);

/** True when `voters` hold a majority of `members`. */
export function isMajorityOf(voters: ReadonlySet<string>, members: readonly string[]): boolean {
  return countIn(voters, members) >= majorityOf(members.length);
}

/** True once so many of `members` refused that no majority of them can agree. */
export function majorityImpossible(
  refusals: ReadonlySet<string>,
  members: readonly string[],
): boolean {
  return countIn(refusals, members) > members.length - majorityOf(members.length);
}
