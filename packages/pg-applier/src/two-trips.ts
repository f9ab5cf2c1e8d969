import pg from 'pg';

/**
 * The texts of the applier's quickest path: a batch in two round trips to PostgreSQL.
 *
 * Under load every round trip waits for the scheduler as well as the network: with three
 * nodes, three PostgreSQL servers and nats-server on two cores, each one cost ~3 ms, and
 * the seven of a batch (BEGIN, lock, sessions in, writes, sessions out, slot, COMMIT) made an
 * apply call take 10-25 ms. Here the first trip opens the transaction, checks and locks the
 * applied slot, and runs the writes; the second records the sessions and the slot and
 * commits. Values go in as literals: the simple protocol, which alone runs several
 * statements at once, takes no parameters.
 */

/** Checks the applied slot and locks its row; SQLSTATE 40001 when another applier moved it. */
export const EXPECT_APPLIED_FUNCTION = `
CREATE OR REPLACE FUNCTION synod.expect_applied(g text, expected bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE current bigint;
BEGIN
  SELECT slot INTO current FROM synod.applied WHERE group_name = g FOR UPDATE;
  IF current IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'synod: the applied slot of group % is %, not %', g, current, expected
      USING ERRCODE = '40001';
  END IF;
END $fn$;`;

/** Trip one: BEGIN, the slot check, then every write; results 2.. are the writes'. */
export function firstTrip(group: string, applied: number, writes: readonly string[]): string {
  return [
    'BEGIN',
    `SELECT synod.expect_applied(${pg.escapeLiteral(group)}, ${applied})`,
    ...writes,
  ].join(';\n');
}

/** How many results of the first trip come before the writes'. */
export const FIRST_TRIP_PREFIX = 2;

/** Trip two: the sessions of the clients that wrote, the new applied slot, COMMIT. */
export function secondTrip(
  group: string,
  slot: number,
  sessions: readonly { clientId: string; seq: number; outcome: unknown }[],
): string {
  const g = pg.escapeLiteral(group);
  const statements: string[] = [];
  if (sessions.length > 0)
    statements.push(
      `INSERT INTO synod.sessions (group_name, client_id, seq, outcome) VALUES ${sessions
        .map(
          (s) =>
            `(${g}, ${pg.escapeLiteral(s.clientId)}, ${s.seq}, ${pg.escapeLiteral(JSON.stringify(s.outcome))}::jsonb)`,
        )
        .join(', ')}
       ON CONFLICT (group_name, client_id) DO UPDATE SET seq = EXCLUDED.seq, outcome = EXCLUDED.outcome`,
    );
  statements.push(`UPDATE synod.applied SET slot = ${slot} WHERE group_name = ${g}`, 'COMMIT');
  return statements.join(';\n');
}
