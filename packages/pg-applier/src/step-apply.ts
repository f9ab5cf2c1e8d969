// The steps of a transaction across groups that cannot share the applier's batch: PREPARE
// TRANSACTION ends the whole PostgreSQL transaction it is given, and COMMIT PREPARED runs
// outside any (global-txn.ts says what the entries are).
import pg, { type ClientBase, DatabaseError } from 'pg';
import { gidOf, MAX_DECIDED_VOTES, MAX_OPEN_PREPARED } from './global-txn.js';
import {
  type GlobalStep,
  rememberedOutcome,
  type SqlEntry,
  type WriteOutcome,
} from './sql-outcomes.js';
import { runTransaction } from './transaction-run.js';
import { secondTrip } from './two-trips.js';

/** A replica cannot take part in transactions across groups as its PostgreSQL is set up. */
export class PreparedCapacityError extends Error {
  override readonly name = 'PreparedCapacityError';
}

interface VoteRow {
  readonly vote: 'prepared' | 'aborted';
  readonly reason: string | null;
  readonly outcome: string | null;
}

/**
 * A slot with a step, the next to apply after `applied`: the step first, then the slot's
 * bookkeeping (what the step records, the sessions, the applied slot) in a transaction of its
 * own. Alone in its slot (the node logs it so); a slot where it is not is refused whole, alike
 * on every replica. Its outcomes.
 */
export async function applyAloneSlot(
  c: ClientBase,
  group: string,
  slot: {
    readonly entry: SqlEntry;
    readonly applied: number;
    /** Each client's last (seq, outcome), of the clients that wrote in the entry. */
    readonly sessions: ReadonlyMap<
      string,
      { readonly seq: number; readonly outcome: WriteOutcome }
    >;
    readonly groupsHere: number;
    /** How many decided votes to keep (MAX_DECIDED_VOTES; fewer in tests). */
    readonly keepDecided?: number;
  },
): Promise<WriteOutcome[]> {
  const { entry, sessions } = slot;
  const changed: { clientId: string; seq: number; outcome: WriteOutcome }[] = [];
  const outcomes: WriteOutcome[] = [];
  const record: string[] = [];
  const alone = entry.writes.length === 1;
  for (const write of entry.writes) {
    // Applied before: its first outcome.
    let outcome = rememberedOutcome(write, sessions);
    if (outcome === undefined) {
      if (!alone || write.step === undefined)
        outcome = {
          ok: false,
          sqlState: '0A000',
          message:
            'a step of a transaction across groups is alone in its slot; this slot is refused whole',
        };
      else {
        const step = await runStep(c, group, write.step, {
          ...(write.invalid === undefined ? {} : { invalid: write.invalid }),
          groupsHere: slot.groupsHere,
          slot: entry.slot,
          keepDecided: slot.keepDecided ?? MAX_DECIDED_VOTES,
        });
        outcome = step.outcome;
        record.push(...step.record);
      }
    }
    if (write.clientId !== undefined && write.seq !== undefined)
      changed.push({ clientId: write.clientId, seq: write.seq, outcome });
    outcomes.push(outcome);
  }
  await c.query('BEGIN');
  try {
    await c.query('SELECT synod.expect_applied($1, $2)', [group, slot.applied]);
    for (const statement of record) await c.query(statement);
    await c.query(secondTrip(group, entry.slot, changed));
  } catch (error) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return outcomes;
}

/**
 * Runs one step, before its slot's bookkeeping (which the caller commits after): its outcome.
 * Safe to run again after a crash at any point: a prepared transaction is found by its gid,
 * a vote already recorded is given again, an outcome already carried out is not repeated.
 */
export async function runStep(
  c: ClientBase,
  group: string,
  step: GlobalStep,
  options: {
    readonly invalid?: string;
    readonly groupsHere: number;
    /** The step's slot, and how many decided votes to keep. */
    readonly slot: number;
    readonly keepDecided: number;
  },
): Promise<{ outcome: WriteOutcome; record: string[] }> {
  const gid = gidOf(group, step.txid);
  const found = await c.query<VoteRow>(
    'SELECT vote, reason, outcome FROM synod.txn_votes WHERE group_name = $1 AND txid = $2',
    [group, step.txid],
  );
  const row = found.rows[0];
  const prepared = async (): Promise<boolean> =>
    (await c.query('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1', [gid])).rowCount === 1;
  if (step.kind === 'finish') return finish(c, group, step, row, gid, await prepared(), options);
  if (row !== undefined)
    return { outcome: voteOutcome(row.vote, row.reason, row.outcome !== null), record: [] };
  if (await forgotten(c, group, step.meta))
    return {
      outcome: voteOutcome(null, 'forgotten: decided long ago, or prepared too late', false),
      record: [],
    };
  let vote: 'prepared' | 'aborted';
  let reason: string | undefined;
  if (await prepared())
    vote = 'prepared'; // prepared before a crash, not yet recorded
  else if (options.invalid !== undefined) {
    vote = 'aborted';
    reason = options.invalid;
  } else if ((await openPrepared(c, group)) >= MAX_OPEN_PREPARED) {
    vote = 'aborted';
    reason = `${group} holds ${MAX_OPEN_PREPARED} transactions across groups prepared already`;
  } else {
    await assertCapacity(c, options.groupsHere);
    ({ vote, reason } = await prepare(c, step.statements, gid));
  }
  const record = [
    `INSERT INTO synod.txn_votes (group_name, txid, meta, vote, reason)
     VALUES (${lit(group)}, ${lit(step.txid)}, ${lit(JSON.stringify(step.meta))}::jsonb,
             ${lit(vote)}, ${reason === undefined ? 'NULL' : lit(reason)})
     ON CONFLICT DO NOTHING`,
  ];
  return { outcome: voteOutcome(vote, reason ?? null, false), record };
}

/** The statements at this slot, compared with what the client saw; prepared when all equal. */
async function prepare(
  c: ClientBase,
  statements: Parameters<typeof runTransaction>[1],
  gid: string,
): Promise<{ vote: 'prepared' | 'aborted'; reason?: string }> {
  await c.query('BEGIN');
  try {
    const ran = await runTransaction(c, statements);
    if (!ran.ok) {
      await c.query('ROLLBACK');
      return { vote: 'aborted', reason: ran.message };
    }
    await c.query(`PREPARE TRANSACTION ${lit(gid)}`);
    return { vote: 'prepared' };
  } catch (error) {
    await c.query('ROLLBACK').catch(() => undefined);
    // Not a vote: this replica cannot prepare now (the node tries the slot again).
    throw error;
  }
}

async function finish(
  c: ClientBase,
  group: string,
  step: Extract<GlobalStep, { kind: 'finish' }>,
  row: VoteRow | undefined,
  gid: string,
  prepared: boolean,
  options: { readonly slot: number; readonly keepDecided: number },
): Promise<{ outcome: WriteOutcome; record: string[] }> {
  const done: WriteOutcome = {
    ok: true,
    command: step.outcome.toUpperCase(),
    rowCount: 0,
    rows: [],
  };
  if (row === undefined) return { outcome: done, record: [] }; // never voted here: nothing held
  if (step.outcome === 'committed' && row.vote !== 'prepared')
    return {
      outcome: {
        ok: false,
        sqlState: '22023',
        message: `transaction ${step.txid} cannot commit: ${group} voted aborted`,
      },
      record: [],
    };
  if (row.outcome !== null) return { outcome: done, record: [] };
  // Recorded as prepared and gone: this very slot ran COMMIT (or ROLLBACK) PREPARED before a
  // crash that came before its bookkeeping (the only other end of it, an install, brings the
  // vote with its outcome). Only the bookkeeping is left to do.
  if (prepared)
    await c.query(`${step.outcome === 'committed' ? 'COMMIT' : 'ROLLBACK'} PREPARED ${lit(gid)}`);
  return {
    outcome: done,
    record: [
      `UPDATE synod.txn_votes SET outcome = ${lit(step.outcome)}, decided_slot = ${options.slot}
        WHERE group_name = ${lit(group)} AND txid = ${lit(step.txid)} AND outcome IS NULL`,
      forgetOldVotes(group, options.keepDecided),
    ],
  };
}

/**
 * Forgets the decided votes beyond the newest `keep` (by the slot of their outcome, the same
 * on every replica), raising each coordinating group's floor to the highest number forgotten.
 */
function forgetOldVotes(group: string, keep: number): string {
  const g = lit(group);
  return `WITH edge AS (
      SELECT decided_slot FROM synod.txn_votes
       WHERE group_name = ${g} AND decided_slot IS NOT NULL
       ORDER BY decided_slot DESC OFFSET ${keep} LIMIT 1),
    gone AS (
      DELETE FROM synod.txn_votes v USING edge
       WHERE v.group_name = ${g} AND v.decided_slot <= edge.decided_slot
      RETURNING v.meta)
    INSERT INTO synod.txn_floors (group_name, coordinator, number)
    SELECT ${g}, meta->>'coordinator', max((meta->>'number')::bigint) FROM gone GROUP BY 2
    ON CONFLICT (group_name, coordinator)
      DO UPDATE SET number = greatest(synod.txn_floors.number, EXCLUDED.number)`;
}

/** Whether the transaction is at or below its coordinating group's floor here. */
async function forgotten(c: ClientBase, group: string, meta: unknown): Promise<boolean> {
  const m = meta as { coordinator?: unknown; number?: unknown };
  const floor = await c.query<{ number: string }>(
    'SELECT number FROM synod.txn_floors WHERE group_name = $1 AND coordinator = $2',
    [group, String(m.coordinator)],
  );
  const number = floor.rows[0]?.number;
  return number !== undefined && Number(m.number) <= Number(number);
}

/** How many transactions `group` holds prepared (voted prepared, no outcome yet). */
export async function openPrepared(c: ClientBase, group: string): Promise<number> {
  const open = await c.query<{ n: string }>(
    "SELECT count(*) AS n FROM synod.txn_votes WHERE group_name = $1 AND vote = 'prepared' AND outcome IS NULL",
    [group],
  );
  return Number(open.rows[0]?.n ?? 0);
}

/**
 * Refuses to go on (the slot is tried again) when this PostgreSQL cannot hold what the
 * groups here may prepare: the vote must not depend on one replica's settings.
 */
async function assertCapacity(c: ClientBase, groupsHere: number): Promise<void> {
  const setting = await c.query<{ n: string }>(
    "SELECT setting AS n FROM pg_settings WHERE name = 'max_prepared_transactions'",
  );
  const have = Number(setting.rows[0]?.n ?? 0);
  const need = MAX_OPEN_PREPARED * groupsHere;
  if (have < need)
    throw new PreparedCapacityError(
      `this node's PostgreSQL has max_prepared_transactions = ${have}; transactions across groups need at least ${need} (${MAX_OPEN_PREPARED} per group served here): set it and restart PostgreSQL`,
    );
}

function voteOutcome(vote: string | null, reason: string | null, decided: boolean): WriteOutcome {
  return {
    ok: true,
    command: 'PREPARE',
    rowCount: 1,
    rows: [{ vote, reason, decided: decided ? 'true' : 'false' }],
  };
}

const lit = (value: string): string => pg.escapeLiteral(value);

/**
 * A write the node cancelled because a prepared transaction holds what it needs (its
 * outcome comes later in the same log): every replica meets the same lock, and gives the
 * write this outcome.
 */
export function heldByPrepared(error: unknown): WriteOutcome | undefined {
  if (!(error instanceof DatabaseError) || error.code !== '57014') return undefined;
  return {
    ok: false,
    sqlState: '55P03',
    message:
      'the rows this write needs are held by a transaction across groups that is prepared and not yet decided; retry it',
  };
}
