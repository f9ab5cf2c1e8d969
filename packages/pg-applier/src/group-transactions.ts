import type { Command, PlainData } from '@synod/protocol';
import type pg from 'pg';
import type { WriteOutcome } from './sql-outcomes.js';

/**
 * What the node's commit node asks of a SQL group's transactions across groups, at once and
 * without a query: the ones this group voted on and has not seen decided (`txn_open`: its
 * RM finishes them after a leader change) and two-phase commit's logged outcomes
 * (`txn_decided`). Kept from the database at start and after an install, and from each
 * applied entry's outcome, which the database has committed by then.
 */
export class GroupTransactions {
  readonly #open = new Map<string, { meta: PlainData; vote: string }>();
  readonly #decided = new Map<string, string>();

  static async load(client: pg.ClientBase, group: string): Promise<GroupTransactions> {
    const t = new GroupTransactions();
    const open = await client.query<{ txid: string; meta: PlainData; vote: string }>(
      'SELECT txid, meta, vote FROM synod.txn_votes WHERE group_name = $1 AND outcome IS NULL',
      [group],
    );
    for (const row of open.rows) t.#open.set(row.txid, { meta: row.meta, vote: row.vote });
    const decided = await client.query<{ txid: string; outcome: string }>(
      'SELECT txid, outcome FROM synod.txn_decided WHERE group_name = $1',
      [group],
    );
    for (const row of decided.rows) t.#decided.set(row.txid, row.outcome);
    return t;
  }

  /**
   * The result a transaction entry gives its writer (the coordinator, the RM), and what this
   * mirror learns from it; undefined for other writes.
   */
  applied(command: Command, outcome: WriteOutcome): PlainData | undefined {
    if (!outcome.ok) return undefined;
    const row = outcome.rows[0] ?? {};
    switch (command.op) {
      case 'txn': {
        if (command.ops === undefined || row.begun === undefined) return undefined;
        return {
          txn: Number(row.txn),
          ...(JSON.parse(String(row.begun)) as Record<string, PlainData>),
        };
      }
      case 'txn_prepare': {
        const meta = command.meta as Record<string, PlainData>;
        const txid = String(meta.txid);
        const decided = row.decided === 'true';
        // null: forgotten (global-txn.ts's MAX_DECIDED_VOTES); no vote, nothing open.
        const vote = row.vote === null || row.vote === undefined ? null : String(row.vote);
        if (!decided && vote !== null) this.#open.set(txid, { meta, vote });
        return {
          vote,
          ...(row.reason === null || row.reason === undefined ? {} : { reason: row.reason }),
          ...(decided ? { decided: true } : {}),
        };
      }
      case 'txn_outcome':
        this.#open.delete(String(command.txid));
        return { outcome: String(command.outcome) };
      case 'txn_decided': {
        const logged = String(row.outcome);
        this.#decided.set(String(command.txid), logged);
        return { outcome: logged };
      }
      default:
        return undefined;
    }
  }

  /** `{"op":"txn_open"}` and `{"op":"txn_decided","txid"}`; undefined for other reads. */
  read(command: Command): PlainData | undefined {
    if (command.op === 'txn_open')
      return [...this.#open.values()].map(({ meta, vote }) => ({ meta, vote }));
    if (command.op === 'txn_decided') {
      const outcome = this.#decided.get(String(command.txid));
      return outcome === undefined ? null : { outcome };
    }
    return undefined;
  }
}
