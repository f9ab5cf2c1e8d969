export {
  PgApplier,
  type ResultField,
  SlotAheadError,
  SlotGapError,
  type SqlEntry,
  type SqlWrite,
  type WriteOutcome,
} from './applier.js';
export {
  classify,
  loadParser,
  type StatementInfo,
  type StatementKind,
  VOLATILE_FUNCTIONS,
} from './classify.js';
export { type EmbeddedDatabase, startEmbeddedPostgres, stopLeftoverPostgres } from './embedded.js';
export { DeterminismError, type GuardRule, SqlError, SqlSyntaxError } from './errors.js';
export { type GuardOptions, type Route, route } from './guard.js';
export {
  assertDefinition,
  assertTableName,
  loadReplicated,
  replicateStatement,
  tableDefinition,
  tableKey,
} from './replicated-tables.js';
export {
  MAX_REPLICATED_ROWS_BYTES,
  type SqlGroupsOptions,
  SqlMachine,
  type SqlMachineOptions,
} from './sql-machine.js';
export { installSqlSnapshot, takeSqlSnapshot } from './sql-snapshot.js';
export { type ScramSha256Data, SqlUsers, scramVerifier, userCommand } from './sql-users.js';
export { type Consistency, isLoopback, SqlFrontEnd, type SqlFrontEndOptions } from './wire.js';
export type { FrontEndGroup } from './wire-groups.js';
