import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { createBookkeeping } from './bookkeeping.js';
import { SqlError } from './errors.js';
import {
  loadReplicated,
  quoteTable,
  readOnlyGrants,
  tableKey,
  tableParts,
} from './replicated-tables.js';

/**
 * The PostgreSQL roles a SQL node runs as (README: "Roles"). The database is the wall, not
 * the statement classifier: PostgreSQL runs user code in too many places (functions,
 * procedures, DO blocks, triggers, rules, views) for a parser to see every write.
 *
 * - `admin`: the role of `--pg` (the embedded server's superuser). Used only by the node
 *   itself, to set the other two up and to hand a table to `apply` when it is replicated;
 *   nothing a client or a log entry carries ever runs as it.
 * - `apply`: owns the replicated tables and the `synod` schema, and applies the log. No
 *   superuser, no CREATE on the database, no member of any role: a log entry can change
 *   replicated tables and synod's bookkeeping, and reaches nothing beyond the database.
 * - `client`: front-end sessions and `{"op":"query"}` reads. May create and use local tables
 *   in `public`, read replicated tables, and nothing else: a write of a replicated table or
 *   of `synod.*` along any path fails with PostgreSQL's own 42501.
 *
 * Roles belong to the whole server, and several nodes may share one server (one database
 * each), so the names carry the database's name; passwords are new at every start and kept
 * in memory only.
 */
export interface SqlRoles {
  readonly apply: string;
  readonly client: string;
  /** Connection strings that log in as each role. */
  readonly applyUrl: string;
  readonly clientUrl: string;
}

const MAX_IDENTIFIER = 63;

/** A role name for `database`: plain when it can be, with a digest when it must be shortened. */
export function roleName(kind: 'apply' | 'client', database: string): string {
  const plain = database.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const name = `synod_${kind}_${plain}`;
  if (plain === database && name.length <= MAX_IDENTIFIER) return name;
  const digest = createHash('sha256').update(database).digest('hex').slice(0, 10);
  return `synod_${kind}_${plain.slice(0, 30)}_${digest}`;
}

const ident = (name: string): string => pg.escapeIdentifier(name);

function withRole(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Connects as the admin role, runs `work`, disconnects. */
export async function asAdmin<T>(
  adminUrl: string,
  work: (admin: pg.Client) => Promise<T>,
): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'synod-admin' });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/**
 * Creates (or brings up to date) the node's two roles with fresh passwords, the `synod`
 * schema owned by `apply`, and the grants; hands each group's `tables` (the replicated ones
 * known so far) to `apply`. Refuses an admin role that is not a superuser: only a superuser
 * can hand a table a client created to another role. Once per process and database: the
 * groups a node serves on one database share the roles (new passwords would lock out the
 * connections of groups set up before).
 */
export async function setUpRoles(
  adminUrl: string,
  groups: readonly { readonly group: string; readonly tables: Iterable<string> }[],
): Promise<SqlRoles> {
  return asAdmin(adminUrl, async (admin) => {
    const me = await admin.query<{ user: string; database: string; superuser: boolean }>(
      `SELECT current_user AS user, current_database() AS database, rolsuper AS superuser
         FROM pg_roles WHERE rolname = current_user`,
    );
    const { user, database, superuser } = me.rows[0]!;
    if (!superuser)
      throw new SqlError(
        '42501',
        `the PostgreSQL role "${user}" of --pg is not a superuser: a SQL node needs one to set up the roles it runs clients and the log as (the README's "Roles")`,
      );
    const apply = roleName('apply', database);
    const client = roleName('client', database);
    const passwords = {
      apply: randomBytes(24).toString('base64url'),
      client: randomBytes(24).toString('base64url'),
    };
    for (const [role, password] of [
      [apply, passwords.apply],
      [client, passwords.client],
    ] as const) {
      await admin.query(
        `DO $roles$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${pg.escapeLiteral(role)}) THEN
             CREATE ROLE ${ident(role)};
           END IF;
         END $roles$`,
      );
      // Whatever someone granted it since, it is none of these.
      await admin.query(
        `ALTER ROLE ${ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD ${pg.escapeLiteral(password)}`,
      );
    }
    const db = ident(database);
    await admin.query(`GRANT CONNECT ON DATABASE ${db} TO ${ident(apply)}`);
    await admin.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${ident(client)}`);
    // PostgreSQL 15 no longer lets everyone create in public: both roles may.
    await admin.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${ident(apply)}, ${ident(client)}`);
    await admin.query(`CREATE SCHEMA IF NOT EXISTS synod AUTHORIZATION ${ident(apply)}`);
    await admin.query(`ALTER SCHEMA synod OWNER TO ${ident(apply)}`);
    await admin.query('REVOKE ALL ON SCHEMA synod FROM PUBLIC');
    await createBookkeeping(admin);
    // A node of an earlier version made synod's tables and functions as the admin.
    const owned = await admin.query<{ statement: string }>(
      `SELECT format('ALTER TABLE synod.%I OWNER TO %I', c.relname, $1::text) AS statement
         FROM pg_class c WHERE c.relnamespace = 'synod'::regnamespace AND c.relkind = 'r'
       UNION ALL
       SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $1::text)
         FROM pg_proc p WHERE p.pronamespace = 'synod'::regnamespace`,
      [apply],
    );
    for (const { statement } of owned.rows) await admin.query(statement);
    // A function a client creates is not callable by others (apply among them): a replicated
    // write that calls one fails alike everywhere instead of running client code as apply.
    await admin.query(
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(client)} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`,
    );
    const roles = {
      apply,
      client,
      applyUrl: withRole(adminUrl, apply, passwords.apply),
      clientUrl: withRole(adminUrl, client, passwords.client),
    };
    for (const { group, tables } of groups) {
      const named = [...tables];
      await adoptOnCreate(admin, { apply, client }, group, named);
      const known = await loadReplicated(admin, group);
      for (const table of new Set([...named, ...known]))
        if (await handOver(admin, roles, table))
          for (const statement of readOnlyGrants(table, client)) await admin.query(statement);
    }
    return roles;
  });
}

/**
 * Before a replicate entry is applied here: the table's schema exists and `apply` may create
 * in it, and a table already there (made by a client, or by hand) now belongs to `apply`, so
 * that from the entry on no client can write it, alter it or put a trigger on it. Says whether
 * the table exists here.
 */
export async function handOver(
  admin: pg.ClientBase,
  roles: Pick<SqlRoles, 'apply' | 'client'>,
  table: string,
): Promise<boolean> {
  const key = tableKey(table);
  const { schema } = tableParts(key);
  if (schema !== 'public') {
    await admin.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
    await admin.query(`GRANT USAGE, CREATE ON SCHEMA ${ident(schema)} TO ${ident(roles.apply)}`);
    await admin.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(roles.client)}`);
  }
  const found = await admin.query<{ owner: string | null }>(
    'SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = to_regclass($1)',
    [quoteTable(key)],
  );
  if (found.rowCount === 0) return false;
  // Only when it must: ALTER TABLE takes the table's strongest lock even to change nothing,
  // and a transaction across groups may hold the table prepared (a node starting again then
  // waited for ever for an outcome it was to apply itself).
  if (found.rows[0]?.owner !== roles.apply)
    await admin.query(`ALTER TABLE ${quoteTable(key)} OWNER TO ${ident(roles.apply)}`);
  return true;
}

/**
 * A table replicated from the start (`--replicate`) is often created later, by a client (as
 * pg_paxos has it: create the table on every node, its writes then replicate). An event
 * trigger, run as the admin, hands such a table to `apply` in the very statement that creates
 * it, whoever creates it and however (a DO block too): its creator never holds it writable.
 * The names are kept in `synod.named`, the node's `--replicate` list.
 */
async function adoptOnCreate(
  admin: pg.ClientBase,
  roles: Pick<SqlRoles, 'apply' | 'client'>,
  group: string,
  tables: readonly string[],
): Promise<void> {
  await admin.query(
    'CREATE TABLE IF NOT EXISTS synod.named (group_name text NOT NULL, table_name text NOT NULL, PRIMARY KEY (group_name, table_name))',
  );
  await admin.query('DELETE FROM synod.named WHERE group_name = $1', [group]);
  for (const table of tables)
    await admin.query(
      'INSERT INTO synod.named (group_name, table_name) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [group, tableKey(table)],
    );
  // In a schema of the admin's own: the function runs as the admin, so no other role may
  // replace it (the apply role owns the synod schema).
  await admin.query('CREATE SCHEMA IF NOT EXISTS synod_admin');
  await admin.query('REVOKE ALL ON SCHEMA synod_admin FROM PUBLIC');
  await admin.query(
    `CREATE OR REPLACE FUNCTION synod_admin.adopt() RETURNS event_trigger
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $adopt$
     DECLARE r record; k text;
     BEGIN
       FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
         k := CASE WHEN r.schema_name = 'public' THEN substr(r.object_identity, 8) ELSE r.object_identity END;
         IF EXISTS (SELECT 1 FROM synod.named WHERE table_name = k)
            OR EXISTS (SELECT 1 FROM synod.replicated WHERE table_name = k) THEN
           EXECUTE format('ALTER TABLE %s OWNER TO %I', r.object_identity, ${pg.escapeLiteral(roles.apply)});
           EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, %I', r.object_identity, ${pg.escapeLiteral(roles.client)});
           EXECUTE format('GRANT SELECT ON %s TO %I', r.object_identity, ${pg.escapeLiteral(roles.client)});
         END IF;
       END LOOP;
     END $adopt$`,
  );
  await admin.query(
    `DO $t$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'synod_adopt') THEN
         CREATE EVENT TRIGGER synod_adopt ON ddl_command_end
           WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
           EXECUTE FUNCTION synod_admin.adopt();
       END IF;
     END $t$`,
  );
}
