// A synod group on a 3-server NATS cluster keeps working when one NATS server is killed.
import { SynodClient } from '@synod/client';
import { type NatsCluster, startNatsCluster } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

describe('a synod group on a 3-server NATS cluster', () => {
  let nats: NatsCluster;
  let group: ProcessCluster;

  beforeAll(async () => {
    nats = await startNatsCluster(3);
    group = await ProcessCluster.start('natscluster', ['a', 'b', 'c'], nats.urls);
    await until('one leader', async () => (await group.oneLeader()) !== undefined, 20_000);
  }, 30_000);
  afterAll(async () => {
    await group.stop();
    await nats.stop();
  });

  it('keeps serving writes and reads after one NATS server is killed', async () => {
    const client = new SynodClient({
      transport: group.transport,
      group: 'natscluster',
      clientId: 'c',
      timeoutMs: 1_000,
      attempts: 30,
    });
    await client.put('before', '1');
    await nats.servers[0]!.kill('SIGKILL');
    await client.put('after', '2');
    expect((await client.get('before')).result).toEqual({ found: true, value: '1' });
    expect((await client.get('after')).result).toEqual({ found: true, value: '2' });
    await until(
      'all three nodes answering with one leader',
      async () => (await group.oneLeader()) !== undefined,
      20_000,
    );
  }, 60_000);
});
