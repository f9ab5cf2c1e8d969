// Node runtimes of one SQL group in this process, over a real nats-server, each applying the
// group's log to its own database on one real PostgreSQL server (database `<prefix>_<id>`).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeRuntime, type NodeRuntimeOptions } from '@synod/node';
import {
  leaderKnown,
  type NatsServer,
  type Postgres,
  startNatsServer,
  startPostgres,
  whileLeaderMoves,
} from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import pg from 'pg';
import { SqlFrontEnd, type SqlFrontEndOptions, SqlMachine } from '../src/index.js';

const FAST_TIMING = {
  heartbeatMs: 30,
  electionMinMs: 100,
  electionMaxMs: 200,
  phaseTimeoutMs: 150,
};

type Extra = Partial<
  Omit<NodeRuntimeOptions, 'group' | 'nodeId' | 'transport' | 'dataDir' | 'asyncMachine'>
>;

export interface SqlNode {
  readonly runtime: NodeRuntime;
  readonly transport: Transport;
  readonly machine: SqlMachine;
}

export class SqlGroup {
  readonly nodes = new Map<string, SqlNode>();
  /** The SQL front ends started with startNodeWithFrontEnd, by node. */
  readonly frontEnds = new Map<string, SqlFrontEnd>();

  private constructor(
    readonly group: string,
    readonly nats: NatsServer,
    readonly postgres: Postgres,
    readonly dir: string,
    readonly client: Transport,
    readonly prefix: string,
    readonly defaults: Extra & { peers: readonly string[]; replicated: readonly string[] },
  ) {}

  /** A nats-server, a PostgreSQL server, and an empty database for each of `ids`. */
  static async start(
    group: string,
    ids: readonly string[],
    defaults: Extra & { peers: readonly string[]; replicated: readonly string[] },
    prefix = 'node',
  ): Promise<SqlGroup> {
    const nats = await startNatsServer();
    const postgres = await startPostgres();
    const dir = await mkdtemp(join(tmpdir(), `synod-${group}-`));
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    for (const id of ids) await admin.query(`CREATE DATABASE ${prefix}_${id}`);
    await admin.end();
    const client = await connectNats({ servers: nats.url, name: 'client' });
    return new SqlGroup(group, nats, postgres, dir, client, prefix, defaults);
  }

  /**
   * A group whose nodes `ids` (all founders) each run with a front end, once every node knows
   * a leader: the start most front-end tests share.
   */
  static async withFrontEnds(
    group: string,
    ids: readonly string[],
    replicated: readonly string[] = [],
  ): Promise<SqlGroup> {
    const started = await SqlGroup.start(group, ids, { peers: ids, replicated });
    for (const id of ids) await started.startNodeWithFrontEnd(id);
    await started.leaderKnown();
    return started;
  }

  url(id: string): string {
    const { user, host, port } = this.postgres;
    return `postgres://${user}@${host}:${port}/${this.prefix}_${id}`;
  }

  /** Runs `sql` on node `id`'s own database, outside the group. */
  async onDatabase(id: string, sql: string): Promise<void> {
    const db = new pg.Client({ connectionString: this.url(id) });
    await db.connect();
    try {
      await db.query(sql);
    } finally {
      await db.end();
    }
  }

  async startNode(id: string, extra: Extra = {}): Promise<SqlNode> {
    const transport = await connectNats({ servers: this.nats.url, name: id });
    const machine = await SqlMachine.open({
      connectionString: this.url(id),
      group: this.group,
      replicated: this.defaults.replicated,
    });
    const { replicated: _, ...defaults } = this.defaults;
    const runtime = await NodeRuntime.start({
      leaderTiming: FAST_TIMING,
      ...defaults,
      ...extra,
      group: this.group,
      nodeId: id,
      transport,
      dataDir: join(this.dir, id),
      asyncMachine: machine,
    });
    const node = { runtime, transport, machine };
    this.nodes.set(id, node);
    return node;
  }

  /** Starts node `id` and a PostgreSQL wire front end for it on a free loopback port. */
  async startNodeWithFrontEnd(
    id: string,
    extra: Extra = {},
    frontEnd: Pick<SqlFrontEndOptions, 'host' | 'tls'> = {},
  ): Promise<SqlNode> {
    const node = await this.startNode(id, extra);
    this.frontEnds.set(
      id,
      await SqlFrontEnd.start({
        ...frontEnd,
        users: node.machine.users,
        port: 0,
        group: this.group,
        nodeId: id,
        transport: node.transport,
        connectionString: node.machine.clientConnectionString,
        transactionConnectionString: node.machine.transactionConnectionString,
        replicated: node.machine.replicatedTables,
        local: (write) => node.runtime.write(write),
        localRead: (read) => node.runtime.read(read),
      }),
    );
    return node;
  }

  /** A node-postgres session through node `id`'s front end (trusted: no user defined). */
  async session(id: string): Promise<pg.Client> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: this.frontEnds.get(id)!.port,
      user: 'postgres',
      database: 'postgres',
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** The real psql against node `id`'s front end: its exit code, and stdout then stderr. */
  psql(id: string, command: string): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      execFile(
        'psql',
        [
          ...['-h', '127.0.0.1', '-p', String(this.frontEnds.get(id)!.port), '-U', 'postgres'],
          ...['-d', 'postgres', '-At', '-v', 'ON_ERROR_STOP=1', '-c', command],
        ],
        { env: { ...process.env, PGCONNECT_TIMEOUT: '10' }, timeout: 30_000 },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : Number(error.code ?? 1), output: stdout + stderr }),
      );
    });
  }

  /** The rows of `sql` on node `id`'s own database (what it applied), outside the group. */
  async rowsOn(id: string, sql: string): Promise<unknown[]> {
    const db = new pg.Client({ connectionString: this.url(id) });
    await db.connect();
    try {
      return (await db.query(sql)).rows;
    } finally {
      await db.end();
    }
  }

  /** Waits until every running node knows a leader. */
  leaderKnown(timeoutMs = 15_000): Promise<void> {
    return leaderKnown(() => [...this.nodes.values()].map((n) => n.runtime), timeoutMs);
  }

  async stopNode(id: string): Promise<void> {
    const node = this.nodes.get(id)!;
    this.nodes.delete(id);
    await node.runtime.stop();
    await node.transport.close();
  }

  /** One JSON request to `subject`, answered as JSON. */
  /**
   * One JSON request, sent again as a client would while the leader moves (NOT_LEADER,
   * NO_QUORUM, no responders): a write keeps its (clientId, seq), so it is applied once.
   */
  ask(subject: string, body: unknown): Promise<Record<string, unknown>> {
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    return whileLeaderMoves(async () => {
      const reply = await this.client.request(subject, bytes, { timeoutMs: 10_000 });
      return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    });
  }

  /** Every running node's state digest, as its status reports it. */
  async digests(): Promise<string[]> {
    const answer = await this.client.gather(
      `synod.${this.group}.status`,
      new TextEncoder().encode('{"digest":true}'),
      {
        timeoutMs: 2_000,
        maxReplies: this.nodes.size,
        map: (m) =>
          (JSON.parse(new TextDecoder().decode(m.data)) as { stateDigest: string }).stateDigest,
        until: (replies) => replies.length === this.nodes.size,
      },
    );
    return [...answer.replies];
  }

  async stop(): Promise<void> {
    for (const frontEnd of this.frontEnds.values()) await frontEnd.stop();
    await this.client.close();
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    await this.nats.stop();
    await this.postgres.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
