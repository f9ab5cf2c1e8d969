import type pg from 'pg';

/** What PostgreSQL says of a statement before it runs: its parameters' and result's types. */
export interface StatementDescription {
  /** Each parameter's type OID, as PostgreSQL infers it (or as the client declared it). */
  readonly params: readonly number[];
  /** The result's columns; undefined when the statement returns no rows. */
  readonly fields: readonly pg.FieldDef[] | undefined;
}

/**
 * Asks this node's database to describe `sql` (Parse and Describe of the unnamed statement,
 * then Sync), as a driver's Describe of a prepared statement asks the front end. node-postgres
 * has no call for it; a Submittable (the extension point pg-cursor and pg-copy-streams use)
 * sends the messages on the client's connection in its turn in the client's query queue.
 * Rejects with PostgreSQL's error (42P01 for an unknown table, 42601 for bad SQL, ...).
 */
export function describeStatement(
  db: pg.Client,
  sql: string,
  declared: readonly number[],
): Promise<StatementDescription> {
  return new Promise((resolve, reject) => {
    let params: readonly number[] = [];
    let fields: pg.FieldDef[] | undefined;
    let failure: Error | undefined;
    let detach = (): void => undefined;
    const describe: pg.Submittable & Record<string, unknown> = {
      submit(connection: pg.Connection) {
        // ParameterDescription and NoData reach only the connection, not the active query.
        const onParams = (message: { dataTypeIDs: number[] }) => {
          params = message.dataTypeIDs;
        };
        connection.on('parameterDescription', onParams);
        detach = () => connection.removeListener('parameterDescription', onParams);
        // @types/pg says string[]; pg-protocol writes each as an Int32 OID.
        const types = [...declared] as unknown as string[];
        connection.parse({ name: '', text: sql, types }, true);
        connection.describe({ type: 'S', name: '' }, true);
        connection.sync();
      },
      handleParseComplete() {},
      handleRowDescription(message: { fields: pg.FieldDef[] }) {
        fields = message.fields;
      },
      handleError(error: Error) {
        failure = error;
      },
      handleReadyForQuery() {
        detach();
        if (failure !== undefined) reject(failure);
        else resolve({ params, fields });
      },
    };
    db.query(describe);
  });
}
