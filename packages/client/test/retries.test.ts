import { type ClientResponse, type ClientWrite, createClientCodec } from '@synod/protocol';
import { MemoryNetwork } from '@synod/transport';
import { describe, expect, it } from 'vitest';
import { SynodClient, SynodError } from '../src/index.js';

const codec = createClientCodec();

/** A fake group on the in-memory network that answers writes with scripted responses. */
function fakeGroup(script: ClientResponse[]) {
  const network = new MemoryNetwork();
  const node = network.connect('node');
  const seen: ClientWrite[] = [];
  node.subscribe('synod.mokka.write', (m) => {
    seen.push(codec.decodeWrite(m.data));
    const response = script.shift();
    if (response !== undefined) node.publish(m.reply!, codec.encodeResponse(response));
  });
  return { transport: network.connect('client'), seen };
}

describe('SynodClient', () => {
  it('retries a write after NOT_LEADER with the same (clientId, seq), and the next write takes the next seq', async () => {
    const group = fakeGroup([
      { ok: false, error: { code: 'NOT_LEADER', message: 'ask b', leader: 'b' } },
      { ok: true, slot: 4, result: null },
      { ok: true, slot: 5, result: null },
    ]);
    const client = new SynodClient({
      transport: group.transport,
      group: 'mokka',
      clientId: 'c1',
      timeoutMs: 50,
    });
    expect(await client.put('k', 'v')).toEqual({ slot: 4, result: null });
    expect(group.seen.map((w) => `${w.clientId}/${w.seq}`)).toEqual(['c1/1', 'c1/1']);
    await client.put('k', 'w');
    expect(group.seen.at(-1)).toMatchObject({ clientId: 'c1', seq: 2 });
  });

  it('retries when a reply is lost (timeout), still with the same pair', async () => {
    const group = fakeGroup([]);
    const client = new SynodClient({
      transport: group.transport,
      group: 'mokka',
      clientId: 'c2',
      timeoutMs: 30,
      attempts: 3,
    });
    await expect(client.put('k', 'v')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(group.seen.map((w) => w.seq)).toEqual([1, 1, 1]);
  });

  it('waits at least the retry hint of a BUSY answer, then retries with the same pair', async () => {
    const group = fakeGroup([
      { ok: false, error: { code: 'BUSY', message: 'full', retryAfterMs: 120 } },
      { ok: true, slot: 9, result: null },
    ]);
    const times: number[] = [];
    group.transport.subscribe('synod.mokka.write', () => void times.push(performance.now()));
    const client = new SynodClient({
      transport: group.transport,
      group: 'mokka',
      clientId: 'c3',
      timeoutMs: 50,
    });
    expect(await client.put('k', 'v')).toEqual({ slot: 9, result: null });
    expect(group.seen.map((w) => `${w.clientId}/${w.seq}`)).toEqual(['c3/1', 'c3/1']);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(120);
  });

  it('does not retry BAD_REQUEST, and reports the code', async () => {
    const group = fakeGroup([
      { ok: false, error: { code: 'BAD_REQUEST', message: 'no' } },
      { ok: true, result: null },
    ]);
    const client = new SynodClient({ transport: group.transport, group: 'mokka', timeoutMs: 50 });
    const error = await client.put('k', 'v').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SynodError);
    expect((error as SynodError).code).toBe('BAD_REQUEST');
    expect(group.seen).toHaveLength(1);
  });

  it('says UNAVAILABLE when no node serves the group', async () => {
    const network = new MemoryNetwork();
    const client = new SynodClient({
      transport: network.connect('client'),
      group: 'nobody',
      attempts: 2,
      timeoutMs: 50,
    });
    await expect(client.get('k')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('SynodClient routing', () => {
  it("sends writes straight to the leader named by the group's status, saving a follower's forward", async () => {
    const network = new MemoryNetwork();
    const follower = network.connect('a');
    const leader = network.connect('b');
    const reached: string[] = [];
    follower.subscribe('synod.mokka.status', (m) =>
      follower.publish(m.reply!, new TextEncoder().encode('{"node":"a","leader":"b"}')),
    );
    follower.subscribe('synod.mokka.write', (m) => {
      reached.push('group subject');
      follower.publish(m.reply!, codec.encodeResponse({ ok: true, slot: 0, result: null }));
    });
    leader.subscribe('synod.mokka.node.b.write', (m) => {
      reached.push('leader subject');
      leader.publish(m.reply!, codec.encodeResponse({ ok: true, slot: 1, result: null }));
    });
    const client = new SynodClient({
      transport: network.connect('client'),
      group: 'mokka',
      timeoutMs: 200,
    });
    await client.put('k', 'v');
    await client.put('k', 'w');
    expect(reached).toEqual(['leader subject', 'leader subject']);
  });

  it('hands writes to a local node when given one, and retries with the same (clientId, seq) when it does not answer in time', async () => {
    const network = new MemoryNetwork();
    const seen: ClientWrite[] = [];
    let answer = false;
    const client = new SynodClient({
      transport: network.connect('client'),
      group: 'mokka',
      timeoutMs: 50,
      attempts: 3,
      // A node that is stopping never answers; the second time it does.
      local: (body) => {
        seen.push(codec.decodeWrite(body));
        if (!answer) {
          answer = true;
          return new Promise<Uint8Array>(() => undefined);
        }
        return Promise.resolve(codec.encodeResponse({ ok: true, slot: 9, result: null }));
      },
    });
    expect(await client.put('k', 'v')).toEqual({ slot: 9, result: null });
    expect(seen.map((w) => [w.clientId, w.seq])).toEqual([
      [client.clientId, 1],
      [client.clientId, 1],
    ]);
    const silent = new SynodClient({
      transport: network.connect('client-2'),
      group: 'mokka',
      timeoutMs: 20,
      attempts: 2,
      local: () => new Promise<Uint8Array>(() => undefined),
    });
    await expect(silent.put('k', 'v')).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});
