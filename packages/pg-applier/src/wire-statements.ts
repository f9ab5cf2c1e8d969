// The SQL front end's own statements (SET/SHOW synod.consistency_model, synod.replicate_table())
// and the small pieces wire.ts builds its answers from.
import type pg from 'pg';
import { commandComplete, dataRow, message, rowDescription } from './wire-messages.js';
import type { Result } from './wire-result.js';

/**
 * pg_paxos's `paxos_replicate_table(group, table)`: `SELECT synod.replicate_table('points')`
 * in this node's (first) group, `synod.replicate_table('points', 'south')` in the group named,
 * gives the table's name once it is replicated. The guard has already parsed the statement as
 * a read; this takes only that exact form.
 */
export function replicateTableCall(
  sql: string,
): { readonly table: string; readonly group?: string } | undefined {
  const call =
    /^\s*select\s+synod\.replicate_table\s*\(\s*'([^']*)'\s*(?:,\s*'([^']*)'\s*)?\)\s*;?\s*$/i.exec(
      sql,
    );
  if (call === null) return undefined;
  return call[2] === undefined ? { table: call[1]! } : { table: call[1]!, group: call[2] };
}

/**
 * The front end's own session statements: `SET synod.consistency_model TO x` (the value as
 * written, lower case) or `SHOW synod.consistency_model`.
 */
export function consistencyStatement(sql: string): { set: string } | { show: true } | undefined {
  const set = /^\s*set\s+(session\s+)?synod\.consistency_model\s*(to|=)\s*'?(\w+)'?\s*;?\s*$/i.exec(
    sql,
  );
  if (set !== null) return { set: set[3]!.toLowerCase() };
  return /^\s*show\s+synod\.consistency_model\s*;?\s*$/i.test(sql) ? { show: true } : undefined;
}

/**
 * Whether `host` is the machine's own loopback address, where a front end with no user
 * defined trusts its logins: 127.0.0.1, ::1 or localhost. Any other address, 127.0.0.2 as
 * much as a network interface, is one somebody chose with --sql-listen: passwords there.
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '127.0.0.1';
}

/** A Buffer's bytes as the ArrayBuffer pg-gateway takes. */
export const arrayBuffer = (bytes: Uint8Array): ArrayBuffer =>
  bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/** One statement's result, as the simple query protocol sends it. */
export function writeResult(result: Result, out: Uint8Array[]): void {
  if (result.empty) {
    out.push(message('I', new Uint8Array()));
    return;
  }
  if (result.fields.length > 0) {
    out.push(rowDescription(result.fields));
    for (const row of result.rows) out.push(dataRow(row));
  }
  out.push(commandComplete(result.tag));
}

export const textField = (name: string): pg.FieldDef => ({
  name,
  tableID: 0,
  columnID: 0,
  dataTypeID: 25,
  dataTypeSize: -1,
  dataTypeModifier: -1,
  format: 'text',
});
