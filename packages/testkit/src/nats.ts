import { findBinary } from './binaries.js';
import { assertUsablePort, freePort, LOOPBACK } from './ports.js';
import { waitUntilReady } from './ready.js';
import { SupervisedProcess } from './supervised-process.js';
import { canConnect } from './wait.js';

export interface NatsServerOptions {
  /** Client port; a free one by default. */
  readonly port?: number;
  /** Cluster name (`--cluster_name`); setting it, `clusterPort` or `routes` enables clustering. */
  readonly clusterName?: string;
  readonly clusterPort?: number;
  /** Route URLs to solicit, e.g. `nats://127.0.0.1:6250`. */
  readonly routes?: readonly string[];
  /** HTTP monitoring port (`-m`), for /varz, /routez, ...; off unless given. */
  readonly monitorPort?: number;
  readonly extraArgs?: readonly string[];
  /** Default 10 000 ms. */
  readonly startTimeoutMs?: number;
}

export interface NatsServer {
  /** `nats://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly clusterPort?: number;
  readonly monitorPort?: number;
  /** The real nats-server pid, so tests can SIGKILL/SIGSTOP/SIGCONT it; changes on restart(). */
  readonly pid: number;
  /** Sends `signal` (default SIGKILL) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL if it is still running after a few seconds. */
  stop(): Promise<void>;
  /** Starts again with the same ports and arguments (stopping first if running) and waits until ready. */
  restart(): Promise<void>;
  /** Sends a signal without waiting, e.g. SIGSTOP/SIGCONT to simulate a hung server. */
  signal(sig: NodeJS.Signals): void;
  readonly running: boolean;
}

const READY_LINE = 'Server is ready';
const ROUTE_LISTENING_LINE = 'Listening for route connections';
const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

export class NatsServerProcess implements NatsServer {
  readonly url: string;
  readonly port: number;
  readonly clusterPort?: number;
  readonly monitorPort?: number;
  private readonly binary: string;
  private readonly args: readonly string[];
  private readonly startTimeoutMs: number;
  private proc: SupervisedProcess | undefined;

  constructor(binary: string, args: readonly string[], ports: NatsPorts, startTimeoutMs: number) {
    this.binary = binary;
    this.args = args;
    this.port = ports.port;
    if (ports.clusterPort !== undefined) this.clusterPort = ports.clusterPort;
    if (ports.monitorPort !== undefined) this.monitorPort = ports.monitorPort;
    this.url = `nats://${LOOPBACK}:${ports.port}`;
    this.startTimeoutMs = startTimeoutMs;
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  async start(): Promise<void> {
    const proc = await SupervisedProcess.spawn({
      name: 'nats-server',
      command: this.binary,
      args: this.args,
    });
    this.proc = proc;
    // 2.9.10 prints "Server is ready" once the client listener is up but *before* it opens the route
    // listener, so a clustered server also waits for the route listener's line. (Probing the route
    // port with a bare TCP connect instead would make the server log a bogus route error.)
    const lines =
      this.clusterPort === undefined ? [READY_LINE] : [READY_LINE, ROUTE_LISTENING_LINE];
    // Sticky, checked on every chunk: the log buffer is bounded and -DV output could push a line out.
    const seen = new Set<string>();
    const check = (): void => {
      for (const line of lines) if (proc.logText().includes(line)) seen.add(line);
    };
    const unsubscribe = proc.onLog(check);
    check();
    const sawAllLines = (): boolean => seen.size === lines.length;
    try {
      await waitUntilReady(proc, {
        timeoutMs: this.startTimeoutMs,
        what: `${lines.map((l) => `"${l}"`).join(' and ')} and a TCP connect to ${LOOPBACK}:${this.port}`,
        probe: async () => sawAllLines() && (await canConnect(this.port)),
      });
    } finally {
      unsubscribe();
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.proc?.kill(signal);
  }

  async stop(): Promise<void> {
    await this.proc?.stop('SIGTERM', STOP_GRACE_MS);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.signal(sig);
  }

  /** The end of the server's log, for error messages. */
  async logTail(): Promise<string> {
    return (await this.proc?.logTail()) ?? '';
  }
}

interface NatsPorts {
  readonly port: number;
  readonly clusterPort?: number;
  readonly monitorPort?: number;
}

async function choosePort(explicit: number | undefined, what: string): Promise<number> {
  if (explicit === undefined) return freePort();
  assertUsablePort(explicit, what);
  return explicit;
}

/** Builds the server without starting it; the cluster needs every port before any server runs. */
export async function createNatsServer(
  options: NatsServerOptions = {},
): Promise<NatsServerProcess> {
  const binary = findBinary('nats-server');
  const port = await choosePort(options.port, 'nats port');
  const args = ['-a', LOOPBACK, '-p', String(port)];
  const clustered =
    options.clusterName !== undefined ||
    options.clusterPort !== undefined ||
    (options.routes?.length ?? 0) > 0;
  let clusterPort: number | undefined;
  if (clustered) {
    clusterPort = await choosePort(options.clusterPort, 'nats cluster port');
    args.push('--cluster', `nats://${LOOPBACK}:${clusterPort}`);
    if (options.clusterName !== undefined) args.push('--cluster_name', options.clusterName);
    if ((options.routes?.length ?? 0) > 0) args.push('--routes', options.routes!.join(','));
  }
  let monitorPort: number | undefined;
  if (options.monitorPort !== undefined) {
    monitorPort = await choosePort(options.monitorPort, 'nats monitor port');
    // The monitor listens on the -a host, so it stays on loopback too.
    args.push('-m', String(monitorPort));
  }
  args.push(...(options.extraArgs ?? []));
  const ports: NatsPorts = {
    port,
    ...(clusterPort === undefined ? {} : { clusterPort }),
    ...(monitorPort === undefined ? {} : { monitorPort }),
  };
  return new NatsServerProcess(
    binary,
    args,
    ports,
    options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  );
}

/** Starts a nats-server on 127.0.0.1 (JetStream off) and resolves once it accepts clients. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const server = await createNatsServer(options);
  await server.start();
  return server;
}
