import { groupSubjects, isValidName, MAX_MEMBERS } from '@synod/protocol';
import { isIncarnation, type Registry, toRegistry } from './identity-file.js';

/** The subject every node of a group answers identity requests on (no queue group). */
export function identitySubject(group: string): string {
  return groupSubjects(group).identity;
}

/**
 * "Record that I am node `node`, incarnation `incarnation`", sent by a node before it first
 * votes (`voting: false`), and once by a voting node when it starts (`voting: true`: it
 * tells peers that missed it; a refusal then only warns). JSON, for operators to read.
 */
export interface IdentityRequest {
  readonly type: 'identity-request';
  readonly v: 1;
  readonly group: string;
  readonly node: string;
  readonly incarnation: string;
  readonly voting: boolean;
  /** Started with --join: it may be a node that is no member (yet, or any more). */
  readonly join: boolean;
  /** The founders it was started with (--peers), sorted. */
  readonly founders: readonly string[];
}

/**
 * - recorded: the peer has durably recorded the asker's incarnation (or already had it).
 * - conflict: the peer knows the asker as a member under another incarnation: the asker's
 *   state is lost. `known[node]` says which incarnation.
 * - not-member: the peer's log says the asker is no member, and it did not ask to join.
 * - founders-differ: the two nodes name different founders.
 */
export type Verdict = 'recorded' | 'conflict' | 'not-member' | 'founders-differ';

export interface IdentityAnswer {
  readonly type: 'identity-answer';
  readonly v: 1;
  readonly group: string;
  readonly node: string;
  readonly incarnation: string;
  /** false: the peer waits to be admitted itself (no log of its own to judge by). */
  readonly voting: boolean;
  readonly founders: readonly string[];
  /** The members in the peer's log; null while it waits. */
  readonly members: readonly string[] | null;
  readonly verdict: Verdict;
  /** The peer's registry, so the asker learns who else has voted. */
  readonly known: Registry;
}

/** An answer carries a registry: bounded, but larger than a request. */
const MAX_BYTES = 128 * 1024;
const VERDICTS: readonly string[] = ['recorded', 'conflict', 'not-member', 'founders-differ'];

export function encodeIdentity(message: IdentityRequest | IdentityAnswer): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message));
}

/** A request of `group`, or undefined for anything else (dropped like any bad input). */
export function decodeIdentityRequest(
  data: Uint8Array,
  group: string,
): IdentityRequest | undefined {
  const o = parse(data, 'identity-request', group);
  if (
    o === undefined ||
    !isValidName(o.node) ||
    !isIncarnation(o.incarnation) ||
    typeof o.voting !== 'boolean' ||
    typeof o.join !== 'boolean'
  )
    return undefined;
  const founders = nodeList(o.founders);
  if (founders === undefined) return undefined;
  return {
    type: 'identity-request',
    v: 1,
    group,
    node: o.node,
    incarnation: o.incarnation,
    voting: o.voting,
    join: o.join,
    founders,
  };
}

/** An answer of `group`, or undefined for anything else. */
export function decodeIdentityAnswer(data: Uint8Array, group: string): IdentityAnswer | undefined {
  const o = parse(data, 'identity-answer', group);
  if (
    o === undefined ||
    !isValidName(o.node) ||
    !isIncarnation(o.incarnation) ||
    typeof o.voting !== 'boolean' ||
    typeof o.verdict !== 'string' ||
    !VERDICTS.includes(o.verdict)
  )
    return undefined;
  const founders = nodeList(o.founders);
  const members = o.members === null ? null : nodeList(o.members);
  const known = toRegistry(o.known);
  if (founders === undefined || members === undefined || known === undefined) return undefined;
  return {
    type: 'identity-answer',
    v: 1,
    group,
    node: o.node,
    incarnation: o.incarnation,
    voting: o.voting,
    founders,
    members,
    verdict: o.verdict as Verdict,
    known,
  };
}

function parse(data: Uint8Array, type: string, group: string): Record<string, unknown> | undefined {
  if (data.length > MAX_BYTES) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const o = doc as Record<string, unknown>;
  return o.type === type && o.v === 1 && o.group === group ? o : undefined;
}

/** Node ids, sorted, none twice, 1 to MAX_MEMBERS of them. */
function nodeList(value: unknown): readonly string[] | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_MEMBERS) return undefined;
  if (!value.every(isValidName)) return undefined;
  const sorted = [...new Set(value as string[])].sort();
  return sorted.length === value.length ? sorted : undefined;
}
