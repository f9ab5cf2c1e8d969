// Real processes under faults: a nats-server and three `synod node start` processes.
// Minority down, majority down (NO_QUORUM, then recovery), the nats-server restarted, and the
// leader paused with SIGSTOP beyond the election timeout, checked for one leader afterwards
// and a linearizable client history.
import { SynodClient } from '@synod/client';
import { checkOperations, type KvInput, kvModel, type Operation } from '@synod/sim';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, until } from './support/process-cluster.js';

const peers = ['a', 'b', 'c'];

describe('synod node processes under faults', () => {
  let server: NatsServer;
  let group: ProcessCluster;
  const write = (i: number) =>
    new SynodClient({
      transport: group.transport,
      group: 'faults',
      clientId: `w${i}`,
      timeoutMs: 1_000,
      attempts: 20,
    }).put(`k${i}`, `v${i}`);
  const oneLeader = () => group.oneLeader();

  beforeAll(async () => {
    server = await startNatsServer();
    group = await ProcessCluster.start('faults', peers, [server.url]);
    await until('one leader', async () => (await oneLeader()) !== undefined, 20_000);
  }, 30_000);
  afterAll(async () => {
    await group.stop();
    await server.stop();
  });

  it('keeps taking writes with a minority down', async () => {
    const leader = (await oneLeader())!;
    const follower = peers.find((p) => p !== leader)!;
    await group.kill(follower);
    expect(await write(1)).toMatchObject({ result: null });
    group.startNode(follower);
    await until('the follower back', async () => (await oneLeader()) !== undefined);
  }, 30_000);

  it('answers NO_QUORUM within the timeout with a majority down, and writes again when it returns', async () => {
    const leader = (await oneLeader())!;
    const survivor = peers.find((p) => p !== leader)!;
    const down = peers.filter((p) => p !== survivor);
    for (const id of down) await group.kill(id);
    const started = Date.now();
    // Until the survivor's election timeout it still believes the dead leader, which served
    // the public write subject alone: NATS answers "no responders", and a client retries.
    const send = () =>
      group.transport.request(
        'synod.faults.write',
        new TextEncoder().encode(
          '{"clientId":"q","seq":1,"command":{"op":"put","key":"q","value":"1"}}',
        ),
        { timeoutMs: 10_000 },
      );
    let reply = await send().catch((error: Error) => error);
    while (reply instanceof Error && reply.name === 'NoRespondersError') {
      await new Promise((resolve) => setTimeout(resolve, 50));
      reply = await send().catch((error: Error) => error);
    }
    if (reply instanceof Error) throw reply;
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({
      ok: false,
      error: { code: 'NO_QUORUM' },
    });
    expect(Date.now() - started).toBeLessThan(8_000);
    for (const id of down) group.startNode(id);
    await until('a leader again', async () => (await oneLeader()) !== undefined, 20_000);
    expect(await write(2)).toMatchObject({ result: null });
  }, 60_000);

  it('resumes after the nats-server is killed and restarted', async () => {
    await server.kill('SIGKILL');
    await server.restart();
    await until('nodes reconnected and led', async () => (await oneLeader()) !== undefined, 20_000);
    expect(await write(3)).toMatchObject({ result: null });
  }, 60_000);

  it('has one leader after the leader is paused past the election timeout, and a linearizable history', async () => {
    const history: Operation<KvInput, string>[] = [];
    let stop = false;
    const clients = Array.from(
      { length: 3 },
      (_, i) =>
        new SynodClient({
          transport: group.transport,
          group: 'faults',
          clientId: `lin${i}`,
          timeoutMs: 1_000,
          attempts: 40,
        }),
    );
    const work = clients.map(async (client, i) => {
      for (let n = 0; !stop; n++) {
        const key = `x${n % 2}`;
        const call = performance.now();
        if (n % 2 === 0) {
          const value = `${i}.${n}`;
          try {
            await client.put(key, value);
            history.push({
              clientId: i,
              input: { op: 'put', key, value },
              call,
              output: '',
              return: performance.now(),
            });
          } catch {
            history.push({
              clientId: i,
              input: { op: 'put', key, value },
              call,
              output: undefined,
              return: Number.POSITIVE_INFINITY,
            });
            return;
          }
        } else {
          // Both consistent read paths: pg_paxos's strong read and the leader's linearizable one.
          const consistency = n % 2 === 0 ? 'strong' : 'linearizable';
          const answer = await client.get(key, consistency).catch(() => undefined);
          if (answer === undefined) return;
          const result = answer.result as { found: boolean; value?: string };
          history.push({
            clientId: `r${i}.${n}`,
            input: { op: 'get', key },
            call,
            output: result.found ? result.value! : '',
            return: performance.now(),
          });
        }
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    const leader = (await oneLeader())!;
    group.signal(leader, 'SIGSTOP');
    await until('a new leader among the others', async () => {
      const nodes = await group.status();
      return nodes.length === 2 && nodes.every((n) => n.leader !== null && n.leader !== leader);
    });
    await new Promise((r) => setTimeout(r, 500));
    group.signal(leader, 'SIGCONT');
    await until('one leader for all three again', async () => (await oneLeader()) !== undefined);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(work);
    expect(
      history.filter((op) => op.input.op === 'put' && op.return !== Number.POSITIVE_INFINITY)
        .length,
    ).toBeGreaterThan(10);
    expect(checkOperations(kvModel, history, { timeoutMs: 10_000 }).verdict).toBe('linearizable');
  }, 60_000);
});
