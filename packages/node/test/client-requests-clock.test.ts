// The client path on a virtual clock: a follower forwards to the leader, routes again when the
// leader does not answer, and gives up at the request timeout, all driven by a scheduler the
// test advances by hand (no real waiting).
import {
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  groupSubjects,
} from '@synod/protocol';
import { MemoryNetwork, type TransportMessage, VirtualScheduler } from '@synod/transport';
import { describe, expect, it } from 'vitest';
import { ClientRequests } from '../src/client-requests.js';
import { resolveRuntimeOptions } from '../src/runtime-options.js';

const TIMEOUT_MS = 3_000;
const codec = createClientCodec();
const body = codec.encodeWrite(
  { clientId: 'c1', seq: 1, command: { op: 'put', key: 'k', value: 'v' } },
  'json',
);

/** Node b's client API, with a connection of node a's standing in for the leader. */
function setup(leader: string | undefined) {
  const scheduler = new VirtualScheduler();
  const network = new MemoryNetwork({ scheduler });
  const host = {
    leader,
    maySpeakFor: () => true,
    paxos: () => undefined,
    read: () => () => undefined,
    leaderRead: () => () => undefined,
  };
  const localWrites: ClientWrite[] = [];
  const requests = new ClientRequests(
    resolveRuntimeOptions({
      group: 'g',
      nodeId: 'b',
      peers: ['a', 'b', 'c'],
      transport: network.connect('b'),
      dataDir: 'unused',
      requestTimeoutMs: TIMEOUT_MS,
    }),
    {
      host,
      batcher: { write: (write) => void localWrites.push(write), read: () => undefined },
      memberChanges: { change: () => undefined },
      queue: undefined,
      scheduler,
      readState: () => null,
      appliedThrough: () => -1,
      stopped: () => false,
    },
  );
  const leaderTransport = network.connect('a');
  const forwarded: TransportMessage[] = [];
  leaderTransport.subscribe(`${groupSubjects('g').node('a')}.>`, (m) => {
    forwarded.push(m);
  });
  const answers: ClientResponse[] = [];
  const send = (): void =>
    void requests.write(body).then((bytes) => answers.push(codec.decodeResponse(bytes)));
  const answerAsLeader = (m: TransportMessage, response: ClientResponse): void =>
    leaderTransport.publish(m.reply!, codec.encodeResponse(response, 'json'));

  /** Moves the clock to `at` a millisecond at a time, letting promise callbacks run between. */
  const advanceTo = async (at: number): Promise<void> => {
    for (let t = scheduler.now(); t <= at; t++) {
      do await new Promise((resolve) => setImmediate(resolve));
      while (scheduler.runUntil(t) > 0);
    }
  };
  return {
    host,
    requests,
    network,
    send,
    answers,
    forwarded,
    localWrites,
    answerAsLeader,
    advanceTo,
  };
}

describe('the client path on an injected clock', () => {
  it('forwards a write taken by a follower to the leader, and relays its answer', async () => {
    const t = setup('a');
    t.send();
    await t.advanceTo(0);
    expect(t.forwarded).toHaveLength(1);
    const [forward] = t.forwarded;
    expect(forward?.subject).toBe('synod.g.node.a.write');
    expect(forward?.headers?.['synod-hops']).toBe('1');
    expect(forward?.data).toEqual(body);
    expect(t.localWrites).toEqual([]);
    expect(t.answers).toEqual([]);
    t.answerAsLeader(forward!, { ok: true, slot: 7, result: 'stored' });
    await t.advanceTo(0);
    expect(t.answers).toEqual([{ ok: true, slot: 7, result: 'stored' }]);
  });

  it('sends a forward the leader does not answer again, once the forward times out', async () => {
    const t = setup('a');
    t.send();
    await t.advanceTo(1_049);
    expect(t.forwarded).toHaveLength(1);
    await t.advanceTo(1_050); // a forward waits 1,000 ms, then routes again after 50 ms
    expect(t.forwarded).toHaveLength(2);
    expect(t.forwarded[1]?.data).toEqual(body);
    expect(t.answers).toEqual([]);
    t.answerAsLeader(t.forwarded[1]!, { ok: true, slot: 3, result: null });
    await t.advanceTo(1_051);
    expect(t.answers).toEqual([{ ok: true, slot: 3, result: null }]);
  });

  it('answers NO_QUORUM when the leader is silent until requestTimeoutMs, and not before', async () => {
    const t = setup('a');
    t.send();
    await t.advanceTo(TIMEOUT_MS - 1);
    expect(t.answers).toEqual([]);
    expect(t.forwarded).toHaveLength(3);
    await t.advanceTo(TIMEOUT_MS);
    expect(t.answers).toMatchObject([{ ok: false, error: { code: 'NO_QUORUM' } }]);
  });

  it('waits for a leader when none is known, and answers NO_QUORUM at requestTimeoutMs', async () => {
    const t = setup(undefined);
    t.send();
    await t.advanceTo(TIMEOUT_MS - 1);
    expect(t.answers).toEqual([]);
    expect(t.forwarded).toEqual([]);
    await t.advanceTo(TIMEOUT_MS);
    expect(t.answers).toMatchObject([{ ok: false, error: { code: 'NO_QUORUM' } }]);
  });

  it('serves the public write subject only while it leads or knows no leader', async () => {
    const t = setup(undefined);
    const client = t.network.connect('client');
    const publicWrite = (): Promise<unknown> =>
      client.request(groupSubjects('g').write, body, { timeoutMs: 100 }).then(
        () => 'answered',
        (error: Error) => error.name,
      );
    // Another node leads: NATS has nobody here to hand the write to.
    t.host.leader = 'a';
    t.requests.leadershipChanged('a');
    let outcome = publicWrite();
    await t.advanceTo(1);
    expect(await outcome).toBe('NoRespondersError');
    // This node leads: the write is its own to take.
    t.host.leader = 'b';
    t.requests.leadershipChanged('b');
    outcome = publicWrite();
    await t.advanceTo(2);
    expect(t.localWrites).toHaveLength(1);
    // Nobody known: every node serves it again, and holds the write until a leader is known.
    t.host.leader = undefined;
    t.requests.leadershipChanged(undefined);
    outcome = publicWrite();
    await t.advanceTo(200);
    expect(await outcome).toBe('TransportTimeoutError');
    expect(t.localWrites).toHaveLength(1);
  });

  it('forwards as soon as a leader is known', async () => {
    const t = setup(undefined);
    t.send();
    await t.advanceTo(500);
    t.host.leader = 'a';
    await t.advanceTo(519);
    expect(t.forwarded).toEqual([]);
    await t.advanceTo(520); // without a leader, the follower looks again every 20 ms
    expect(t.forwarded).toHaveLength(1);
  });
});
