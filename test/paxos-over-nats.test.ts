// Seed 001 over real parts: three hosts of the same machines the simulator runs, talking over
// a real nats-server, each acceptor on a real file store with fsync; then one node restarts
// from its data file and must still give the chosen value.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Disk, GroupHost } from '@synod/host';
import type { StoreRecord } from '@synod/protocol';
import { type AcceptorStore, openFileStore } from '@synod/storage';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, realScheduler } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const peers = ['a', 'b', 'c'];
const text = (v: Uint8Array): string => new TextDecoder().decode(v);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A GroupHost disk on a real store: done() runs once the records are fsynced. */
function storeDisk(store: AcceptorStore): Disk {
  return {
    durable: store.recovered,
    write: (records: readonly StoreRecord[], done: () => void) => {
      store.append(records).then(done, (error: unknown) => {
        throw error;
      });
    },
  };
}

async function startHost(
  server: NatsServer,
  dir: string,
  nodeId: string,
): Promise<{ host: GroupHost; store: AcceptorStore }> {
  const store = await openFileStore(join(dir, `${nodeId}.log`));
  const transport = await connectNats({ servers: server.url, name: nodeId });
  const host = new GroupHost({
    group: 'mokka',
    nodeId,
    founders: peers,
    transport,
    scheduler: realScheduler,
    disk: storeDisk(store),
    seed: peers.indexOf(nodeId) + 1,
  });
  await transport.flush();
  return { host, store };
}

const call = <T>(run: (done: (value: T) => void) => void): Promise<T> =>
  new Promise((resolve) => run(resolve));

describe('paxos(k, v) and the log over a real nats-server with durable acceptors', () => {
  let server: NatsServer;
  let dir: string;
  const nodes = new Map<string, { host: GroupHost; store: AcceptorStore }>();

  beforeAll(async () => {
    server = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'synod-paxos-'));
    for (const id of peers) nodes.set(id, await startHost(server, dir, id));
  });
  afterAll(async () => {
    for (const { host, store } of nodes.values()) {
      host.stop();
      await store.close();
    }
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives every caller the same value for a key: paxos('leader', 'primary = node-X') from three nodes at once", async () => {
    const answers = await Promise.all(
      peers.map((id) =>
        call<Uint8Array>((done) =>
          nodes.get(id)!.host.paxos('leader', bytes(`primary = node-${id}`), done),
        ),
      ),
    );
    const values = new Set(answers.map(text));
    expect(values.size).toBe(1);
    expect([...values][0]).toMatch(/^primary = node-[abc]$/);
  });

  it('appends to the log from every node and reads them back in one order everywhere', async () => {
    const slots = await Promise.all(
      peers.map((id) =>
        call<number>((done) => nodes.get(id)!.host.append(bytes(`write from ${id}`), done)),
      ),
    );
    expect(new Set(slots).size).toBe(3);
    const through = await Promise.all(
      peers.map((id) => call<number>((done) => nodes.get(id)!.host.read(done))),
    );
    const logs = peers.map((id) =>
      [...nodes.get(id)!.host.log.entries()]
        .filter(([slot]) => slot <= Math.max(...slots))
        .map(([slot, v]) => `${slot}:${text(v)}`),
    );
    expect(logs[1]).toEqual(logs[0]);
    expect(logs[2]).toEqual(logs[0]);
    expect(Math.min(...through)).toBeGreaterThanOrEqual(Math.max(...slots));
  });

  it('a node restarted from its data file still answers paxos with the chosen value', async () => {
    const before = await call<Uint8Array>((done) =>
      nodes.get('a')!.host.paxos('leader', bytes('ignored'), done),
    );
    const old = nodes.get('a')!;
    old.host.stop();
    await old.store.close();
    const restarted = await startHost(server, dir, 'a');
    nodes.set('a', restarted);
    expect(restarted.store.recovered.some((r) => r.kind === 'accept' || r.kind === 'promise')).toBe(
      true,
    );
    const after = await call<Uint8Array>((done) =>
      restarted.host.paxos('leader', bytes('primary = node-z'), done),
    );
    expect(text(after)).toBe(text(before));
  });
});
