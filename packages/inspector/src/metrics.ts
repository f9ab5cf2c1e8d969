import { createServer, type Server } from 'node:http';
import type { Transport } from '@synod/transport';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The part of a node's status the metrics read (NodeRuntime.status()). */
export interface MetricsStatus {
  readonly leader: string | null;
  readonly role: string;
  readonly commitIndex: number;
  readonly appliedThrough: number;
  readonly phase1Answers: number;
  readonly phase2Answers: number;
}

/** What `synod status` shows of a node's metrics. */
export interface MetricsSnapshot {
  /** Where /metrics is served (null: not served). */
  readonly port: number | null;
  /** Client writes this node answered as leader. */
  readonly commits: number;
  readonly commitLatencyMeanMs: number;
  readonly fsyncs: number;
  readonly fsyncLatencyMeanMs: number;
  readonly leaderChanges: number;
  readonly natsReconnects: number;
}

export interface NodeMetricsOptions {
  readonly group: string;
  readonly nodeId: string;
  /** The node's status, read at each scrape and every `watchMs` (leader changes). */
  readonly status: () => MetricsStatus;
  /** The node's NATS connection: its reconnects are counted. */
  readonly transport: Transport;
  /** How often the leader is looked at, to count its changes. Default 100 ms. */
  readonly watchMs?: number;
}

/** Latency buckets in seconds: 0.25 ms to 2.5 s. */
const LATENCY_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * A node's Prometheus metrics (prom-client, a registry of its own), served on
 * `--metrics-port` at /metrics. The runtime reports commit and fsync latencies as they happen
 * (RuntimeMetrics); the rest is read from the node's status when scraped. Leader changes are
 * counted by looking at the leader every `watchMs`: two changes inside one such period count
 * as one.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #commitLatency: Histogram;
  readonly #fsyncLatency: Histogram;
  readonly #leaderChanges: Counter;
  readonly #watch: ReturnType<typeof setInterval>;
  readonly #o: NodeMetricsOptions;
  readonly #commits = { count: 0, sum: 0 };
  readonly #fsyncs = { count: 0, sum: 0 };
  #leaderChangeCount = 0;
  #leader: string | null | undefined;
  #server: Server | undefined;
  #port: number | undefined;

  constructor(options: NodeMetricsOptions) {
    this.#o = options;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ group: options.group, node: options.nodeId });
    this.#commitLatency = new Histogram({
      name: 'synod_commit_latency_seconds',
      help: 'From the leader taking a client write to answering it, applied',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#fsyncLatency = new Histogram({
      name: 'synod_fsync_latency_seconds',
      help: "An append to the acceptor's store, write and fsync",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#leaderChanges = new Counter({
      name: 'synod_leader_changes_total',
      help: 'Times the leader this node knows of changed',
      registers,
    });
    const counterFrom = (name: string, help: string, read: (s: MetricsStatus) => number) => {
      let seen = 0;
      return new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read(options.status());
          if (now > seen) this.inc(now - seen);
          seen = Math.max(seen, now);
        },
      });
    };
    counterFrom(
      'synod_commits_total',
      'Log slots known chosen since the node started',
      (s) => s.commitIndex + 1,
    );
    counterFrom(
      'synod_phase1_messages_total',
      "Phase-1 answers (promises) of this node's acceptor",
      (s) => s.phase1Answers,
    );
    counterFrom(
      'synod_phase2_messages_total',
      "Phase-2 answers (acceptances) of this node's acceptor",
      (s) => s.phase2Answers,
    );
    counterFrom(
      'synod_nats_reconnects_total',
      'Reconnects of the NATS connection',
      () => options.transport.stats().reconnects,
    );
    new Gauge({
      name: 'synod_commit_index',
      help: 'The highest slot known chosen',
      registers,
      collect() {
        this.set(options.status().commitIndex);
      },
    });
    new Gauge({
      name: 'synod_applied_lag_slots',
      help: 'Slots known chosen but not applied yet',
      registers,
      collect() {
        const s = options.status();
        this.set(Math.max(0, s.commitIndex - s.appliedThrough));
      },
    });
    new Gauge({
      name: 'synod_is_leader',
      help: '1 on the leader, 0 elsewhere',
      registers,
      collect() {
        this.set(options.status().role === 'leader' ? 1 : 0);
      },
    });
    this.#watch = setInterval(() => {
      // The node may not have started yet (it can wait to be admitted to its group): a status
      // that cannot be read yet is no leader change.
      let leader: string | null;
      try {
        leader = options.status().leader;
      } catch {
        return;
      }
      if (this.#leader !== undefined && leader !== this.#leader && leader !== null) {
        this.#leaderChanges.inc();
        this.#leaderChangeCount++;
      }
      if (leader !== null) this.#leader = leader;
    }, options.watchMs ?? 100);
    this.#watch.unref?.();
  }

  /** RuntimeMetrics: a client write answered, `ms` after the leader took it. */
  committed(ms: number): void {
    this.#commitLatency.observe(ms / 1000);
    this.#commits.count++;
    this.#commits.sum += ms;
  }

  /** RuntimeMetrics: an append to the acceptor's store took `ms`. */
  persisted(ms: number): void {
    this.#fsyncLatency.observe(ms / 1000);
    this.#fsyncs.count++;
    this.#fsyncs.sum += ms;
  }

  /** The metrics in Prometheus's text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** A few numbers for `synod status` (its `metrics` field). */
  snapshot(): MetricsSnapshot {
    const mean = (sum: number, count: number) =>
      count === 0 ? 0 : Math.round((sum / count) * 1000) / 1000;
    return {
      port: this.#port ?? null,
      commits: this.#commits.count,
      commitLatencyMeanMs: mean(this.#commits.sum, this.#commits.count),
      fsyncs: this.#fsyncs.count,
      fsyncLatencyMeanMs: mean(this.#fsyncs.sum, this.#fsyncs.count),
      leaderChanges: this.#leaderChangeCount,
      natsReconnects: this.#o.transport.stats().reconnects,
    };
  }

  /** Serves /metrics on 127.0.0.1:port (0: a free port); resolves to the port. */
  async serve(port: number): Promise<number> {
    const server = createServer((request, response) => {
      if ((request.url ?? '/').split('?')[0] !== '/metrics') {
        response.writeHead(404).end('not found: try /metrics\n');
        return;
      }
      this.text().then(
        (text) => {
          response.writeHead(200, { 'content-type': this.registry.contentType });
          response.end(text);
        },
        (error: unknown) => {
          response.writeHead(500).end(String(error));
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const address = server.address();
    this.#port = typeof address === 'object' && address !== null ? address.port : port;
    return this.#port;
  }

  async stop(): Promise<void> {
    clearInterval(this.#watch);
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
