import type { Ballot } from './ballot.js';

/** Wire protocol version. A decoder rejects any other with DecodeError('VERSION'). */
export const PROTOCOL_VERSION = 1;

/**
 * A consensus instance: a log slot (a non-negative safe integer) or the key of a
 * single-decree register, as in seed 001's paxos(k, v) (a string of 1 to MAX_KEY_BYTES).
 */
export type Instance = number | string;

/** A consensus value. Opaque to acceptors and learners; the state machine gives it meaning. */
export type Value = Uint8Array;

/** Plain data as JSON has it, plus byte strings (msgpack bin). Used for commands and results. */
export type PlainData =
  | string
  | number
  | boolean
  | null
  | Uint8Array
  | readonly PlainData[]
  | { readonly [key: string]: PlainData };

/** What an acceptor holds for an instance: the highest-ballot value it accepted. */
export interface AcceptedEntry {
  readonly instance: Instance;
  readonly ballot: Ballot;
  readonly value: Value;
}

/** A chosen value, as catch-up hands it out. */
export interface ChosenEntry {
  readonly slot: number;
  readonly value: Value;
}

interface Envelope<T extends string> {
  readonly type: T;
  /** The group this message belongs to; a node drops messages of other groups. */
  readonly group: string;
  /** The sending node (or, for client-facing replies, the answering node). */
  readonly from: string;
}

/** Phase 1a for one instance. */
export interface Prepare extends Envelope<'prepare'> {
  readonly ballot: Ballot;
  readonly instance: Instance;
}

/** Phase 1a of a distinguished leader: one prepare for every log slot at or above `fromSlot`. */
export interface PrepareLog extends Envelope<'prepareLog'> {
  readonly ballot: Ballot;
  readonly fromSlot: number;
}

/**
 * Phase 1b. `ok` says the acceptor promised `ballot`; otherwise `promised` is the higher
 * ballot it had promised. `accepted` holds what it accepted in the prepared instance(s);
 * `more` says a PrepareLog answer was cut at the entry limit and the leader must ask again.
 */
export interface PromiseReply extends Envelope<'promise'> {
  readonly ballot: Ballot;
  /** The instance a single-instance prepare asked about; absent in answers to PrepareLog. */
  readonly instance?: Instance;
  readonly ok: boolean;
  readonly promised: Ballot;
  readonly accepted: readonly AcceptedEntry[];
  readonly more: boolean;
  /**
   * Set when the acceptor refused because it compacted its log through this slot: those slots
   * are chosen and it no longer holds what it accepted in them, so a leader whose phase 1
   * starts at or below it must first catch up (from a snapshot) rather than lead.
   */
  readonly compactedThrough?: number;
  /** In answers to PrepareLog: the fromSlot asked for (a leader reads a long answer in pages). */
  readonly fromSlot?: number;
}

/** Phase 2a. `commitIndex` lets a leader piggyback how far the log is known chosen. */
export interface Accept extends Envelope<'accept'> {
  readonly ballot: Ballot;
  readonly instance: Instance;
  readonly value: Value;
  readonly commitIndex?: number;
}

/**
 * Phase 2b. `ok` says the acceptor accepted; otherwise `promised` is the higher ballot it holds.
 * The copy an acceptor sends to learners carries the accepted `value`, so a learner can learn
 * a value once a majority accepted it at one ballot; the reply to the proposer omits it.
 */
export interface Accepted extends Envelope<'accepted'> {
  readonly ballot: Ballot;
  readonly instance: Instance;
  readonly ok: boolean;
  readonly promised: Ballot;
  readonly value?: Value;
}

/** A value known chosen (a majority accepted it at `ballot`). */
export interface Decide extends Envelope<'decide'> {
  readonly instance: Instance;
  readonly ballot: Ballot;
  readonly value: Value;
}

/** A leader's liveness signal: its ballot and the highest slot it knows chosen (-1: none). */
export interface Heartbeat extends Envelope<'heartbeat'> {
  readonly ballot: Ballot;
  readonly commitIndex: number;
}

/** Ask a peer for chosen values from `fromSlot`, at most `maxEntries` of them. */
export interface CatchupRequest extends Envelope<'catchupRequest'> {
  readonly fromSlot: number;
  readonly maxEntries: number;
  /** Continuing a snapshot transfer: the snapshot's last slot and the next byte wanted. */
  readonly snapshot?: { readonly throughSlot: number; readonly offset: number };
}

/**
 * One piece of a peer's state-machine snapshot, sent when the slots asked for are compacted
 * away there. A snapshot moves in pieces (a NATS message is bounded); `total` is its size.
 */
export interface SnapshotChunk {
  readonly throughSlot: number;
  readonly offset: number;
  readonly total: number;
  readonly bytes: Uint8Array;
}

/** Chosen values in slot order, and the highest slot the answering peer knows chosen (-1: none). */
export interface CatchupResponse extends Envelope<'catchupResponse'> {
  readonly entries: readonly ChosenEntry[];
  readonly commitIndex: number;
  readonly snapshot?: SnapshotChunk;
}

/** pg_paxos's paxos_max_group_round: what is the highest slot you accepted a value in? */
export interface HighestAcceptedQuery extends Envelope<'highestAcceptedQuery'> {
  /** Echoed in the answer, so a reader counts only answers to its own query, not older ones. */
  readonly requestId: number;
}

/** `slot` is -1 when the acceptor has accepted nothing. */
export interface HighestAcceptedAnswer extends Envelope<'highestAcceptedAnswer'> {
  readonly requestId: number;
  readonly slot: number;
}

/**
 * A leader asks whether it still leads before it serves a linearizable read without a log
 * slot (Raft's ReadIndex): has the acceptor promised any ballot above `ballot` for a log slot?
 * Answering changes nothing at the acceptor.
 */
export interface ReadIndexCheck extends Envelope<'readIndexCheck'> {
  readonly ballot: Ballot;
  /** Echoed in the answer, so the leader counts only answers to this round. */
  readonly requestId: number;
}

/**
 * `promised` is the highest ballot the acceptor promised for any log slot: at or below the
 * check's `ballot`, the acceptor still stands behind the asking leader.
 */
export interface ReadIndexAnswer extends Envelope<'readIndexAnswer'> {
  readonly ballot: Ballot;
  readonly requestId: number;
  readonly promised: Ballot;
}

/** A state machine command: an operation name and its plain-data arguments. */
export interface Command {
  readonly op: string;
  readonly [argument: string]: PlainData;
}

/**
 * What a node's state machine says of a write before it goes into the log: refused (with a
 * reason and, for SQL, its SQLSTATE), or let in as this command (possibly rewritten).
 */
export type Admission =
  | { readonly refused: string; readonly sqlState?: string }
  | { readonly command: Command };

export type ReadConsistency = 'linearizable' | 'strong' | 'optimistic';
export const READ_CONSISTENCIES: readonly ReadConsistency[] = [
  'linearizable',
  'strong',
  'optimistic',
];

/**
 * A client write, as published on `synod.<group>.write` (msgpack or JSON, same shape).
 * (clientId, seq) identifies it: a retry with the same pair is applied once.
 */
export interface ClientWrite {
  readonly clientId: string;
  readonly seq: number;
  readonly command: Command;
}

/** A client read, as published on `synod.<group>.read`. Consistency defaults to the node's. */
export interface ClientRead {
  readonly command: Command;
  readonly consistency?: ReadConsistency;
}

/** Stable error codes clients can branch on. */
export type ErrorCode =
  | 'NO_QUORUM'
  | 'NOT_LEADER'
  | 'BAD_REQUEST'
  | 'TOO_LARGE'
  | 'UNKNOWN_GROUP'
  | 'TIMEOUT'
  | 'UNAVAILABLE'
  /** The node holds as many writes as it may: retry after `retryAfterMs`. */
  | 'BUSY'
  | 'INTERNAL';

export const ERROR_CODES: readonly ErrorCode[] = [
  'NO_QUORUM',
  'NOT_LEADER',
  'BAD_REQUEST',
  'TOO_LARGE',
  'UNKNOWN_GROUP',
  'TIMEOUT',
  'UNAVAILABLE',
  'BUSY',
  'INTERNAL',
];

export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  /** For NOT_LEADER: the node believed to lead, when known. */
  readonly leader?: string;
  /** For BUSY: how long to wait before sending the request again (same clientId and seq). */
  readonly retryAfterMs?: number;
  /**
   * A SQL machine's failure: PostgreSQL's SQLSTATE (five digits or capital letters), with
   * PostgreSQL's message in `message`.
   */
  readonly sqlState?: string;
  /** A write over the node's size limit: the limit, in bytes. */
  readonly limitBytes?: number;
}

export interface ClientOk {
  readonly ok: true;
  /** The log slot the write was chosen in, or the slot a read was served at. */
  readonly slot?: number;
  readonly result: PlainData;
}

export interface ClientFailure {
  readonly ok: false;
  readonly error: ErrorBody;
}

/** The reply to a client write or read. */
export type ClientResponse = ClientOk | ClientFailure;

/** A peer-to-peer error reply (e.g. a forwarded request that the receiver cannot serve). */
export interface ErrorMessage extends Envelope<'error'>, ErrorBody {}

/** Every message nodes send one another, wrapped in the `{v, type, group, from}` envelope. */
export type PeerMessage =
  | Prepare
  | PrepareLog
  | PromiseReply
  | Accept
  | Accepted
  | Decide
  | Heartbeat
  | CatchupRequest
  | CatchupResponse
  | HighestAcceptedQuery
  | HighestAcceptedAnswer
  | ReadIndexCheck
  | ReadIndexAnswer
  | ErrorMessage;

export type PeerMessageType = PeerMessage['type'];

export const PEER_MESSAGE_TYPES: readonly PeerMessageType[] = [
  'prepare',
  'prepareLog',
  'promise',
  'accept',
  'accepted',
  'decide',
  'heartbeat',
  'catchupRequest',
  'catchupResponse',
  'highestAcceptedQuery',
  'highestAcceptedAnswer',
  'readIndexCheck',
  'readIndexAnswer',
  'error',
];
