// The secured setup of README.md's "Security", with real processes: infra/nats/secure.conf
// (TLS with client certificates, a node user and a client user with subject permissions) on
// certificates made here with openssl, three `synod node start` processes logged in as the
// node user, and the CLI as the client user. A client cannot forge or read peer messages; a
// wrong password and a plaintext connection are refused, without showing the password.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '@synod/log';
import { makeCertificates, type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNOD, until } from './support/process-cluster.js';

const run = promisify(execFile);
const SECURE_CONF = join(import.meta.dirname, '..', 'infra', 'nats', 'secure.conf');
const GROUP = 'vault';
const PEERS = ['a', 'b', 'c'];
// The passwords secure.conf ships with: the test runs the file as it is, but for where the
// certificates are.
const NODE_PASSWORD = 'change-me-node';
const CLIENT_PASSWORD = 'change-me-client';

let dir: string;
let server: NatsServer;
let observer: Transport;
/** What the observer's own transport logged: the server's refusals arrive this way. */
const observerLog: string[] = [];
const nodes = new Map<string, { child: ChildProcess; log: string[] }>();

const tlsFlags = (role: string) => [
  '--tls-ca',
  join(dir, 'ca.pem'),
  '--tls-cert',
  join(dir, `${role}.pem`),
  '--tls-key',
  join(dir, `${role}-key.pem`),
];

/** `synod ARGS` as the client user, with flags. */
const asClient = (...args: string[]) => [
  ...args,
  '--nats',
  server.url,
  '--nats-user',
  'synod-client',
  '--nats-password',
  CLIENT_PASSWORD,
  ...tlsFlags('synod-client'),
];

function synod(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const started = performance.now();
  return run(process.execPath, [SYNOD, ...args], {
    timeout: 20_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr, ms: performance.now() - started }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
      ms: performance.now() - started,
    }),
  );
}

function startNode(id: string): void {
  const log: string[] = [];
  const child = spawn(
    process.execPath,
    [
      SYNOD,
      'node',
      'start',
      '--id',
      id,
      '--group',
      GROUP,
      '--peers',
      PEERS.join(','),
      '--data',
      join(dir, id),
      '--nats',
      server.url,
      '--nats-user',
      'synod-node',
      ...tlsFlags('synod-node'),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      // The password in the environment, where other users' `ps` does not show it.
      env: { ...process.env, LOG_LEVEL: 'warn', SYNOD_NATS_PASSWORD: NODE_PASSWORD },
    },
  );
  child.stderr!.on('data', (chunk) => void log.push(String(chunk)));
  nodes.set(id, { child, log });
}

interface Status {
  readonly node: string;
  readonly leader: string | null;
  readonly appliedThrough: number;
}

async function status(): Promise<Status[]> {
  const result = await observer.gather(`synod.${GROUP}.status`, new TextEncoder().encode('{}'), {
    timeoutMs: 300,
    map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as Status,
  });
  return [...result.replies].sort((x, y) => (x.node < y.node ? -1 : 1));
}

async function oneLeader(): Promise<string | undefined> {
  const all = await status();
  const leaders = new Set(all.map((s) => s.leader));
  return all.length === PEERS.length && leaders.size === 1 && !leaders.has(null)
    ? all[0]!.leader!
    : undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synod-security-'));
  // A CA, and the server's and each role's certificates signed by it.
  await makeCertificates(dir, {
    'nats-server': {
      extensions: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    },
    'synod-node': { extensions: 'extendedKeyUsage=clientAuth\n' },
    'synod-client': { extensions: 'extendedKeyUsage=clientAuth\n' },
  });
  const conf = join(dir, 'secure.conf');
  await writeFile(
    conf,
    (await readFile(SECURE_CONF, 'utf8')).replaceAll('/etc/synod/tls/', `${dir}/`),
  );
  // -a and -p (from startNatsServer) win over the file's listen: a free loopback port.
  server = await startNatsServer({ extraArgs: ['-c', conf] });
  for (const id of PEERS) startNode(id);
  observer = await connectNats({
    servers: server.url,
    user: 'synod-client',
    pass: CLIENT_PASSWORD,
    tls: {
      caFile: join(dir, 'ca.pem'),
      certFile: join(dir, 'synod-client.pem'),
      keyFile: join(dir, 'synod-client-key.pem'),
    },
    logger: createLogger({
      level: 'warn',
      destination: { write: (line) => void observerLog.push(line) },
    }),
  });
  await until(
    'the nodes to elect a leader over TLS',
    async () => (await oneLeader()) !== undefined,
    20_000,
  ).catch((error: unknown) => {
    const logs = [...nodes].map(([id, n]) => `${id}: ${n.log.join('').slice(-2_000)}`);
    throw new Error(`${String(error)}\n${logs.join('\n')}`);
  });
}, 60_000);

afterAll(async () => {
  await observer?.close();
  const exits = [...nodes.values()]
    .filter(({ child }) => child.exitCode === null && child.signalCode === null)
    .map(({ child }) => new Promise((resolve) => child.once('exit', resolve)));
  for (const { child } of nodes.values()) child.kill('SIGTERM');
  await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  for (const { child } of nodes.values()) child.kill('SIGKILL');
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('synod over a NATS server with TLS, users and permissions', () => {
  it('serves kv put and get to the client user, given by flags or by SYNOD_NATS_*', async () => {
    const put = await synod(asClient('kv', 'put', '--group', GROUP, 'k1', 'v1'));
    expect(put.stderr).toBe('');
    expect(put.stdout).toMatch(/^OK \(slot \d+\)/);
    // The client user may send a write straight to the leader's node subject: no detour
    // through a refused publish and a 2 s request timeout.
    expect(put.ms).toBeLessThan(2_000);
    const get = await synod(['kv', 'get', '--group', GROUP, 'k1'], {
      // A tls:// URL with the login in it; the certificates from the environment.
      SYNOD_NATS_URL: `tls://synod-client:${CLIENT_PASSWORD}@${server.url.replace('nats://', '')}`,
      SYNOD_NATS_TLS_CA: join(dir, 'ca.pem'),
      SYNOD_NATS_TLS_CERT: join(dir, 'synod-client.pem'),
      SYNOD_NATS_TLS_KEY: join(dir, 'synod-client-key.pem'),
    });
    expect(get.stderr).toBe('');
    expect(get.stdout.trim()).toBe('v1');
  });

  it('refuses a client that publishes on the peer subjects or listens to them; the group goes on', async () => {
    const leader = await oneLeader();
    expect(leader).toBeDefined();
    const before = await status();
    const forged = new TextEncoder().encode('forged prepare');
    observer.publish(`synod.${GROUP}.acceptor`, forged);
    observer.publish(`synod.${GROUP}.learn`, forged);
    observer.subscribe(`synod.${GROUP}.acceptor`, () => undefined);
    // A transaction's outcome to a group's RM is a peer message too.
    observer.publish(`synod.${GROUP}.commit.rm`, forged);
    await observer.flush();
    // nats.js hears of a refused publish asynchronously, as an error status on the
    // connection, which stays open; the transport logs it.
    await until(
      'the server to refuse all four',
      async () => {
        const said = observerLog.join('');
        return (
          ['Publish', 'Publish', 'Subscription'].every((operation, i) =>
            said.includes(
              `Permissions Violation for ${operation} to \\"synod.${GROUP}.${i === 1 ? 'learn' : 'acceptor'}\\"`,
            ),
          ) && said.includes(`Permissions Violation for Publish to \\"synod.${GROUP}.commit.rm\\"`)
        );
      },
      5_000,
    );
    expect(observer.closed).toBe(false);
    const after = await status();
    expect(after.map((s) => s.leader)).toEqual(before.map(() => leader));
    const put = await synod(asClient('kv', 'put', '--group', GROUP, 'k2', 'v2'));
    expect(put.stdout).toMatch(/^OK/);
    const progressed = await status();
    expect(progressed.map((s) => s.leader)).toEqual(before.map(() => leader));
    for (const [i, node] of progressed.entries())
      expect(node.appliedThrough).toBeGreaterThan(before[i]!.appliedThrough);
  });

  it('refuses a wrong password with one line that does not show it', async () => {
    const result = await synod(
      asClient('kv', 'get', '--group', GROUP, 'k1').map((arg) =>
        arg === CLIENT_PASSWORD ? 'wrong-hunter2' : arg,
      ),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `synod: cannot connect to NATS at ${server.url}: Authorization Violation\n`,
    );
    expect(result.stderr).not.toMatch(/hunter2/);
  });

  it('refuses a client without a certificate signed by the CA', async () => {
    const result = await synod([
      'kv',
      'get',
      '--group',
      GROUP,
      'k1',
      '--nats',
      `nats://synod-client:${CLIENT_PASSWORD}@${server.url.replace('nats://', '')}`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^synod: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: /);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toContain(CLIENT_PASSWORD);
  });

  it('refuses a plaintext connection', async () => {
    const socket = tcpConnect(server.port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += String(chunk);
      if (received.startsWith('INFO ') && received.includes('\r\n') && !socket.destroyed)
        socket.write(
          `CONNECT {"user":"synod-client","pass":"${CLIENT_PASSWORD}","tls_required":false}\r\nPING\r\n`,
        );
    });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('close', resolve));
    expect(received).toMatch(/"tls_required":true/);
    expect(received).not.toMatch(/PONG/);
  });
});
