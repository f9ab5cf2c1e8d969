// Node runtimes of one group over a real nats-server, each with its inspector and metrics as
// `synod node start` wires them, and a viewer's connection.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeRuntime } from '@synod/node';
import { leaderKnown, type NatsServer, startNatsServer, whileLeaderMoves } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { NodeInspector, NodeMetrics, nodeSummary } from '../src/index.js';

/** Small, so a test's burst of writes overflows a batch. */
export const MAX_EVENTS = 8;

const FAST_TIMING = {
  heartbeatMs: 30,
  electionMinMs: 100,
  electionMaxMs: 200,
  phaseTimeoutMs: 150,
};

export interface InspectedNode {
  readonly runtime: NodeRuntime;
  readonly transport: Transport;
  readonly inspector: NodeInspector;
  readonly metrics: NodeMetrics;
}

export class InspectedGroup {
  readonly nodes = new Map<string, InspectedNode>();

  private constructor(
    readonly group: string,
    readonly peers: readonly string[],
    readonly server: NatsServer,
    readonly dir: string,
    /** A viewer's (or client's) own connection. */
    readonly client: Transport,
  ) {}

  static async start(group: string, peers: readonly string[]): Promise<InspectedGroup> {
    const server = await startNatsServer();
    const dir = await mkdtemp(join(tmpdir(), `synod-${group}-`));
    const client = await connectNats({ servers: server.url, name: 'viewer' });
    const g = new InspectedGroup(group, peers, server, dir, client);
    for (const id of peers) await g.startNode(id);
    return g;
  }

  async startNode(nodeId: string): Promise<InspectedNode> {
    const transport = await connectNats({ servers: this.server.url, name: nodeId });
    let runtime: NodeRuntime | undefined;
    const status = () => runtime!.status();
    const inspector = new NodeInspector({
      transport,
      group: this.group,
      nodeId,
      summary: () => nodeSummary(status()),
      flushMs: 100,
      idleMs: 800,
      maxEvents: MAX_EVENTS,
    });
    const metrics = new NodeMetrics({ group: this.group, nodeId, status, transport, watchMs: 20 });
    runtime = await NodeRuntime.start({
      leaderTiming: FAST_TIMING,
      peers: this.peers,
      group: this.group,
      nodeId,
      transport,
      dataDir: join(this.dir, nodeId),
      inspection: inspector,
      metrics,
    });
    const node = { runtime, transport, inspector, metrics };
    this.nodes.set(nodeId, node);
    return node;
  }

  /** Waits until every running node knows a leader. */
  leaderKnown(timeoutMs = 15_000): Promise<void> {
    return leaderKnown(() => [...this.nodes.values()].map((n) => n.runtime), timeoutMs);
  }

  async stopNode(nodeId: string): Promise<void> {
    const node = this.nodes.get(nodeId)!;
    this.nodes.delete(nodeId);
    node.inspector.stop();
    await node.metrics.stop();
    await node.runtime.stop();
    await node.transport.close();
  }

  /** A kv put on the group's write subject, as JSON, sent again while the leader moves. */
  put(key: string, value: string, seq: number): Promise<Record<string, unknown>> {
    const body = new TextEncoder().encode(
      JSON.stringify({
        clientId: `inspector-test-${seq}`,
        seq,
        command: { op: 'put', key, value },
      }),
    );
    return whileLeaderMoves(async () => {
      const reply = await this.client.request(`synod.${this.group}.write`, body, {
        timeoutMs: 10_000,
      });
      return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    });
  }

  async stop(): Promise<void> {
    await this.client.close();
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    await this.server.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
