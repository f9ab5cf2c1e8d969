// What opening a group's SQL machine sets up: its apply connection and applier, its pools,
// and what it has applied (replicated tables, users, transactions across groups).
import pg from 'pg';
import { PgApplier } from './applier.js';
import { SqlError } from './errors.js';
import { GroupTransactions } from './group-transactions.js';
import { loadReplicated, tableDefinition } from './replicated-tables.js';
import type { SqlRoles } from './roles.js';
import { SqlUsers } from './sql-users.js';
import { DETERMINISTIC_SESSION } from './state-digest.js';

/** The apply connection (named in pg_stat_activity) and its applier. */
export async function connectApplier(
  connectionString: string,
  group: string,
  groupsHere: number,
): Promise<{ client: pg.Client; applier: PgApplier }> {
  // Every replica resolves names alike: with `public` alone, whatever the database's default
  // (the front end writes other schemas' tables out in full: qualify.ts); and turns values
  // into text alike, whatever each server's configured time zone or date style.
  const client = new pg.Client({
    connectionString,
    application_name: 'synod-apply',
    options: DETERMINISTIC_SESSION,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { client, applier: await PgApplier.open(client, group, groupsHere) };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** A group's SQL machine's parts, on this database as the roles set up. */
export async function openGroupResources(
  roles: SqlRoles,
  group: string,
  named: readonly string[],
  groupsHere: number,
): Promise<{
  client: pg.Client;
  applier: PgApplier;
  reads: pg.Pool;
  own: pg.Pool;
  replicated: string[];
  users: SqlUsers;
  transactions: GroupTransactions;
}> {
  const { client, applier } = await connectApplier(roles.applyUrl, group, groupsHere);
  const pool = (url: string, name: string, max: number, options?: string): pg.Pool => {
    const p = new pg.Pool({
      connectionString: url,
      max,
      application_name: name,
      ...(options === undefined ? {} : { options }),
    });
    p.on('error', () => undefined);
    return p;
  };
  const reads = pool(roles.clientUrl, 'synod-read', 4);
  const own = pool(roles.applyUrl, 'synod-state', 2, DETERMINISTIC_SESSION);
  try {
    // Tables named at start get the check `synod table replicate` makes (serial, identity,
    // volatile defaults), when they exist already: replicas would diverge on them.
    for (const table of named) {
      try {
        await tableDefinition(client, table);
      } catch (error) {
        // A table not created yet is checked by nobody (README, "Known gaps").
        if (error instanceof SqlError && error.sqlState === '42P01') continue;
        throw error;
      }
    }
    return {
      client,
      applier,
      reads,
      own,
      replicated: [...named, ...(await loadReplicated(client, group))],
      users: await SqlUsers.load(client, group),
      transactions: await GroupTransactions.load(client, group),
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    await reads.end().catch(() => undefined);
    await own.end().catch(() => undefined);
    throw error;
  }
}

/** Throws SqlError 0A000 naming a table that two groups claim. */
export function assertOneGroupPerTable(
  groups: readonly { readonly group: string; readonly tables: readonly string[] }[],
): void {
  const owner = new Map<string, string>();
  for (const { group, tables } of groups)
    for (const table of tables) {
      const other = owner.get(table);
      if (other !== undefined && other !== group)
        throw new SqlError(
          '0A000',
          `--replicate names table "${table}" for both ${other} and ${group}: a table belongs to one group (its writes follow one log)`,
        );
      owner.set(table, group);
    }
}
