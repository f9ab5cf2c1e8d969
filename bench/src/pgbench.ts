// psql and pgbench as the SQL benchmarks run them: against a synod front end (loopback,
// trusted) or a PostgreSQL server with its secret.
import { execFileSync } from 'node:child_process';
import { round } from './stats.js';

/** One pgbench run: what it measured. */
export interface Row {
  readonly target: string;
  readonly clients: number;
  readonly tps: number;
  readonly latencyMs: number;
  /** Transactions pgbench retried after 40001 (or 40P01), per transaction tried. */
  readonly retryRate?: number;
}

/**
 * The synod front ends trust loopback logins (no SQL user defined); the direct server asks
 * for its own secret (startEmbeddedPostgres draws one per server).
 */
export function psql(port: number, sql: string, password = ''): string {
  return execFileSync(
    'psql',
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'synod', '-Atc', sql],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: password } },
  );
}

export function pgbench(
  seconds: number,
  target: string,
  port: number,
  clients: number,
  scriptFile: string,
  password = '',
  retries = false,
): Row {
  const out = execFileSync(
    'pgbench',
    [
      ...['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'synod'],
      // Serialization failures are retried as applications retry them (pgbench 15).
      ...(retries ? ['--max-tries', '1000'] : []),
      ...[
        '-n',
        '-M',
        'simple',
        '-f',
        scriptFile,
        '-c',
        String(clients),
        '-j',
        String(Math.min(clients, 4)),
      ],
      ...['-T', String(seconds)],
    ],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: password } },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? Number.NaN);
  const processed = Number(/actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  const retried = Number(/total number of retries: (\d+)/.exec(out)?.[1] ?? 0);
  const row = {
    target,
    clients,
    tps: round(tps, 0),
    latencyMs: round(latencyMs, 2),
    ...(retries ? { retryRate: round(retried / Math.max(1, processed + retried), 3) } : {}),
  };
  console.error(
    `${target} clients=${clients}: ${row.tps}/s, latency ${row.latencyMs} ms${retries ? `, ${retried} retries` : ''}`,
  );
  return row;
}
