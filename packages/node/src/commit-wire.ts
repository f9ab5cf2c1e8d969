import { type CommitMessage, instanceOf, type Outcome } from '@synod/commit';
import {
  assertGroupName,
  assertNodeId,
  createPackr,
  createPeerCodec,
  DecodeError,
  isValidName,
  type PeerMessage,
  packChecked,
  unpackStrict,
} from '@synod/protocol';
import { readTxnMeta, readTxnPart, type TxnMeta, type TxnPart } from './kv-transactions.js';
import { CommandError } from './state-machine.js';

/**
 * The subjects of transactions a group coordinates or takes part in (ARCHITECTURE.md):
 *
 * - `synod.<c>.commit.acceptor`: phase 1a and 2a to the commit acceptors of the coordinating
 *   group c's members;
 * - `synod.<c>.commit.coordinator`: to c's coordinator (its leader serves it alone): the
 *   acceptors' phase 2b, an RM asking for the outcome;
 * - `synod.<g>.commit.rm`: to group g's RM (its leader serves it alone): prepare and vote,
 *   the outcome, and in Faster Paxos Commit the acceptors' phase 2b;
 * - `synod.<c>.commit.node.<id>`: an acceptor's answer to the node that asked.
 */
export interface CommitSubjects {
  readonly acceptor: string;
  readonly coordinator: string;
  readonly rm: string;
  node(nodeId: string): string;
}

/** Built once per group: every commit message is published on one (a profile found it hot). */
const subjectsByGroup = new Map<string, CommitSubjects>();
const MAX_CACHED_GROUPS = 1_024;

export function commitSubjects(group: string): CommitSubjects {
  const cached = subjectsByGroup.get(group);
  if (cached !== undefined) return cached;
  const prefix = `synod.${assertGroupName(group)}.commit`;
  const subjects: CommitSubjects = {
    acceptor: `${prefix}.acceptor`,
    coordinator: `${prefix}.coordinator`,
    rm: `${prefix}.rm`,
    node: (nodeId: string) => `${prefix}.node.${assertNodeId(nodeId)}`,
  };
  if (subjectsByGroup.size >= MAX_CACHED_GROUPS) subjectsByGroup.clear();
  subjectsByGroup.set(group, subjects);
  return subjects;
}

/** Every group's answers to one node. */
export const commitRepliesTo = (nodeId: string): string =>
  `synod.*.commit.node.${assertNodeId(nodeId)}`;

/**
 * One commit message on the wire: the transaction it belongs to (so a node that has no
 * machine for it yet can start one: an RM asked to prepare, a coordinator asked for an
 * outcome), the node that sent it, and the message: a peer message (prepare, promise, accept,
 * accepted) as the peer codec encodes it, with the coordinating group as its group, or one of
 * @synod/commit's requests. A request to prepare carries the group's writes.
 */
export interface CommitEnvelope {
  readonly meta: TxnMeta;
  readonly node: string;
  readonly message: CommitMessage;
  readonly writes?: readonly TxnPart[];
  /**
   * Message delays behind this message: one more than the message that caused it (the
   * client's request is 0). What `npm run bench:commit` reports as the longest causal chain.
   */
  readonly hops?: number;
}

const MAX_HOPS = 1_000;
const MAX_COMMIT_MESSAGE_BYTES = 1024 * 1024;
const packr = createPackr();
const peerCodec = createPeerCodec();
const PEER_TYPES = new Set(['prepare', 'promise', 'accept', 'accepted']);

export function encodeCommit(envelope: CommitEnvelope): Uint8Array {
  const { meta, node, message, writes, hops } = envelope;
  const m = PEER_TYPES.has(message.type)
    ? peerCodec.encode({ ...(message as PeerMessage), group: meta.coordinator })
    : message;
  return packChecked(
    {
      v: 1,
      meta,
      node,
      m,
      ...(writes === undefined ? {} : { writes }),
      ...(hops === undefined ? {} : { d: Math.min(hops, MAX_HOPS) }),
    },
    MAX_COMMIT_MESSAGE_BYTES,
    packr,
  );
}

/** Checks every field before it is believed; throws DecodeError for anything else. */
export function decodeCommit(bytes: Uint8Array): CommitEnvelope {
  const doc = unpackStrict(bytes, MAX_COMMIT_MESSAGE_BYTES, packr) as Record<string, unknown>;
  if (doc === null || typeof doc !== 'object' || doc.v !== 1)
    throw new DecodeError('MALFORMED', 'not a commit message');
  let meta: TxnMeta;
  let writes: TxnPart[] | undefined;
  try {
    meta = readTxnMeta(doc.meta as never);
    if (doc.writes !== undefined) {
      if (!Array.isArray(doc.writes) || doc.writes.length > 256)
        throw new CommandError('writes must be an array');
      writes = doc.writes.map((w) => readTxnPart(w as never, 'writes'));
    }
  } catch (error) {
    if (error instanceof CommandError) throw new DecodeError('INVALID_FIELD', error.message);
    throw error;
  }
  if (!isValidName(doc.node)) throw new DecodeError('INVALID_FIELD', 'node: not a node id');
  const message = readMessage(doc.m, meta);
  const hops = doc.d;
  if (
    hops !== undefined &&
    (!Number.isSafeInteger(hops) || (hops as number) < 0 || (hops as number) > MAX_HOPS)
  )
    throw new DecodeError('INVALID_FIELD', `d: a whole number of at most ${MAX_HOPS}`);
  return {
    meta,
    node: doc.node,
    message,
    ...(writes === undefined ? {} : { writes }),
    ...(hops === undefined ? {} : { hops: hops as number }),
  };
}

function readMessage(m: unknown, meta: TxnMeta): CommitMessage {
  if (m instanceof Uint8Array) {
    const peer = peerCodec.decode(m);
    if (!PEER_TYPES.has(peer.type) || peer.group !== meta.coordinator)
      throw new DecodeError('INVALID_FIELD', 'm: not a commit instance message');
    // Every instance of a transaction is `<txid>/<rm>`, rm one of its groups.
    const instance = (peer as { instance?: unknown }).instance;
    if (
      typeof instance !== 'string' ||
      !meta.rms.some((rm) => instance === instanceOf(meta.txid, rm))
    )
      throw new DecodeError('INVALID_FIELD', 'm.instance: not an instance of this transaction');
    // The machines know a transaction's messages by its id in `group`.
    return { ...peer, group: meta.txid };
  }
  const r = m as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object' || r.txid !== meta.txid || !isValidName(r.from))
    throw new DecodeError('INVALID_FIELD', 'm: not a commit request of this transaction');
  const { txid, from } = { txid: meta.txid, from: r.from };
  switch (r.type) {
    case 'voteRequest':
    case 'outcomeQuery':
      return { type: r.type, txid, from };
    case 'vote':
      if (r.vote !== 'prepared' && r.vote !== 'aborted')
        throw new DecodeError('INVALID_FIELD', 'm.vote: prepared or aborted');
      return { type: 'vote', txid, from, vote: r.vote };
    case 'outcome':
      if (r.outcome !== 'committed' && r.outcome !== 'aborted')
        throw new DecodeError('INVALID_FIELD', 'm.outcome: committed or aborted');
      return { type: 'outcome', txid, from, outcome: r.outcome as Outcome };
    default:
      throw new DecodeError('INVALID_FIELD', 'm.type: not a commit request');
  }
}
