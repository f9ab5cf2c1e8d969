import type { Command } from '@synod/protocol';
import pg from 'pg';
import { createScramSha256Data, type ScramSha256Data } from 'pg-gateway';
import { SqlError } from './errors.js';

/**
 * The SQL front end's users, kept in the group's log so that every node accepts the same ones
 * (`synod sql user add NAME`, `{"op":"sqluser","name":N,"scram":{...}}`). The log carries a
 * SCRAM-SHA-256 verifier (salt, iterations, stored and server keys), as PostgreSQL's pg_authid
 * does, never the password: the client that adds a user computes it. Every user's session
 * runs as the node's client role (roles.ts).
 */
export type { ScramSha256Data } from 'pg-gateway';

/** Names as PostgreSQL's unquoted role names, plus the characters logins commonly use. */
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The verifier a user add carries, for `password` (iterations as PostgreSQL's default). */
export function scramVerifier(password: string): Promise<ScramSha256Data> {
  if (password.length === 0) throw new SqlError('22023', 'a SQL user needs a password');
  return createScramSha256Data(password, 4096);
}

/** A user add or removal, checked: what the log may carry. */
export function userCommand(command: Command): Command {
  const { name, scram, remove } = command;
  if (typeof name !== 'string' || !USER_NAME.test(name))
    throw new SqlError(
      '22023',
      `invalid SQL user name ${JSON.stringify(name)}: a letter or _, then letters, digits, _ . @ -, at most 63`,
    );
  if (remove === true) return { op: 'sqluser', name, remove: true };
  const s = scram as Record<string, unknown> | undefined;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.salt !== 'string' ||
    typeof s.storedKey !== 'string' ||
    typeof s.serverKey !== 'string' ||
    ![s.salt, s.storedKey, s.serverKey].every((v) => BASE64.test(v as string)) ||
    typeof s.iterations !== 'number' ||
    !Number.isSafeInteger(s.iterations) ||
    s.iterations < 4096 ||
    s.iterations > 10_000_000
  )
    throw new SqlError(
      '22023',
      'a SQL user add carries "scram": {salt, iterations (4096 or more), storedKey, serverKey}, base64; synod sql user add computes it',
    );
  return {
    op: 'sqluser',
    name,
    scram: {
      salt: s.salt,
      iterations: s.iterations,
      storedKey: s.storedKey,
      serverKey: s.serverKey,
    },
  };
}

/** The statement a replica runs for a checked user command (built here, from its fields). */
export function userStatement(group: string, command: Command): string {
  const name = pg.escapeLiteral(String(command.name));
  const g = pg.escapeLiteral(group);
  if (command.remove === true)
    return `DELETE FROM synod.sql_users WHERE group_name = ${g} AND name = ${name}`;
  const scram = pg.escapeLiteral(JSON.stringify(command.scram));
  return `INSERT INTO synod.sql_users (group_name, name, scram) VALUES (${g}, ${name}, ${scram}::jsonb)
          ON CONFLICT (group_name, name) DO UPDATE SET scram = EXCLUDED.scram`;
}

/** The users as this node has applied them: what its front end checks logins against. */
export class SqlUsers {
  readonly #users = new Map<string, ScramSha256Data>();

  get size(): number {
    return this.#users.size;
  }

  lookup(name: string): ScramSha256Data | undefined {
    return this.#users.get(name);
  }

  /** After a user command was applied (or at start, from synod.sql_users). */
  applied(command: Command): void {
    const name = String(command.name);
    if (command.remove === true) this.#users.delete(name);
    else this.#users.set(name, command.scram as ScramSha256Data);
  }

  /** Becomes `other` (after a peer's snapshot replaced the table). */
  reload(other: SqlUsers): void {
    this.#users.clear();
    for (const [name, scram] of other.#users) this.#users.set(name, scram);
  }

  static async load(client: pg.ClientBase, group: string): Promise<SqlUsers> {
    const users = new SqlUsers();
    const rows = await client.query<{ name: string; scram: ScramSha256Data }>(
      'SELECT name, scram FROM synod.sql_users WHERE group_name = $1',
      [group],
    );
    for (const row of rows.rows) users.applied({ op: 'sqluser', name: row.name, scram: row.scram });
    return users;
  }
}
