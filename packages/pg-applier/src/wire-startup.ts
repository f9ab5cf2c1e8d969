// What a PostgreSQL server tells a client when its session starts and while it runs, so that
// drivers recognise the front end as one: the ParameterStatus set, kept current after SET,
// and BackendKeyData with the CancelRequest it allows (psql's Ctrl-C).
import { randomInt } from 'node:crypto';
import pg from 'pg';
import { concat, cstring, message } from './wire-messages.js';

/**
 * The settings PostgreSQL 15 reports (GUC_REPORT) after authentication and whenever they
 * change. psycopg2 refuses a server that does not report client_encoding.
 */
export const REPORTED_SETTINGS = [
  'application_name',
  'client_encoding',
  'DateStyle',
  'default_transaction_read_only',
  'in_hot_standby',
  'integer_datetimes',
  'IntervalStyle',
  'is_superuser',
  'server_encoding',
  'server_version',
  'session_authorization',
  'standard_conforming_strings',
  'TimeZone',
] as const;

/**
 * Startup parameters a client may send that are session settings, applied to its database
 * session as PostgreSQL applies them. client_encoding is not among them: the front end speaks
 * UTF8 only, and says so.
 */
const STARTUP_SETTINGS = new Set([
  'application_name',
  'datestyle',
  'timezone',
  'intervalstyle',
  'extra_float_digits',
  'search_path',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
]);

/** The settings a client's startup packet asks for (`options` holds `-c name=value` too). */
export function startupSettings(params: Readonly<Record<string, string>>): [string, string][] {
  const wanted: [string, string][] = [];
  for (const [name, value] of Object.entries(params))
    if (STARTUP_SETTINGS.has(name.toLowerCase())) wanted.push([name, value]);
  const options = params.options ?? '';
  for (const match of options.matchAll(/(?:^|\s)(?:-c\s*|--)([A-Za-z_.]+)=((?:\\\s|\S)*)/g)) {
    const name = match[1]!;
    if (STARTUP_SETTINGS.has(name.toLowerCase()))
      wanted.push([name, match[2]!.replace(/\\(\s)/g, '$1')]);
  }
  return wanted;
}

/** Applies the client's startup settings to its database session; a bad one fails the login. */
export async function applyStartupSettings(
  db: pg.Client,
  params: Readonly<Record<string, string>>,
): Promise<void> {
  for (const [name, value] of startupSettings(params))
    await db.query('SELECT set_config($1, $2, false)', [name, value]);
}

/**
 * The reported settings as this session has them: its database session's values, with what
 * the front end itself is: a UTF8 connection, the user the client logged in as, never a
 * superuser, a server_version that says synod.
 */
export async function reportedValues(db: pg.Client, user: string): Promise<Map<string, string>> {
  const names = REPORTED_SETTINGS.filter(
    (n) => !['client_encoding', 'is_superuser', 'session_authorization'].includes(n),
  );
  const result = await db.query<{ name: string; value: string }>(
    'SELECT n AS name, current_setting(n) AS value FROM unnest($1::text[]) AS n',
    [names],
  );
  const values = new Map(result.rows.map((row) => [row.name, row.value]));
  values.set('client_encoding', 'UTF8');
  values.set('is_superuser', 'off');
  values.set('session_authorization', user);
  // The database server's version number (drivers parse it), then what answers: synod.
  const version = /^\d+(\.\d+)?/.exec(values.get('server_version') ?? '')?.[0] ?? '15';
  values.set('server_version', `${version} (synod)`);
  return values;
}

export const parameterStatus = (name: string, value: string): Uint8Array =>
  message('S', concat([cstring(name), cstring(value)]));

/** ParameterStatus of every setting whose value differs from `before`; `before` is updated. */
export function changedSettings(
  before: Map<string, string>,
  now: ReadonlyMap<string, string>,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const [name, value] of now)
    if (before.get(name) !== value) {
      before.set(name, value);
      out.push(parameterStatus(name, value));
    }
  return out;
}

/** A session's cancel key: what its BackendKeyData says, and its CancelRequest must repeat. */
export interface CancelKey {
  readonly processId: number;
  readonly secret: number;
}

export const newCancelKey = (): CancelKey => ({
  processId: randomInt(1, 2 ** 31 - 1),
  secret: randomInt(0, 2 ** 31 - 1),
});

export function backendKeyData(key: CancelKey): Uint8Array {
  const body = new Uint8Array(8);
  const view = new DataView(body.buffer);
  view.setInt32(0, key.processId);
  view.setInt32(4, key.secret);
  return message('K', body);
}

/** A CancelRequest packet (sent on a connection of its own, before any startup): its key. */
export function cancelRequest(data: Uint8Array): CancelKey | undefined {
  if (data.byteLength !== 16) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getInt32(0) !== 16 || view.getInt32(4) !== 80877102) return undefined;
  return { processId: view.getInt32(8), secret: view.getInt32(12) };
}

/**
 * Cancels what a database backend runs now, as PostgreSQL's own CancelRequest would: through
 * a short session as the same role (pg_cancel_backend needs no more).
 */
export async function cancelBackend(connectionString: string, pid: number): Promise<void> {
  const db = new pg.Client({ connectionString, application_name: 'synod-cancel' });
  db.on('error', () => undefined);
  try {
    await db.connect();
    await db.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await db.end().catch(() => undefined);
  }
}
