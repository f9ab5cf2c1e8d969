// The client API as any NATS client sees it: JSON requests on synod.<group>.write and .read,
// served by three node runtimes over a real nats-server, each with its own fsynced store.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer, whileLeaderMoves } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRuntime } from '../src/index.js';

const peers = ['a', 'b', 'c'];
const fast = { heartbeatMs: 30, electionMinMs: 100, electionMaxMs: 200, phaseTimeoutMs: 150 };

describe('client API over NATS (JSON contract)', () => {
  let server: NatsServer;
  let dir: string;
  let client: Transport;
  const runtimes: NodeRuntime[] = [];

  /**
   * One request, retried as a client would (same body: a write keeps its clientId and seq)
   * while a leader change answers NOT_LEADER or NO_QUORUM: the short election timeout used
   * here can pass on a busy machine.
   */
  const ask = (subject: string, body: string): Promise<Record<string, unknown>> =>
    whileLeaderMoves(async () => {
      const reply = await client.request(`synod.mokka.${subject}`, new TextEncoder().encode(body), {
        timeoutMs: 10_000,
      });
      return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    });

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-node-'));
    for (const nodeId of peers) {
      const transport = await connectNats({ servers: server.url, name: nodeId });
      runtimes.push(
        await NodeRuntime.start({
          group: 'mokka',
          nodeId,
          peers,
          transport,
          dataDir: join(dir, nodeId),
          leaderTiming: fast,
        }),
      );
    }
    client = await connectNats({ servers: server.url, name: 'client' });
    const deadline = Date.now() + 10_000;
    while (!runtimes.every((r) => r.leader !== undefined && r.leader === runtimes[0]!.leader)) {
      if (Date.now() > deadline) throw new Error('no leader elected');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  afterAll(async () => {
    await client.close();
    for (const runtime of runtimes) await runtime.stop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts and reads back a value: {"ok":true,"slot":N,"result":...}', async () => {
    const put = await ask(
      'write',
      '{"clientId":"c1","seq":1,"command":{"op":"put","key":"k","value":"v"}}',
    );
    expect(put).toMatchObject({ ok: true, result: null });
    expect(typeof put.slot).toBe('number');
    const get = await ask(
      'read',
      '{"command":{"op":"get","key":"k"},"consistency":"linearizable"}',
    );
    expect(get).toMatchObject({ ok: true, result: { found: true, value: 'v' } });
    expect(
      await ask('read', '{"command":{"op":"get","key":"nothing"},"consistency":"strong"}'),
    ).toMatchObject({ ok: true, result: { found: false } });
  });

  it('compare-and-set swaps only on a match, and delete reports what it found', async () => {
    expect(
      await ask(
        'write',
        '{"clientId":"c2","seq":1,"command":{"op":"cas","key":"k","expect":"v","value":"w"}}',
      ),
    ).toMatchObject({ ok: true, result: { swapped: true } });
    expect(
      await ask(
        'write',
        '{"clientId":"c2","seq":2,"command":{"op":"cas","key":"k","expect":"v","value":"x"}}',
      ),
    ).toMatchObject({ ok: true, result: { swapped: false } });
    expect(
      await ask('write', '{"clientId":"c2","seq":3,"command":{"op":"delete","key":"k"}}'),
    ).toMatchObject({ ok: true, result: { found: true } });
  });

  it('applies a retried write once and gives the retry the first result', async () => {
    await ask('write', '{"clientId":"c3","seq":1,"command":{"op":"put","key":"r","value":"old"}}');
    const cas =
      '{"clientId":"c3","seq":2,"command":{"op":"cas","key":"r","expect":"old","value":"new"}}';
    const first = await ask('write', cas);
    const retry = await ask('write', cas);
    expect(first).toMatchObject({ ok: true, result: { swapped: true } });
    // Applied again, the cas would not match any more and report swapped: false.
    expect(retry).toMatchObject({ ok: true, result: { swapped: true } });
  });

  it('answers malformed requests and unknown operations with a JSON BAD_REQUEST, and keeps serving', async () => {
    expect(await ask('write', '{"clientId":"c4","seq":-5,"command":{"op":"put"}}')).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    expect(await ask('write', '{not json')).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    expect(
      await ask('write', '{"clientId":"c4","seq":1,"command":{"op":"explode","key":"k"}}'),
    ).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', message: expect.stringMatching(/unknown write operation/) },
    });
    expect(
      await ask(
        'write',
        '{"clientId":"c4","seq":2,"command":{"op":"put","key":"still","value":"up"}}',
      ),
    ).toMatchObject({ ok: true });
  });

  it('takes a write from its own process (NodeRuntime.write) as one from NATS, on a follower too', async () => {
    const local = async (runtime: NodeRuntime, body: string) =>
      JSON.parse(
        new TextDecoder().decode(await runtime.write(new TextEncoder().encode(body))),
      ) as Record<string, unknown>;
    const leader = runtimes.find((r) => r.leader === r.nodeId)!;
    const follower = runtimes.find((r) => r.leader !== r.nodeId)!;
    // A follower forwards it to the leader over NATS, as it would a write it got from NATS.
    const put = '{"clientId":"c9","seq":1,"command":{"op":"put","key":"local","value":"v"}}';
    const answer = await whileLeaderMoves(() => local(follower, put));
    expect(answer).toMatchObject({ ok: true, slot: expect.any(Number) });
    // Sent again (a retry), through the leader this time: the first result again.
    expect(await whileLeaderMoves(() => local(leader, put))).toMatchObject({
      ok: true,
      result: answer.result,
    });
    expect(await local(leader, '{not json')).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    expect(
      await ask('read', '{"command":{"op":"get","key":"local"},"consistency":"strong"}'),
    ).toMatchObject({ ok: true, result: { found: true, value: 'v' } });
  });

  it('takes concurrent writes through any node, in one order, and every node applies them all', async () => {
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        ask(
          'write',
          `{"clientId":"w${i}","seq":1,"command":{"op":"put","key":"key${i}","value":"${i}"}}`,
        ),
      ),
    );
    expect(replies.every((r) => r.ok === true)).toBe(true);
    const top = Math.max(...replies.map((r) => r.slot as number));
    const deadline = Date.now() + 5_000;
    while (!runtimes.every((r) => r.appliedThrough >= top) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(runtimes.map((r) => r.appliedThrough >= top)).toEqual([true, true, true]);
    // Writes that arrived together shared slots (batching): fewer slots than writes.
    expect(new Set(replies.map((r) => r.slot)).size).toBeLessThan(60);
  });

  it('refuses a write over the size limit, and cuts batches of big writes to fit one message', async () => {
    const big = 'x'.repeat(300 * 1024);
    const refused = await ask(
      'write',
      JSON.stringify({ clientId: 'big', seq: 1, command: { op: 'put', key: 'b', value: big } }),
    );
    expect(refused).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(String((refused.error as { message: string }).message)).toMatch(/limit is 262144 bytes/);
    // Eight writes of 200 KB at once: one slot for all would be a 1.6 MB accept message.
    const value = 'y'.repeat(200 * 1024);
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ask(
          'write',
          JSON.stringify({
            clientId: `big${i}`,
            seq: 1,
            command: { op: 'put', key: `b${i}`, value },
          }),
        ),
      ),
    );
    for (const reply of replies) expect(reply).toMatchObject({ ok: true });
    expect(new Set(replies.map((r) => r.slot)).size).toBeGreaterThanOrEqual(4);
  }, 30_000);

  it('serves a linearizable read on any node through the leader, at the slot it confirmed, writing no slot', async () => {
    const put = await ask(
      'write',
      '{"clientId":"lin","seq":1,"command":{"op":"put","key":"lin","value":"one"}}',
    );
    expect(put).toMatchObject({ ok: true });
    for (const nodeId of peers) {
      // Each node's own read subject: a follower must forward to the leader.
      const answer = await ask(
        `node.${nodeId}.read`,
        '{"command":{"op":"get","key":"lin"},"consistency":"linearizable"}',
      );
      expect(answer, nodeId).toMatchObject({ ok: true, result: { found: true, value: 'one' } });
      // ReadIndex: the leader confirmed it leads without a log slot, and served the read at
      // the slot it had delivered, the put's (nothing was written since).
      expect(answer.slot, nodeId).toBe(put.slot);
    }
  });
});
