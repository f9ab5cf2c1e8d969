// The `synod` schema's tables: where each group's applied slot, replicated tables, SQL users,
// staged rows, clients' last outcomes and transactions across groups (global-txn.ts: numbers,
// votes, two-phase outcomes) are kept, in the database they describe.
import type { ClientBase } from 'pg';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS synod.applied (
  group_name text PRIMARY KEY,
  slot bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS synod.replicated (
  group_name text NOT NULL,
  table_name text NOT NULL,
  PRIMARY KEY (group_name, table_name)
);
CREATE TABLE IF NOT EXISTS synod.sql_users (
  group_name text NOT NULL,
  name text NOT NULL,
  scram jsonb NOT NULL,
  PRIMARY KEY (group_name, name)
);
CREATE TABLE IF NOT EXISTS synod.staged (
  group_name text NOT NULL,
  stage_id text NOT NULL,
  part int NOT NULL,
  slot bigint NOT NULL,
  rows text NOT NULL,
  PRIMARY KEY (group_name, stage_id, part)
);
CREATE TABLE IF NOT EXISTS synod.sessions (
  group_name text NOT NULL,
  client_id text NOT NULL,
  seq bigint NOT NULL,
  outcome jsonb NOT NULL,
  PRIMARY KEY (group_name, client_id)
);
CREATE TABLE IF NOT EXISTS synod.txn_numbers (
  group_name text PRIMARY KEY,
  numbered bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS synod.txn_votes (
  group_name text NOT NULL,
  txid text NOT NULL,
  meta jsonb NOT NULL,
  vote text NOT NULL,
  reason text,
  outcome text,
  -- The slot of its outcome: the oldest decided are forgotten first (MAX_DECIDED_VOTES).
  decided_slot bigint,
  PRIMARY KEY (group_name, txid)
);
CREATE INDEX IF NOT EXISTS txn_votes_decided ON synod.txn_votes (group_name, decided_slot);
CREATE TABLE IF NOT EXISTS synod.txn_floors (
  group_name text NOT NULL,
  coordinator text NOT NULL,
  number bigint NOT NULL,
  PRIMARY KEY (group_name, coordinator)
);
CREATE TABLE IF NOT EXISTS synod.txn_decided (
  group_name text NOT NULL,
  txid text NOT NULL,
  outcome text NOT NULL,
  PRIMARY KEY (group_name, txid)
);`;

/** The `synod` schema and its tables, where they are missing. */
export async function createBookkeeping(client: ClientBase): Promise<void> {
  // Only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS,
  // and a SQL node's apply role has not (roles.ts makes the schema for it).
  const schema = await client.query<{ missing: boolean }>(
    "SELECT to_regnamespace('synod') IS NULL AS missing",
  );
  if (schema.rows[0]?.missing === true) await client.query('CREATE SCHEMA IF NOT EXISTS synod');
  await client.query(SCHEMA);
}
