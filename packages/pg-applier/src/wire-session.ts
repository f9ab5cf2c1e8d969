// What the SQL front end (wire.ts) keeps per client connection, and one statement's result.
import type { SynodClient } from '@synod/client';
import type pg from 'pg';
import type { SessionPath } from './qualify.js';
import type { StatementDescription } from './statement-describe.js';
import type { CopyIn } from './wire-copy.js';
import type { Result } from './wire-result.js';
import type { CancelKey } from './wire-startup.js';
import type { TransactionState } from './wire-transaction.js';

export type { Result } from './wire-result.js';

export type Consistency = 'strong' | 'optimistic' | 'linearizable';

export const CONSISTENCIES: readonly Consistency[] = ['strong', 'optimistic', 'linearizable'];

/** A statement of the extended protocol (Parse). */
export interface Prepared {
  readonly sql: string;
  /** The parameter types the client declared (0: unspecified, PostgreSQL infers it). */
  readonly declared: readonly number[];
  /** Asked of the database once, when a Describe or a binary parameter needs it. */
  description?: StatementDescription;
}

/** A bound statement of the extended protocol (Bind), run once. */
export interface Portal {
  readonly sql: string;
  /** Every parameter in PostgreSQL's text format (binary ones converted at Bind). */
  readonly params: readonly (string | null)[];
  /** Result format codes as Bind gave them: none (all text), one for all, or one per column. */
  readonly resultFormats: readonly number[];
  results: Result[] | undefined;
}

/** A client connection's state. */
export interface Session {
  consistency: Consistency;
  /** Whether its names resolve as the applier's (qualify.ts). */
  readonly path: SessionPath;
  /** Its client of each group's log (one clientId and seq per group, created when first used). */
  readonly client: (group: string) => SynodClient;
  /** The user it logged in as. */
  user: string;
  /** The settings last reported to the client (ParameterStatus: wire-startup.ts). */
  settings: Map<string, string>;
  /** A statement may have changed a reported setting: compare before ReadyForQuery. */
  settingsStale: boolean;
  /** What its BackendKeyData said, and a CancelRequest for it must repeat. */
  readonly cancelKey: CancelKey;
  /** Its tentative connection between transactions on replicated tables (wire-transaction.ts). */
  tentative: pg.Client | undefined;
  /** The transaction block it is in, if any (wire-transaction.ts). */
  transaction: TransactionState;
  /** After an error in the extended protocol: ignore messages until Sync. */
  skipUntilSync: boolean;
  /** A COPY FROM STDIN receiving the client's rows; `replicate`: through that group's log. */
  copyIn: { readonly rows: CopyIn; readonly replicate: string | undefined } | undefined;
  readonly prepared: Map<string, Prepared>;
  readonly portals: Map<string, Portal>;
}
