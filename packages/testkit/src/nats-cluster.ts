import { ServerStartError } from './errors.js';
import { createNatsServer, type NatsServer, type NatsServerProcess } from './nats.js';
import { freePort, LOOPBACK } from './ports.js';
import { delay } from './wait.js';

export interface NatsClusterOptions {
  /** Default `synod-<random>`, so two clusters of one test run never merge. */
  readonly clusterName?: string;
  /** Passed to every server. */
  readonly extraArgs?: readonly string[];
  /** Per server start, and again for route formation. Default 10 000 ms. */
  readonly startTimeoutMs?: number;
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  /** Client URLs, one per server, in `servers` order. */
  readonly urls: string[];
  /** Resolves once every running member has a route to every other running member. */
  waitForRoutes(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface Routez {
  readonly num_routes?: number;
}

/** The server's own count of established routes, or undefined while it does not answer. */
export async function routeCount(monitorPort: number): Promise<number | undefined> {
  try {
    const response = await fetch(`http://${LOOPBACK}:${monitorPort}/routez`, {
      signal: AbortSignal.timeout(1_000),
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as Routez;
    return typeof body.num_routes === 'number' ? body.num_routes : undefined;
  } catch {
    return undefined;
  }
}

class Cluster implements NatsCluster {
  readonly servers: NatsServer[];
  readonly urls: string[];
  private readonly members: readonly NatsServerProcess[];
  private readonly timeoutMs: number;

  constructor(members: readonly NatsServerProcess[], timeoutMs: number) {
    this.members = members;
    this.servers = [...members];
    this.urls = members.map((m) => m.url);
    this.timeoutMs = timeoutMs;
  }

  async waitForRoutes(timeoutMs = this.timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let counts: (number | undefined)[] = [];
    for (;;) {
      const running = this.members.filter((m) => m.running);
      counts = await Promise.all(running.map((m) => routeCount(m.monitorPort!)));
      // Exactly n-1: while duplicate routes between a pair are being resolved a server can briefly
      // report more, and that is not yet a settled mesh.
      if (counts.every((c) => c === running.length - 1)) return;
      if (Date.now() >= deadline) break;
      await delay(100);
    }
    const report = this.members
      .map(
        (m, i) =>
          `server ${i} (${m.url}, cluster ${m.clusterPort}): ${m.running ? 'running' : 'stopped'}`,
      )
      .join('\n');
    const tails = await Promise.all(
      this.members.map(async (m, i) => `[server ${i}]\n${await m.logTail()}`),
    );
    throw new ServerStartError(
      'nats cluster',
      `routes not formed after ${timeoutMs} ms (num_routes per running server: ${JSON.stringify(counts)})\n${report}`,
      tails.map((t) => t.split('\n').slice(-10).join('\n')).join('\n'),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }
}

/**
 * Starts `size` nats-servers joined into one full mesh of explicit routes and resolves once every
 * server reports size-1 routes on /routez. Each member keeps its ports and routes across restart(),
 * so a killed and restarted member rejoins the same cluster.
 */
export async function startNatsCluster(
  size = 3,
  options: NatsClusterOptions = {},
): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`cluster size must be >= 1, got ${size}`);
  const clusterName = options.clusterName ?? `synod-${Math.random().toString(36).slice(2, 10)}`;
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i++) clusterPorts.push(await freePort());
  const members: NatsServerProcess[] = [];
  for (let i = 0; i < size; i++) {
    members.push(
      await createNatsServer({
        clusterName,
        clusterPort: clusterPorts[i]!,
        routes: clusterPorts.filter((_, j) => j !== i).map((p) => `nats://${LOOPBACK}:${p}`),
        monitorPort: await freePort(),
        extraArgs: ['--server_name', `${clusterName}-${i}`, ...(options.extraArgs ?? [])],
        startTimeoutMs: timeoutMs,
      }),
    );
  }
  const cluster = new Cluster(members, timeoutMs);
  try {
    // allSettled: stopping while a sibling is still starting would miss it.
    const started = await Promise.allSettled(members.map((m) => m.start()));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await cluster.waitForRoutes();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
