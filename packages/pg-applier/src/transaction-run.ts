// A transaction entry run at its slot (transaction-entry.ts says what it is).
import { type ClientBase, DatabaseError } from 'pg';
import { TEXT_VALUES, type WriteOutcome } from './sql-outcomes.js';
import { withTotalOrder } from './total-order.js';
import { errorDigest, resultDigest, type TxnStatement } from './transaction-entry.js';

/**
 * A transaction's statements, each compared with what its client was given: all equal, they
 * stay (COMMIT); the first that differs rolls them all back, with 40001 as the outcome. A
 * statement that failed for the client must fail alike here (then PostgreSQL's aborted
 * state follows, as it did for the client, until a ROLLBACK TO SAVEPOINT). A transaction that
 * ends in that state is rolled back too (25P02): its client could not have committed it.
 */
export async function runTransaction(
  client: ClientBase,
  statements: readonly TxnStatement[],
): Promise<WriteOutcome> {
  await client.query('SAVEPOINT synod_txn');
  let aborted = false;
  let differs: string | undefined;
  for (const [i, statement] of statements.entries()) {
    let got: string;
    try {
      const result = await client.query({
        // As the client's node ran it: rows a LIMIT keeps do not depend on physical order.
        text: withTotalOrder(statement.sql),
        values: [...statement.params],
        types: TEXT_VALUES,
        rowMode: 'array',
      });
      got = resultDigest(result);
      // In the aborted state only ROLLBACK TO SAVEPOINT succeeds, and it ends that state.
      aborted = false;
    } catch (error) {
      if (!(error instanceof DatabaseError)) throw error;
      got = errorDigest(error.code ?? 'XX000');
      aborted = true;
    }
    if (got !== statement.expect) {
      differs = `statement ${i + 1} of the transaction gives another result at its slot than it gave the client: another write got in between`;
      break;
    }
  }
  if (differs !== undefined || aborted) {
    await client.query('ROLLBACK TO SAVEPOINT synod_txn');
    await client.query('RELEASE SAVEPOINT synod_txn');
    return differs !== undefined
      ? {
          ok: false,
          sqlState: '40001',
          message: `could not serialize access: ${differs}; retry the transaction`,
        }
      : {
          ok: false,
          sqlState: '25P02',
          message: 'the transaction ended in its aborted state: nothing of it is kept',
        };
  }
  await client.query('RELEASE SAVEPOINT synod_txn');
  return { ok: true, command: 'COMMIT', rowCount: 0, rows: [] };
}
