import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { SynodClient } from '@synod/client';
import { NodeRuntime } from '@synod/node';
import { connectNats, freeLoopbackPort, MemoryNetwork, type Transport } from '@synod/transport';
import { type SqlDemo, sqlDemo } from './sql-demo.js';
import { statusTable } from './status-table.js';

const peers = ['a', 'b', 'c'];
const GROUP = 'mokka';

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir !== '' && existsSync(join(dir, binary))) return join(dir, binary);
  return undefined;
}

async function startNats(binary: string): Promise<{ url: string; process: ChildProcess }> {
  const port = await freeLoopbackPort();
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    try {
      await (await connectNats({ servers: url, connection: { timeout: 200 } })).close();
      return { url, process: child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`nats-server did not start on ${url}`);
}

/**
 * `synod demo`: a group of three nodes on this machine, a few writes and reads, its status;
 * then it keeps running until Ctrl-C (or, with --once, stops at once).
 */
export async function demo(once: boolean, withSql = true): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'synod-demo-'));
  const binary = onPath('nats-server');
  const nats = binary === undefined ? undefined : await startNats(binary);
  const network = new MemoryNetwork();
  const connect = (name: string): Promise<Transport> =>
    nats === undefined
      ? Promise.resolve(network.connect(name))
      : connectNats({ servers: nats.url, name });
  console.log(
    nats === undefined
      ? 'nats-server is not on PATH: using the in-memory transport (apt-get install nats-server for the real thing)'
      : `nats-server on ${nats.url}`,
  );
  const nodes: NodeRuntime[] = [];
  const transports: Transport[] = [];
  let sql: SqlDemo | undefined;
  const cleanup = async (): Promise<void> => {
    await sql?.stop();
    for (const node of nodes) await node.stop();
    for (const t of transports) await t.close();
    nats?.process.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const nodeId of peers) {
      const transport = await connect(nodeId);
      transports.push(transport);
      nodes.push(
        await NodeRuntime.start({
          group: GROUP,
          nodeId,
          peers,
          transport,
          dataDir: join(dir, nodeId),
        }),
      );
    }
    console.log(`group ${GROUP}: nodes ${peers.join(', ')} (data in ${dir})`);
    while (!nodes.every((n) => n.leader !== undefined && n.leader === nodes[0]!.leader))
      await new Promise((r) => setTimeout(r, 20));
    console.log(`leader elected: ${nodes[0]!.leader}\n`);

    const clientTransport = await connect('demo-client');
    transports.push(clientTransport);
    const client = new SynodClient({ transport: clientTransport, group: GROUP, clientId: 'demo' });
    const show = (what: string, outcome: string): void =>
      console.log(`${what.padEnd(38)} -> ${outcome}`);
    for (const [key, value] of [
      ['x', '3'],
      ['y', '3'],
    ] as const)
      show(`put ${key}=${value}`, `slot ${(await client.put(key, value)).slot}`);
    show('cas x 3 -> 30', JSON.stringify((await client.cas('x', '3', '30')).result));
    show('get x (strong)', JSON.stringify((await client.get('x', 'strong')).result));
    show("paxos('leader', 'primary = node-a')", await client.paxos('leader', 'primary = node-a'));
    show(
      "paxos('leader', 'primary = node-b')",
      `${await client.paxos('leader', 'primary = node-b')}  (the chosen value stays)\n`,
    );
    console.log(statusTable(nodes.map((n) => n.status())));
    if (withSql) {
      try {
        sql = await sqlDemo(dir, connect, show);
      } catch (error) {
        console.log(
          `\nSQL part skipped: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    if (!once) {
      // Listen for Ctrl-C before saying so: a signal sent on reading the line must find us ready.
      const stopped = new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      });
      console.log(
        nats === undefined
          ? '\nrunning; Ctrl-C stops'
          : `\nrunning; try: npx synod kv get --group ${GROUP} --nats ${nats.url} x   (Ctrl-C stops)`,
      );
      await stopped;
    }
  } finally {
    await cleanup();
    console.log('stopped');
  }
}
