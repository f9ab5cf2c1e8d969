import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from '../src/index.js';
import { portAccepts, processAlive } from './helpers.js';

function psql(port: number, sql: string): string {
  return execFileSync(
    'psql',
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', sql],
    {
      encoding: 'utf8',
      env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
    },
  ).trim();
}

describe('startPostgres', () => {
  // These tests are about the throwaway server; a DATABASE_URL from the environment would skip it.
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
  });
  afterAll(() => {
    if (saved !== undefined) process.env.DATABASE_URL = saved;
  });

  it('runs a throwaway server that answers SQL, survives SIGKILL + restart, and leaves nothing behind', async () => {
    const pg = await startPostgres();
    let dataDir = '';
    try {
      expect(pg.host).toBe('127.0.0.1');
      expect([4222, 5432]).not.toContain(pg.port);
      expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
      expect(psql(pg.port, 'select 1')).toBe('1');
      expect(psql(pg.port, "select current_setting('listen_addresses')")).toBe('127.0.0.1');
      dataDir = psql(pg.port, 'show data_directory');
      expect(dataDir).toMatch(/\/synod-[^/]+\/data$/);

      const pid = pg.pid!;
      // postgres refuses root; under root the harness must have switched to the "postgres" user.
      if (process.getuid?.() === 0) expect(statSync(`/proc/${pid}`).uid).not.toBe(0);
      await pg.kill();
      expect(processAlive(pid)).toBe(false);
      await pg.restart();
      expect(pg.pid).not.toBe(pid);
      expect(psql(pg.port, 'select 2')).toBe('2');
    } finally {
      await pg.stop();
    }
    expect(await portAccepts(pg.port)).toBe(false);
    expect(existsSync(dataDir.replace(/\/data$/, ''))).toBe(false);
  });

  it('hands out the DATABASE_URL server instead of starting one', async () => {
    process.env.DATABASE_URL = 'postgres://alice@db.example:6543/app';
    try {
      const pg = await startPostgres();
      expect(pg).toMatchObject({ host: 'db.example', port: 6543, user: 'alice', database: 'app' });
      expect(pg.pid).toBeUndefined();
      await pg.stop();
      await expect(pg.kill()).rejects.toThrow(/DATABASE_URL/);
      await expect(pg.restart()).rejects.toThrow(/DATABASE_URL/);
    } finally {
      delete process.env.DATABASE_URL;
    }
  });
});
