import { randomBytes } from 'node:crypto';
import type { CommitRules, Outcome } from '@synod/commit';
import type { ClientResponse, Command, PlainData } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import type { TxnMeta } from './kv-transactions.js';

/** What the commit node needs of one group this process serves (NodeRuntime gives it). */
export interface CommitGroup {
  readonly group: string;
  readonly leader: string | undefined;
  members(): readonly string[];
  /** This node's leadership round while it leads (its coordinators' rounds are within its range). */
  leaderRound(): number | undefined;
  /** Logs a write of the node's own through this node, the leader; rejects otherwise. */
  logInternal(command: Command): Promise<PlainData>;
  readState(command: Command): PlainData;
  onLeadership(listener: (leader: string | undefined) => void): void;
}

export interface CommitNodeOptions {
  readonly nodeId: string;
  readonly transport: Transport;
  /** Where the commit acceptor keeps its promises and acceptances. */
  readonly dataDir: string;
  readonly groups: readonly CommitGroup[];
  /** How the transactions this node's groups coordinate commit (default paxos-commit). */
  readonly protocol?: TxnMeta['protocol'];
  readonly logger?: { warn(o: object, msg: string): void } | undefined;
  /** Something the node cannot go on after (the commit acceptor's store failed). */
  readonly fatal?: (error: unknown) => void;
  /** The commit rules (a planted bug's, for the process tests that prove their checker). */
  readonly rules?: CommitRules;
}

/** Messages this node's commit traffic sent and received, by kind (npm run bench:commit). */
export interface CommitCounts {
  readonly sent: Record<string, number>;
  readonly received: Record<string, number>;
  readonly logged: Record<string, number>;
  /** fsyncs of this process's commit acceptor store. */
  readonly acceptorFsyncs: number;
  /**
   * Message delays on the causal chain behind the last decision here, from the client's
   * request: a coordinator's outcome, and an RM's (once its outcome is in its log).
   */
  readonly lastDecision: { readonly coordinator?: number; readonly rm?: number };
}

export function notLeading(group: string): ClientResponse {
  return {
    ok: false,
    error: {
      code: 'UNAVAILABLE',
      message: `this node no longer leads ${group}, which coordinates the transaction; send it again (same clientId and seq): it keeps its number and outcome`,
    },
  };
}

export function outcomeAnswer(meta: TxnMeta, outcome: Outcome): ClientResponse {
  return { ok: true, result: { txid: meta.txid, outcome, committed: outcome === 'committed' } };
}

/** A fresh, process-unique client id for a node's own log writes. */
export const internalClientId = (nodeId: string): string =>
  `txn-${nodeId}-${randomBytes(6).toString('hex')}`;
