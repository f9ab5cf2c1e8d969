import type pg from 'pg';

/**
 * The PostgreSQL backend a pg client is connected to: pg keeps its pid from BackendKeyData,
 * and @types/pg does not declare it. Undefined before the client has connected.
 */
export function backendPid(client: pg.Client): number | undefined {
  const pid = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === 'number' ? pid : undefined;
}
