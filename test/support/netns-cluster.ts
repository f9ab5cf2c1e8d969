// A synod group whose nodes live on separate "hosts": each network namespace of a NetnsNet
// holds one nats-server of a 3-server NATS cluster and the one `synod node start` process
// connected to it, so cutting a namespace's links cuts that node and its server off together.
// The test process connects to each namespace's nats-server as a client attached to that side
// (loopback -> Unix socket -> the namespace's loopback, through netns-relay.mjs): a client
// of the minority side reaches only what its server reaches.
import type { ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findBinary, waitFor } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { NetnsNet } from './netns.js';
import { type NodeStatus, SYNOD } from './process-cluster.js';

const RELAY = fileURLToPath(new URL('./netns-relay.mjs', import.meta.url));
// Ports inside the namespaces: each namespace has its own, so fixed numbers never collide with
// anything on the machine (and none is 4222).
const CLIENT_PORT = 14222;
const CLUSTER_PORT = 16222;
const PROXY_PORT = 17222;
const HTTP_PORT = 18222;

/** A relay's stdin and the answers it prints, one per command. */
interface Relay {
  readonly child: ChildProcess;
  readonly answers: (() => void)[];
}

export class NetnsCluster {
  readonly nodes = new Map<number, ChildProcess>();
  readonly #relays: Relay[] = [];
  readonly #forwarders: Server[] = [];
  /** The root-namespace loopback port forwarding to node i's client and monitor ports. */
  readonly #clientPorts: number[] = [];
  readonly #httpPorts: number[] = [];
  /** One NATS connection per namespace, index node - 1. */
  readonly transports: Transport[] = [];

  private constructor(
    readonly group: string,
    readonly net: NetnsNet,
    readonly dir: string,
  ) {}

  get size(): number {
    return this.net.size;
  }

  /** Node i's synod id: a, b, c, ... */
  id(node: number): string {
    return String.fromCharCode(96 + node);
  }

  node(id: string): number {
    return id.charCodeAt(0) - 96;
  }

  static async start(group: string, size = 3): Promise<NetnsCluster> {
    const net = await NetnsNet.create(size);
    const dir = await mkdtemp(join(tmpdir(), `synpart-${group}-`));
    const cluster = new NetnsCluster(group, net, dir);
    try {
      for (let i = 1; i <= size; i++) await cluster.#startHost(i);
      await cluster.waitForRoutes(20_000);
      for (let i = 1; i <= size; i++)
        cluster.transports.push(
          await connectNats({
            servers: [`nats://127.0.0.1:${cluster.#clientPorts[i - 1]}`],
            name: `partition-test-n${i}`,
            // Stay attached to this side: the other servers' URLs are not reachable from here.
            connection: { ignoreClusterUpdates: true },
          }),
        );
      for (let i = 1; i <= size; i++) cluster.startNode(i);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Node i's relay, nats-server, and the root-side forwarders to them. */
  async #startHost(i: number): Promise<void> {
    const { net, dir } = this;
    const socket = (what: string) => join(dir, `n${i}-${what}.sock`);
    const child = net.spawn(
      i,
      process.execPath,
      [
        RELAY,
        JSON.stringify({
          ns: net.ns(i),
          expose: [
            { socket: socket('client'), port: CLIENT_PORT },
            { socket: socket('http'), port: HTTP_PORT },
          ],
          proxy: { listenPort: PROXY_PORT, targetPort: CLUSTER_PORT },
        }),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const relay: Relay = { child, answers: [] };
    this.#relays.push(relay);
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', () => {
        lines.on('line', () => relay.answers.shift()?.());
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`relay of n${i} exited (${code})`)));
    });

    const peers = Array.from({ length: this.size }, (_, j) => j + 1).filter((j) => j !== i);
    const config = join(dir, `n${i}.conf`);
    // Pings every second, three missed: a black-holed route is dropped within ~4 s and
    // redialled every second (the default, 2 minutes, would keep a dead route for minutes).
    await writeFile(
      config,
      [
        `server_name: "${net.ns(i)}"`,
        `listen: "127.0.0.1:${CLIENT_PORT}"`,
        `http: "127.0.0.1:${HTTP_PORT}"`,
        'ping_interval: "1s"',
        'ping_max: 3',
        'write_deadline: "2s"',
        `log_file: "${join(process.env.SYNOD_TEST_LOGS ?? dir, `${this.group}-nats-n${i}.log`)}"`,
        'cluster {',
        `  name: "${this.group}"`,
        // Loopback only: peers come in through the relay's proxy, where delay is added.
        `  listen: "127.0.0.1:${CLUSTER_PORT}"`,
        `  routes: [${peers.map((j) => `"nats-route://${net.address(j, i)}:${PROXY_PORT}"`).join(', ')}]`,
        '}',
      ].join('\n'),
    );
    net.spawn(i, findBinary('nats-server'), ['-c', config]);

    for (const [what, ports] of [
      ['client', this.#clientPorts],
      ['http', this.#httpPorts],
    ] as const) {
      const server = createServer((local) => {
        const remote = netConnect(socket(what));
        local.pipe(remote);
        remote.pipe(local);
        const close = () => {
          local.destroy();
          remote.destroy();
        };
        for (const end of [local, remote]) end.on('error', close).on('close', close);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.#forwarders.push(server);
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no forwarder port');
      ports.push(address.port);
    }
  }

  startNode(i: number): void {
    const logs = process.env.SYNOD_TEST_LOGS;
    const peers = Array.from({ length: this.size }, (_, j) => this.id(j + 1));
    const child = this.net.spawn(
      i,
      process.execPath,
      [
        SYNOD,
        'node',
        'start',
        '--id',
        this.id(i),
        '--group',
        this.group,
        '--peers',
        peers.join(','),
        '--nats',
        `nats://127.0.0.1:${CLIENT_PORT}`,
        '--data',
        join(this.dir, this.id(i)),
      ],
      {
        stdio:
          logs === undefined
            ? 'ignore'
            : ['ignore', openSync(join(logs, `${this.group}-${this.id(i)}.log`), 'a'), 'inherit'],
        env: { ...process.env, LOG_LEVEL: logs === undefined ? 'error' : 'info' },
      },
    );
    this.nodes.set(i, child);
  }

  /** num_routes of every server (undefined: it did not answer). */
  async routeCounts(): Promise<(number | undefined)[]> {
    return Promise.all(
      this.#httpPorts.map(async (port) => {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/routez`, {
            signal: AbortSignal.timeout(1_000),
          });
          return ((await response.json()) as { num_routes?: number }).num_routes;
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** Until every server has a route to every other one. */
  async waitForRoutes(timeoutMs: number): Promise<void> {
    let counts: (number | undefined)[] = [];
    await waitFor(
      'a full mesh of NATS routes',
      async () => {
        counts = await this.routeCounts();
        return counts.every((c) => c === this.size - 1);
      },
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (num_routes: ${JSON.stringify(counts)})`);
    });
  }

  /** The statuses of the nodes reachable from node `from`'s side. */
  async status(from: number): Promise<NodeStatus[]> {
    const transport = this.transports[from - 1]!;
    const result = await transport.gather(
      `synod.${this.group}.status`,
      new TextEncoder().encode('{"digest":true}'),
      {
        timeoutMs: 300,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeStatus,
      },
    );
    return [...result.replies].sort((x, y) => (x.node < y.node ? -1 : 1));
  }

  /** The leader that `count` nodes seen from `from` agree on, or undefined. */
  async leaderSeenFrom(from: number, count: number): Promise<string | undefined> {
    const nodes = await this.status(from);
    const leaders = new Set(nodes.map((n) => n.leader));
    return nodes.length === count && leaders.size === 1 && !leaders.has(null)
      ? nodes[0]!.leader!
      : undefined;
  }

  /** Delays every chunk crossing a route by delayMs ± jitterMs (0: no delay). */
  async setDelay(delayMs: number, jitterMs = 0): Promise<void> {
    await Promise.all(
      this.#relays.map(
        (relay) =>
          new Promise<void>((resolve) => {
            relay.answers.push(resolve);
            relay.child.stdin!.write(`${JSON.stringify({ delayMs, jitterMs })}\n`);
          }),
      ),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close().catch(() => undefined)));
    for (const server of this.#forwarders) server.close();
    // SIGTERM to everything in the namespaces, SIGKILL to what remains, namespaces removed.
    await this.net.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}
