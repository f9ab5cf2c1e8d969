/**
 * Errors of the SQL layer carry a PostgreSQL SQLSTATE, so the wire front end can hand them to
 * psql and drivers as the server would.
 */
export class SqlError extends Error {
  readonly sqlState: string;

  constructor(sqlState: string, message: string) {
    super(message);
    this.sqlState = sqlState;
  }
}

/** PostgreSQL's grammar refuses the text (SQLSTATE 42601 syntax_error). */
export class SqlSyntaxError extends SqlError {
  override readonly name = 'SqlSyntaxError';
  /** 1-based character position where the parser stopped, when it says. */
  readonly position: number | undefined;

  constructor(message: string, position?: number) {
    super('42601', position === undefined ? message : `${message} (at character ${position})`);
    this.position = position;
  }
}

/**
 * A statement that replicas could not replay to the same result, or that the replicated
 * tables do not allow (SQLSTATE 0A000 feature_not_supported). `rule` says which rule.
 */
export class DeterminismError extends SqlError {
  override readonly name = 'DeterminismError';
  readonly rule: GuardRule;

  constructor(rule: GuardRule, message: string) {
    super('0A000', message);
    this.rule = rule;
  }
}

export type GuardRule =
  | 'EMPTY'
  | 'MULTIPLE_STATEMENTS'
  | 'VOLATILE_FUNCTION'
  | 'SIDE_EFFECT_FUNCTION'
  | 'MIXED_TABLES'
  | 'DDL_ON_REPLICATED_TABLE'
  | 'LOCKING_READ'
  | 'TRANSACTION_CONTROL';
