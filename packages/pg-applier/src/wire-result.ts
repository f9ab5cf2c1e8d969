// One statement's result as the SQL front end sends it (its own file: the session, the
// transaction block and COPY all speak of it, and none of them imports the others).
import type pg from 'pg';
import type { CopyInfo } from './classify.js';

/** One statement's result, as the wire sends it: values in PostgreSQL's text format. */
export interface Result {
  readonly fields: readonly pg.FieldDef[];
  readonly rows: readonly (string | null)[][];
  readonly tag: string;
  /** An empty query string (EmptyQueryResponse). */
  readonly empty?: boolean;
  /** A COPY whose rows travel on the connection: the caller runs the copy sub-protocol. */
  readonly copy?: {
    readonly info: CopyInfo;
    /** Into a replicated table: the group whose log it goes through. */
    readonly replicate: string | undefined;
    /** The statement with its names as the session resolves them (qualify.ts). */
    readonly sql: string;
  };
}
