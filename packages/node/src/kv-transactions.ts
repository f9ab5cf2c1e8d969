import type { CommitProtocol } from '@synod/commit';
import { isNameList, isValidName, type PlainData } from '@synod/protocol';
import { CommandError, stringArg } from './state-machine.js';

/**
 * The kv machine's part in transactions across groups (Paxos Commit, @synod/commit). Three
 * log entries, each applied alike on every replica:
 *
 * - `txn` (a client's, in the coordinating group's log): checks the operations and numbers
 *   the transaction; its id is `<coordinating group>.<number>`. The client's session makes a
 *   retried request get the same number, so a retry never starts a second transaction.
 * - `txn_prepare` (the RM's, in each group's log): this group's vote. Prepared when no key
 *   is held by another transaction and every cas holds; the keys are then held and the
 *   writes staged. The same transaction prepared again gets the same vote: an RM proposes its
 *   vote at ballot 0 of its Paxos instance without phase 1, which is safe only if every leader
 *   of the group proposes the same value there.
 * - `txn_outcome`: applies the staged writes (committed) or drops them (aborted), and frees
 *   the keys.
 *
 * A decided transaction's vote is remembered for the last MAX_DECIDED decided here; past that,
 * each coordinating group's highest forgotten number is kept (`floors`), and a prepare at or
 * below it that this group does not hold gets no vote at all (the coordinator then decides that
 * instance by phase 1: `aborted` unless a vote was chosen). So a late request to prepare can
 * never cast a second, different vote at ballot 0, with bounded memory.
 */

/** One write of a transaction in one group. */
export interface TxnWrite {
  readonly op: 'put' | 'delete' | 'cas';
  readonly key: string;
  readonly value?: string;
  /** cas: the value the key must hold (null: absent) for the transaction to commit. */
  readonly expect?: string | null;
}

/** What an RM and a coordinator taking over need to know of a transaction. */
export interface TxnMeta {
  readonly txid: string;
  /** The coordinating group: its leader coordinates, its members' commit acceptors decide. */
  readonly coordinator: string;
  /** The number the coordinating group's log gave the transaction. */
  readonly number: number;
  /** Every group that writes (the RMs), sorted. */
  readonly rms: readonly string[];
  /** The commit acceptors: the coordinating group's members when the transaction began. */
  readonly acceptors: readonly string[];
  readonly protocol: CommitProtocol;
}

/** How a transaction may commit: Paxos Commit, its Faster variant, two-phase commit (a baseline). */
export const TXN_PROTOCOLS: readonly CommitProtocol[] = [
  'paxos-commit',
  'faster-paxos-commit',
  '2pc',
];
const isProtocol = (p: unknown): p is CommitProtocol => TXN_PROTOCOLS.includes(p as CommitProtocol);

export type TxnVote = 'prepared' | 'aborted';

/** A transaction this group voted on and has not seen decided. */
export interface OpenTxn {
  readonly meta: TxnMeta;
  readonly vote: TxnVote;
  /** Staged writes (prepared only). */
  readonly writes: readonly TxnWrite[];
  readonly reason?: string;
}

export const MAX_TXN_WRITES = 256;
export const MAX_DECIDED = 10_000;
const MAX_RMS = 64;
const MAX_ACCEPTORS = 16;

/** The transaction id the coordinating group's `number` names. */
export const txidOf = (coordinator: string, number: number): string => `${coordinator}.${number}`;

/** A client's `ops` of a `txn` write: checked, grouped by group (each group's writes in order). */
export function readTxnOps(ops: PlainData | undefined): Map<string, TxnWrite[]> {
  if (!Array.isArray(ops) || ops.length === 0)
    throw new CommandError('txn needs "ops": a non-empty array of writes, each with a "group"');
  if (ops.length > MAX_TXN_WRITES)
    throw new CommandError(`txn has ${ops.length} writes; at most ${MAX_TXN_WRITES}`);
  const byGroup = new Map<string, TxnWrite[]>();
  ops.forEach((op: PlainData, i: number) => {
    if (op === null || typeof op !== 'object' || Array.isArray(op) || op instanceof Uint8Array)
      throw new CommandError(`txn ops[${i}] must be an object`);
    const group = (op as Record<string, PlainData>).group;
    if (!isValidName(group))
      throw new CommandError(
        `txn ops[${i}] needs a "group": letters, digits, '-' and '_', at most 64`,
      );
    const writes = byGroup.get(group) ?? [];
    writes.push(readTxnWrite(op as Record<string, PlainData>, `txn ops[${i}]`));
    byGroup.set(group, writes);
  });
  if (byGroup.size > MAX_RMS)
    throw new CommandError(`txn writes to ${byGroup.size} groups; at most ${MAX_RMS}`);
  return byGroup;
}

/**
 * One group's part of a transaction as the commit node carries it to the group's RM (a kv
 * write, a SQL group's statements): the group's machine checks it when it prepares.
 */
export type TxnPart = Readonly<Record<string, PlainData>> & { readonly op: string };

/** A part as it comes off the wire or out of a log entry: an object with a string `op`. */
export function readTxnPart(value: PlainData | undefined, where: string): TxnPart {
  if (
    value === null ||
    typeof value !== 'object' ||
    Array.isArray(value) ||
    value instanceof Uint8Array ||
    typeof (value as Record<string, PlainData>).op !== 'string'
  )
    throw new CommandError(`${where}: a transaction's part is an object with an "op"`);
  return value as TxnPart;
}

/**
 * A `txn` entry's ops, as its log gave them back, by group: each group's parts in order,
 * without their `group`. Whatever machine numbered it checked them; each RM checks its own.
 */
export function partsByGroup(ops: PlainData | undefined): Map<string, TxnPart[]> {
  if (!Array.isArray(ops)) throw new CommandError('txn needs "ops"');
  const byGroup = new Map<string, TxnPart[]>();
  ops.forEach((op: PlainData, i: number) => {
    const { group, ...part } = readTxnPart(op, `txn ops[${i}]`);
    if (!isValidName(group)) throw new CommandError(`txn ops[${i}] needs a "group"`);
    byGroup.set(group, [...(byGroup.get(group) ?? []), part as TxnPart]);
  });
  return byGroup;
}

export function readTxnWrite(op: Readonly<Record<string, PlainData>>, where: string): TxnWrite {
  const command = { ...op, op: String(op.op) };
  const key = stringArg(command, 'key');
  switch (op.op) {
    case 'put':
      return { op: 'put', key, value: stringArg(command, 'value') };
    case 'delete':
      return { op: 'delete', key };
    case 'cas': {
      const expect = op.expect;
      if (expect !== null && typeof expect !== 'string')
        throw new CommandError(`${where}: cas "expect" must be a string, or null for absent`);
      return { op: 'cas', key, value: stringArg(command, 'value'), expect };
    }
    default:
      throw new CommandError(
        `${where}: unknown operation ${JSON.stringify(op.op)}; a transaction writes with put, delete, cas`,
      );
  }
}

export function readTxnMeta(value: PlainData | undefined): TxnMeta {
  const m = value as Record<string, PlainData> | null | undefined;
  if (m === null || typeof m !== 'object' || Array.isArray(m))
    throw new CommandError('a transaction entry needs "meta"');
  const names = (v: PlainData | undefined, max: number, what: string): string[] => {
    if (!isNameList(v, max))
      throw new CommandError(`a transaction's ${what} must be 1..${max} valid names`);
    return [...v];
  };
  const { coordinator, number, protocol } = m;
  if (!isValidName(coordinator)) throw new CommandError('a transaction needs its coordinator');
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 1)
    throw new CommandError('a transaction needs its number');
  if (!isProtocol(protocol)) throw new CommandError('a transaction needs its protocol');
  const txid = txidOf(coordinator, number);
  if (m.txid !== txid) throw new CommandError(`a transaction's id must be ${txid}`);
  return {
    txid,
    coordinator,
    number,
    rms: names(m.rms, MAX_RMS, 'groups'),
    acceptors: names(m.acceptors, MAX_ACCEPTORS, 'acceptors'),
    protocol,
  };
}

/** The transactions of one kv replica: numbering, votes, held keys, staged writes. */
export class KvTransactions {
  /** How many decided transactions' votes are remembered (MAX_DECIDED; less in tests). */
  readonly #maxDecided: number;
  /** The last number given to a transaction this group coordinates. */
  numbered = 0;
  readonly open = new Map<string, OpenTxn>();
  /** Decided here, oldest first: txid to its vote. */
  readonly decided = new Map<string, TxnVote>();
  /** Per coordinating group, the highest transaction number forgotten from `decided`. */
  readonly floors = new Map<string, number>();
  /** Keys held by a prepared transaction. */
  readonly held = new Map<string, string>();
  /**
   * Two-phase commit: the outcome its coordinator logged for each transaction this group
   * coordinates, the first one logged (a coordinator that took over logs after an old one
   * perhaps did), for the last MAX_DECIDED; older ones are forgotten, and an RM that asks about
   * one then blocks, as in two-phase commit.
   */
  readonly tmOutcomes = new Map<string, 'committed' | 'aborted'>();

  constructor(maxDecided = MAX_DECIDED) {
    this.#maxDecided = maxDecided;
  }

  /** `txn_decided`: the two-phase coordinator's outcome, or the one logged before it. */
  tmDecide(txid: string, outcome: 'committed' | 'aborted'): PlainData {
    const first = this.tmOutcomes.get(txid);
    if (first !== undefined) return { outcome: first };
    this.tmOutcomes.set(txid, outcome);
    if (this.tmOutcomes.size > MAX_DECIDED)
      this.tmOutcomes.delete(this.tmOutcomes.keys().next().value!);
    return { outcome };
  }

  /**
   * `txn`: a new transaction's number, with what its coordinators need, as first logged (a
   * retry gets this result again through its client's session, whatever it sent the second
   * time): its groups, writes, the commit acceptors and protocol the leader added.
   */
  begin(command: Readonly<Record<string, PlainData>>): PlainData {
    const byGroup = readTxnOps(command.ops);
    const { acceptors, protocol } = command;
    if (!isNameList(acceptors, MAX_ACCEPTORS))
      throw new CommandError('txn needs the commit acceptors, which the leader adds');
    if (!isProtocol(protocol))
      throw new CommandError('txn needs its commit protocol, which the leader adds');
    this.numbered += 1;
    return {
      txn: this.numbered,
      groups: [...byGroup.keys()].sort(),
      acceptors: [...acceptors],
      protocol,
      ops: command.ops!,
    };
  }

  /**
   * `txn_prepare`: this group's vote (the first one, if asked again), or `vote: null` for a
   * transaction it forgot or already saw decided without voting.
   */
  prepare(
    meta: TxnMeta,
    writes: readonly TxnWrite[],
    read: (key: string) => string | undefined,
  ): PlainData {
    const open = this.open.get(meta.txid);
    if (open !== undefined) return voteResult(open.vote, open.reason);
    const decided = this.decided.get(meta.txid);
    if (decided !== undefined) return { vote: decided, decided: true };
    if (meta.number <= (this.floors.get(meta.coordinator) ?? 0))
      return { vote: null, reason: 'forgotten: decided long ago, or prepared too late' };
    const reason = this.#conflict(meta.txid, writes, read);
    const vote: TxnVote = reason === undefined ? 'prepared' : 'aborted';
    this.open.set(meta.txid, {
      meta,
      vote,
      writes: vote === 'prepared' ? writes : [],
      ...(reason === undefined ? {} : { reason }),
    });
    if (vote === 'prepared') for (const w of writes) this.held.set(w.key, meta.txid);
    return voteResult(vote, reason);
  }

  /**
   * `txn_outcome`: the staged writes to apply (committed), none otherwise; frees the keys.
   * An outcome for a transaction not open here changes nothing.
   */
  decide(txid: string, outcome: 'committed' | 'aborted'): readonly TxnWrite[] {
    const open = this.open.get(txid);
    if (open === undefined) return [];
    if (outcome === 'committed' && open.vote !== 'prepared')
      throw new CommandError(`transaction ${txid} cannot commit: this group voted aborted`);
    this.open.delete(txid);
    for (const w of open.writes) if (this.held.get(w.key) === txid) this.held.delete(w.key);
    this.decided.set(txid, open.vote);
    while (this.decided.size > this.#maxDecided) {
      const [oldest] = this.decided.keys();
      this.decided.delete(oldest!);
      const { coordinator, number } = splitTxid(oldest!);
      if (number > (this.floors.get(coordinator) ?? 0)) this.floors.set(coordinator, number);
    }
    return outcome === 'committed' ? open.writes : [];
  }

  /** Why `writes` cannot commit now, if they cannot. */
  #conflict(
    txid: string,
    writes: readonly TxnWrite[],
    read: (key: string) => string | undefined,
  ): string | undefined {
    const overlay = new Map<string, string | undefined>();
    for (const w of writes) {
      const holder = this.held.get(w.key);
      if (holder !== undefined && holder !== txid)
        return `key ${JSON.stringify(w.key)} is held by transaction ${holder}`;
      const current = overlay.has(w.key) ? overlay.get(w.key) : read(w.key);
      if (w.op === 'cas' && (current ?? null) !== w.expect)
        return `cas on ${JSON.stringify(w.key)} expected ${JSON.stringify(w.expect)}`;
      overlay.set(w.key, w.op === 'delete' ? undefined : w.value);
    }
    return undefined;
  }

  exportState(): PlainData {
    return {
      numbered: this.numbered,
      open: [...this.open.values()].map((t) => ({
        meta: { ...t.meta },
        vote: t.vote,
        writes: t.writes.map((w) => ({ ...w })),
        ...(t.reason === undefined ? {} : { reason: t.reason }),
      })),
      decided: [...this.decided],
      floors: [...this.floors],
      tmOutcomes: [...this.tmOutcomes],
    } as PlainData;
  }

  static import(state: unknown): KvTransactions {
    const txns = new KvTransactions();
    const s = state as Record<string, unknown> | null;
    if (s === null || typeof s !== 'object') throw new TypeError('not a kv transactions state');
    if (typeof s.numbered !== 'number') throw new TypeError('not a kv transactions state');
    txns.numbered = s.numbered;
    for (const t of asArray(s.open)) {
      const open = t as Record<string, PlainData>;
      const meta = readTxnMeta(open.meta);
      const writes = asArray(open.writes).map((w) =>
        readTxnWrite(w as Record<string, PlainData>, 'snapshot'),
      );
      const vote = open.vote;
      if (vote !== 'prepared' && vote !== 'aborted') throw new TypeError('not a vote');
      txns.open.set(meta.txid, {
        meta,
        vote,
        writes,
        ...(typeof open.reason === 'string' ? { reason: open.reason } : {}),
      });
      if (vote === 'prepared') for (const w of writes) txns.held.set(w.key, meta.txid);
    }
    for (const d of asArray(s.decided)) {
      const [txid, vote] = d as [unknown, unknown];
      if (typeof txid !== 'string' || (vote !== 'prepared' && vote !== 'aborted'))
        throw new TypeError('not a decided transaction');
      txns.decided.set(txid, vote);
    }
    for (const d of s.tmOutcomes === undefined ? [] : asArray(s.tmOutcomes)) {
      const [txid, outcome] = d as [unknown, unknown];
      if (typeof txid !== 'string' || (outcome !== 'committed' && outcome !== 'aborted'))
        throw new TypeError('not a logged outcome');
      txns.tmOutcomes.set(txid, outcome);
    }
    for (const f of asArray(s.floors)) {
      const [group, number] = f as [unknown, unknown];
      if (typeof group !== 'string' || typeof number !== 'number')
        throw new TypeError('not a transaction floor');
      txns.floors.set(group, number);
    }
    return txns;
  }
}

function voteResult(vote: TxnVote, reason: string | undefined): PlainData {
  return reason === undefined ? { vote } : { vote, reason };
}

function splitTxid(txid: string): { coordinator: string; number: number } {
  const dot = txid.lastIndexOf('.');
  return { coordinator: txid.slice(0, dot), number: Number(txid.slice(dot + 1)) };
}

function asArray(value: unknown): readonly unknown[] {
  if (!Array.isArray(value)) throw new TypeError('not a kv transactions state');
  return value;
}
