/**
 * When a node with no acceptor state may vote: the rules, without I/O.
 *
 * Paxos assumes an acceptor never forgets what it promised or accepted. A node whose data
 * directory is empty (or whose identity says it never voted) cannot tell by itself whether it
 * is brand new or lost its disk; the group can, if every node's first vote is witnessed:
 *
 * - Before a node votes for the first time, a strict majority of the other members (the
 *   founders, for a group with nothing in its log yet) must have durably recorded its node id
 *   and incarnation (a random id it picks when it starts without state). Peers that are
 *   waiting themselves record too: that is how founders that start together admit each other.
 * - A node that asks with an incarnation other than the one a peer recorded for it, while the
 *   peer's log still lists it as a member, lost its state: refused (`conflict`). Two strict
 *   majorities of the other members share a node, so once a node has voted, at least one peer
 *   of any majority it can be admitted by knows its old incarnation; the node cannot slip
 *   back in with an empty disk while those peers keep theirs. It must be replaced: `synod
 *   group leave`, then started with --join, which peers take as a new node (they record the
 *   new incarnation because the node is no member any more).
 * - A founder the log no longer lists, started without --join, is told to use --join.
 * - Nobody (or too few) answering means waiting, never guessing.
 *
 * So a brand-new group is one whose founders all find each other waiting (each records the
 * others), and a founder that starts later than the others (a slow machine, a database that
 * takes long to start) is admitted too: nobody recorded it, so it never voted. The price:
 * a founder's first start needs a strict majority of the other founders up (for three
 * founders, all three), and peers that lost their own disks forget what they witnessed.
 */
import {
  type DataDirError,
  foundersDiffer,
  lostDisk,
  notAMember,
  stillAMember,
} from './data-dir-errors.js';
import type { Registry } from './identity-file.js';
import type { IdentityAnswer, IdentityRequest, Verdict } from './identity-messages.js';

/** What a node answering identity requests judges by. */
export interface ResponderView {
  readonly node: string;
  /** Sorted. */
  readonly founders: readonly string[];
  /** The members in its log (the latest change delivered); null while it waits itself. */
  readonly members: readonly string[] | null;
  readonly known: Registry;
}

/**
 * A peer's answer to `request`, and whether it must record the asker's incarnation first
 * (durably, before it answers `recorded`).
 */
export function judge(
  view: ResponderView,
  request: IdentityRequest,
): { readonly verdict: Verdict; readonly record: boolean } {
  if (!sameList(view.founders, request.founders))
    return { verdict: 'founders-differ', record: false };
  const known = view.known[request.node];
  const other = known !== undefined && known.incarnation !== request.incarnation;
  if (view.members === null) {
    // Waiting: no log to tell a replaced node from a lost one, so any other incarnation is a
    // conflict.
    return other ? { verdict: 'conflict', record: false } : { verdict: 'recorded', record: !known };
  }
  const member = view.members.includes(request.node);
  if (!member && !request.join) return { verdict: 'not-member', record: false };
  if (member && other) return { verdict: 'conflict', record: false };
  // A member never recorded (it never voted: a founder starting late, a node added with
  // `synod group join` before it ran), or a node that is no member and asks to join: its
  // new incarnation replaces the one it had before it left.
  return { verdict: 'recorded', record: known === undefined || other };
}

export interface Asker {
  readonly group: string;
  readonly node: string;
  readonly dir: string;
  readonly incarnation: string;
  readonly join: boolean;
  /** Sorted. */
  readonly founders: readonly string[];
}

export type Decision =
  | { readonly kind: 'admitted' }
  | { readonly kind: 'refused'; readonly error: DataDirError }
  | {
      readonly kind: 'waiting';
      /** Peers whose record is still needed (any `need - have` of them will do). */
      readonly missing: readonly string[];
      readonly need: number;
      readonly have: number;
    };

/** What the asker does with the answers of one round of asking. */
export function decide(asker: Asker, answers: readonly IdentityAnswer[]): Decision {
  const latest = new Map<string, IdentityAnswer>();
  for (const answer of answers) if (answer.node !== asker.node) latest.set(answer.node, answer);
  const peers = [...latest.values()];
  const refuse = (error: DataDirError): Decision => ({ kind: 'refused', error });
  for (const peer of peers) {
    if (peer.verdict === 'founders-differ')
      return refuse(
        foundersDiffer(asker.group, asker.node, asker.founders, peer.node, peer.founders),
      );
  }
  for (const peer of peers) {
    if (peer.verdict !== 'conflict') continue;
    const known = peer.known[asker.node]?.incarnation ?? 'unknown';
    return refuse(
      asker.join
        ? stillAMember(asker.group, asker.node, peer.node)
        : lostDisk(asker.group, asker.node, asker.dir, peer.node, known),
    );
  }
  for (const peer of peers)
    if (peer.verdict === 'not-member' && !asker.join)
      return refuse(notAMember(asker.group, asker.node, peer.node));
  const recorded = new Set(peers.filter((p) => p.verdict === 'recorded').map((p) => p.node));
  // Every member list a voting peer reports must be satisfied: one peer may lag behind a
  // change another has seen. With no voting peer, the founders are the members.
  const views = peers.flatMap((p) => (p.members === null ? [] : [p.members]));
  if (views.length === 0) views.push(asker.founders);
  for (const members of views) {
    const others = members.filter((m) => m !== asker.node);
    const need = others.length === 0 ? 0 : Math.floor(others.length / 2) + 1;
    const have = others.filter((m) => recorded.has(m)).length;
    if (have < need)
      return { kind: 'waiting', missing: others.filter((m) => !recorded.has(m)), need, have };
  }
  return { kind: 'admitted' };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
