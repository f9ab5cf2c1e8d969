// How each system is driven in the consensus benchmark: through the client its users take.
// etcd through its gRPC client (npm etcd3) connected to the leader alone; synod through
// SynodClient, and through its public JSON subject from a plain NATS client with no synod
// code. The etcd JSON gateway stays only as a reference: no etcd user takes that path.
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { SynodClient } from '@synod/client';
import { connectNats } from '@synod/transport';
import { Etcd3 } from 'etcd3';
import { key, VALUE } from './put-load.js';

export type SystemId = 'etcd' | 'etcd-gateway' | 'synod-client' | 'synod-nats';
export type OpKind = 'put' | 'read';

/** What one load generator process runs; passed to it as JSON on its command line. */
export interface LoadSpec {
  readonly system: SystemId;
  readonly op: OpKind;
  readonly clients: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** etcd: the leader's client URL; gateway: every member's; synod: the NATS URL. */
  readonly endpoints: readonly string[];
  readonly group: string;
}

export interface Driver {
  /** One operation of worker `worker`, its `n`-th; resolves once the system answered. */
  run(worker: number, n: number): Promise<void>;
  /**
   * Requests sent again because the system asked to (BUSY, NOT_LEADER), where the driver can
   * count them: etcd3 and SynodClient retry inside, out of sight.
   */
  retries?(): number;
  close(): Promise<void>;
}

/**
 * Reads ask for keys the put rows wrote before them (each worker writes its keys 0, 1, ...
 * from the start of every row), so both systems find a value and send it back.
 */
const readKey = (worker: number, n: number): string => key(worker, n % 8);

export async function connectDriver(spec: LoadSpec): Promise<Driver> {
  switch (spec.system) {
    case 'etcd':
      return etcdGrpc(spec);
    case 'etcd-gateway':
      return etcdGateway(spec);
    case 'synod-client':
      return synodClient(spec);
    case 'synod-nats':
      return synodPlainNats(spec);
  }
}

/** etcd3's client with its defaults: one gRPC channel to the one host it is given. */
async function etcdGrpc(spec: LoadSpec): Promise<Driver> {
  const client = new Etcd3({ hosts: spec.endpoints[0]! });
  // The first call opens the channel: do it before the clock starts.
  await client.maintenance.status();
  return {
    run: async (worker, n) => {
      if (spec.op === 'put') await client.put(key(worker, n)).value(VALUE).exec();
      // etcd's default range is linearizable (serializable: false): a ReadIndex round.
      else if ((await client.get(readKey(worker, n)).string()) === null)
        throw new Error(`etcd: ${readKey(worker, n)} not found`);
    },
    close: async () => client.close(),
  };
}

/** etcd's grpc-gateway from Node's fetch, spread over the members (the old benchmark's path). */
async function etcdGateway(spec: LoadSpec): Promise<Driver> {
  if (spec.op !== 'put') throw new Error('the etcd gateway row measures puts only');
  return {
    run: async (worker, n) => {
      const response = await fetch(`${spec.endpoints[worker % spec.endpoints.length]}/v3/kv/put`, {
        method: 'POST',
        body: JSON.stringify({
          key: Buffer.from(key(worker, n)).toString('base64'),
          value: Buffer.from(VALUE).toString('base64'),
        }),
        headers: { 'content-type': 'application/json' },
      });
      if (!response.ok) throw new Error(`etcd gateway put failed: ${response.status}`);
      await response.arrayBuffer();
    },
    close: async () => undefined,
  };
}

/** One SynodClient per worker over one NATS connection, as an application would hold them. */
async function synodClient(spec: LoadSpec): Promise<Driver> {
  const transport = await connectNats({ servers: spec.endpoints[0]!, name: 'bench-load' });
  // A fresh clientId per process: (clientId, seq) from an earlier row would be duplicates.
  const prefix = randomUUID();
  const clients = Array.from(
    { length: spec.clients },
    (_, i) =>
      new SynodClient({
        transport,
        group: spec.group,
        clientId: `${prefix}-${i}`,
        timeoutMs: 5_000,
      }),
  );
  return {
    run: async (worker, n) => {
      const client = clients[worker]!;
      if (spec.op === 'put') await client.put(key(worker, n), VALUE);
      else {
        const answer = await client.get(readKey(worker, n), 'linearizable');
        if ((answer.result as { found?: boolean }).found !== true)
          throw new Error(`synod: ${readKey(worker, n)} not found`);
      }
    },
    close: () => transport.close(),
  };
}

interface JsonAnswer {
  readonly ok: boolean;
  readonly error?: { readonly code: string; readonly message: string; retryAfterMs?: number };
}

/**
 * The public JSON contract from a plain NATS client (nats.js request(): one shared muxed
 * inbox). `synod.<group>.write` is a queue group any node answers; a follower forwards to the
 * leader. Does what the contract asks of a caller: own clientId, seq counting up, and on BUSY
 * or NOT_LEADER the same (clientId, seq) again after a pause.
 */
async function synodPlainNats(spec: LoadSpec): Promise<Driver> {
  if (spec.op !== 'put') throw new Error('the plain NATS row measures puts only');
  const nc = await connect({ servers: spec.endpoints[0]!, name: 'bench-plain-nats' });
  const subject = `synod.${spec.group}.write`;
  const prefix = randomUUID();
  const seqs = new Array<number>(spec.clients).fill(0);
  const encoder = new TextEncoder();
  let retries = 0;
  return {
    run: async (worker, n) => {
      seqs[worker] = seqs[worker]! + 1;
      const body = encoder.encode(
        JSON.stringify({
          clientId: `${prefix}-${worker}`,
          seq: seqs[worker],
          command: { op: 'put', key: key(worker, n), value: VALUE },
        }),
      );
      for (let attempt = 1; ; attempt++) {
        const answer = (await nc.request(subject, body, { timeout: 5_000 })).json<JsonAnswer>();
        if (answer.ok) return;
        const code = answer.error?.code;
        if (attempt >= 8 || (code !== 'BUSY' && code !== 'NOT_LEADER' && code !== 'NO_QUORUM'))
          throw new Error(`synod write failed: ${code}: ${answer.error?.message}`);
        retries += 1;
        const pauseMs = answer.error?.retryAfterMs ?? 25 * attempt;
        await new Promise((resolve) => setTimeout(resolve, pauseMs * (1 + Math.random())));
      }
    },
    retries: () => retries,
    close: () => nc.close(),
  };
}
