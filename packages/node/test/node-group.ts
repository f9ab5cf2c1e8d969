// Node runtimes of one group over a real nats-server, for tests that stop and start them:
// each node with its own data directory, a client connection, and JSON requests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { NodeRuntime, type NodeRuntimeOptions } from '../src/index.js';

/** Short election timeouts: tests wait for leaders, not for production's patience. */
export const FAST_TIMING = {
  heartbeatMs: 30,
  electionMinMs: 100,
  electionMaxMs: 200,
  phaseTimeoutMs: 150,
};

type Extra = Partial<Omit<NodeRuntimeOptions, 'group' | 'nodeId' | 'transport' | 'dataDir'>>;

export class NodeGroup {
  readonly runtimes = new Map<string, { runtime: NodeRuntime; transport: Transport }>();

  private constructor(
    readonly group: string,
    readonly server: NatsServer,
    readonly dir: string,
    readonly client: Transport,
    readonly defaults: Extra & { peers: readonly string[] },
  ) {}

  static async start(
    group: string,
    defaults: Extra & { peers: readonly string[] },
  ): Promise<NodeGroup> {
    const server = await startNatsServer();
    const dir = await mkdtemp(join(tmpdir(), `synod-${group}-`));
    const client = await connectNats({ servers: server.url, name: 'client' });
    return new NodeGroup(group, server, dir, client, defaults);
  }

  async startNode(nodeId: string, extra: Extra = {}): Promise<NodeRuntime> {
    const transport = await connectNats({ servers: this.server.url, name: nodeId });
    const runtime = await NodeRuntime.start({
      leaderTiming: FAST_TIMING,
      ...this.defaults,
      ...extra,
      group: this.group,
      nodeId,
      transport,
      dataDir: join(this.dir, nodeId),
    });
    this.runtimes.set(nodeId, { runtime, transport });
    return runtime;
  }

  async stopNode(nodeId: string): Promise<void> {
    const entry = this.runtimes.get(nodeId)!;
    this.runtimes.delete(nodeId);
    await entry.runtime.stop();
    await entry.transport.close();
  }

  nodes(): NodeRuntime[] {
    return [...this.runtimes.values()].map((e) => e.runtime);
  }

  /** One JSON request on synod.<group>.<subject>, answered as JSON. */
  async ask(subject: string, body: unknown): Promise<Record<string, unknown>> {
    const reply = await this.client.request(
      `synod.${this.group}.${subject}`,
      new TextEncoder().encode(JSON.stringify(body)),
      { timeoutMs: 10_000 },
    );
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  }

  async stop(): Promise<void> {
    await this.client.close();
    for (const nodeId of [...this.runtimes.keys()]) await this.stopNode(nodeId);
    await this.server.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
