// Several groups of one node process share one NATS connection (synod node start --group
// G1,G2): each group's runtime gets a TransportLease of it, so stopping one group's runtime
// leaves the connection to the others (a runtime closes its transport as it stops).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, waitFor } from '@synod/testkit';
import { connectNats, type Transport, TransportLease } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRuntime } from '../src/index.js';
import { FAST_TIMING } from './node-group.js';

describe('two groups of one process over leases of one connection', () => {
  let server: NatsServer;
  let shared: Transport;
  let client: Transport;
  let dir: string;
  const runtimes: NodeRuntime[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    shared = await connectNats({ servers: server.url, name: 'node-a' });
    client = await connectNats({ servers: server.url, name: 'client' });
    dir = await mkdtemp(join(tmpdir(), 'synod-lease-'));
    for (const group of ['north', 'south'])
      runtimes.push(
        await NodeRuntime.start({
          group,
          nodeId: 'a',
          peers: ['a'],
          transport: new TransportLease(shared),
          dataDir: join(dir, group),
          leaderTiming: FAST_TIMING,
        }),
      );
    await waitFor('both groups lead', async () => runtimes.every((r) => r.leader === 'a'), 10_000);
  });
  afterAll(async () => {
    for (const r of runtimes) await r.stop();
    await client?.close();
    await shared?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("stopping one group's runtime leaves the other serving on the shared connection", async () => {
    await runtimes[0]!.stop();
    expect(shared.closed).toBe(false);
    const reply = await client.request(
      'synod.south.write',
      new TextEncoder().encode(
        JSON.stringify({ clientId: 'c', seq: 1, command: { op: 'put', key: 'k', value: 'v' } }),
      ),
      { timeoutMs: 5_000 },
    );
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ ok: true });
  });
});
