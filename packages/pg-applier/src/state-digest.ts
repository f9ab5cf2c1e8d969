import pg from 'pg';
import { quoteTable } from './replicated-tables.js';

/**
 * Session settings under which a row's text form is the same on every replica. `row::text`
 * (what the digest hashes, and what a write may store when it casts) follows DateStyle,
 * TimeZone, IntervalStyle, extra_float_digits and bytea_output, whose defaults come from each
 * server's own configuration: the apply connection and the digest run with these instead.
 */
export const DETERMINISTIC_SESSION =
  '-c search_path=public -c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex';

/** A multiset checksum of a query's rows: their count and the sum of each row's 64-bit hash. */
const checksum = (rowText: string): string =>
  `count(*) || ':' || coalesce(sum(('x' || substr(md5(${rowText}), 1, 16))::bit(64)::bigint::numeric), 0)`;

/**
 * One SELECT whose single column `digest` is equal on replicas whose replicated tables and
 * SQL users are equal: per table (in the order given), its name, row count and the sum of its
 * rows' hashes (order-free, no sort of the table; a row missing or twice changes it), then
 * the group's users. Run in an apply transaction it is the state at that slot.
 */
export function digestStatement(group: string, tables: readonly string[]): string {
  const parts = tables.map(
    (table) =>
      `(SELECT ${pg.escapeLiteral(`${table}:`)} || ${checksum('r::text')} FROM ${quoteTable(table)} r)`,
  );
  parts.push(
    `(SELECT 'users:' || ${checksum("u.name || ' ' || u.scram::text")} FROM synod.sql_users u WHERE u.group_name = ${pg.escapeLiteral(group)})`,
  );
  return `SELECT concat_ws(' ', ${parts.join(', ')}) AS digest`;
}
