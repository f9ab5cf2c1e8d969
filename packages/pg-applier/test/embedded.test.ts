// The embedded PostgreSQL belongs to its node: a Unix socket in its private data directory and
// no TCP port, a superuser secret of its own (not a constant), and it stops when its node's
// process dies, also by SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive } from '../src/embedded.js';
import { startEmbeddedPostgres } from '../src/index.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('the embedded PostgreSQL', () => {
  let dir: string;
  let holder: ChildProcess | undefined;
  afterAll(async () => {
    holder?.kill('SIGKILL');
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('is reachable only through its private socket, with its own secret, and dies with its node', async () => {
    dir = await mkdtemp(join(tmpdir(), 'synod-embedded-'));
    await chmod(dir, 0o755); // as root the server runs as postgres, which must enter it
    // A node of its own: a process that starts the server, prints its URL, and waits.
    holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { startEmbeddedPostgres } = await import(${JSON.stringify(dist)});
         const db = await startEmbeddedPostgres(${JSON.stringify(join(dir, 'pg'))});
         console.log(db.url);
         setInterval(() => undefined, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const url = await new Promise<string>((resolve, reject) => {
      holder!.stdout!.on('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      holder!.on('exit', (code) => reject(new Error(`the holder exited ${code}`)));
    });
    const dataDir = join(dir, 'pg', 'data');
    expect(url).toContain(`host=${encodeURIComponent(dataDir)}`);

    const secretFile = join(dir, 'pg', 'secret');
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const secret = (await readFile(secretFile, 'utf8')).trim();
    expect(secret).not.toBe('synod');
    expect(secret.length).toBeGreaterThanOrEqual(24);
    expect((await stat(dataDir)).mode & 0o077).toBe(0); // the socket's directory: private

    const db = new pg.Client({ connectionString: url });
    await db.connect();
    expect((await db.query('SHOW listen_addresses')).rows).toEqual([{ listen_addresses: '' }]);
    await db.end();
    // The password every node used to share is refused.
    const old = new pg.Client({
      connectionString: url.replace(encodeURIComponent(secret), 'synod'),
    });
    await expect(old.connect()).rejects.toThrow(/password authentication failed/);

    const serverPid = Number(
      (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    expect(processAlive(serverPid)).toBe(true);
    holder.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (processAlive(serverPid) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(processAlive(serverPid), 'the server outlived its node').toBe(false);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);

    // Started again on the same directory: the same secret, and the server takes it.
    const again = await startEmbeddedPostgres(join(dir, 'pg'));
    try {
      expect(again.url).toBe(url);
      const db2 = new pg.Client({ connectionString: again.url });
      await db2.connect();
      expect((await db2.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await db2.end();
    } finally {
      await again.stop();
    }
  }, 60_000);

  it('starts in a directory whose path has a comma (a node of groups north,south)', async () => {
    // unix_socket_directories is a list: unquoted, this path was two directories, and the
    // server exited at once.
    const commas = await mkdtemp(join(tmpdir(), 'synod-north,south-'));
    await chmod(commas, 0o755);
    try {
      const db = await startEmbeddedPostgres(join(commas, 'a', 'postgres'));
      try {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        await client.end();
      } finally {
        await db.stop();
      }
    } finally {
      await rm(commas, { recursive: true, force: true });
    }
  }, 60_000);
});
