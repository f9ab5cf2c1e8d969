import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMIT_PLANTS, type CommitPlant, commitRulesFor } from '@synod/commit';
import { NodeInspector, NodeMetrics, nodeSummary } from '@synod/inspector';
import { createLogger, type Logger } from '@synod/log';
import {
  type CommitCounts,
  CommitNode,
  type DataDirLock,
  lockDataDir,
  NodeRuntime,
} from '@synod/node';
import {
  type EmbeddedDatabase,
  isLoopback,
  SqlFrontEnd,
  SqlMachine,
  startEmbeddedPostgres,
} from '@synod/pg-applier';
import { connectNats, type Transport, TransportLease } from '@synod/transport';
import { Cleanup } from './cleanup.js';
import type { NodeSettings } from './node-settings.js';
import { listenForStop } from './stop-signals.js';

/** sysexits' EX_SOFTWARE: the node found itself unable to go on, so a supervisor restarts it. */
export const EXIT_NODE_FAILED = 70;

/** The node stopped itself (NodeRuntimeOptions.onFatal); the process exits EXIT_NODE_FAILED. */
export class NodeFailedError extends Error {
  override readonly name = 'NodeFailedError';
  readonly exitCode = EXIT_NODE_FAILED;
  constructor(cause: unknown) {
    super(`the node stopped itself: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/**
 * Starts the node and what serves it (NATS, the SQL machine's database, inspector, metrics,
 * the SQL front end) and stops all of it, in reverse, when a signal comes, when the node
 * stops itself (then throws NodeFailedError), or when any of it fails to start. A node of
 * several groups (--group G1,G2) runs one NodeRuntime per group over one NATS connection,
 * each in DIR/GROUP, and stops every one of them when any stops itself.
 */
export async function runNode(s: NodeSettings): Promise<void> {
  // Listen before anything starts, so that a stop that comes early is still clean.
  const stop = listenForStop();
  const logger = createLogger({ name: 'synod' }).child(
    s.groups.length === 1 ? { group: s.group, node: s.id } : { node: s.id },
  );
  const cleanup = new Cleanup();
  let reportFatal: (error: unknown) => void = () => undefined;
  const fatal = new Promise<NodeFailedError>((resolve) => {
    reportFatal = (error) => resolve(new NodeFailedError(error));
  });
  try {
    // The directory's lock first: a second node on it must be refused before anything of it
    // starts, the embedded PostgreSQL inside it included.
    await mkdir(s.data, { recursive: true });
    const lock = await lockDataDir(s.data);
    // Released by the node as it stops, too (release is idempotent).
    cleanup.add('the data directory lock', () => lock.release());
    const transport = await connectNats({
      ...s.nats,
      name: `synod-${s.groups.length === 1 ? s.group : `${s.groups.length}-groups`}-${s.id}`,
      logger,
    });
    cleanup.add('the NATS connection', () => transport.drain().catch(() => transport.close()));
    const started: Record<string, unknown>[] = [];
    const runtimes: NodeRuntime[] = [];
    // Every group's status carries the process's commit counts, once its commit node runs.
    const commitStatus: CommitStatus = {};
    // A SQL node's groups share one database (each table belongs to one group).
    const sql = s.machine === undefined ? await openSqlMachines(s, logger, cleanup) : undefined;
    if (s.groups.length === 1) {
      const { runtime, info } = await startGroup(
        s,
        s.group,
        s.data,
        lock,
        transport,
        logger,
        cleanup,
        reportFatal,
        commitStatus,
        sql,
      );
      runtimes.push(runtime);
      started.push(info);
    } else
      for (const group of s.groups) {
        const dir = join(s.data, group);
        await mkdir(dir, { recursive: true });
        const groupLock = await lockDataDir(dir);
        cleanup.add(`the ${group} data directory lock`, () => groupLock.release());
        const groupLogger = logger.child({ group });
        // Each group's node closes its own lease as it stops, not the connection the others use.
        const { runtime, info } = await startGroup(
          s,
          group,
          dir,
          groupLock,
          new TransportLease(transport),
          groupLogger,
          cleanup,
          reportFatal,
          commitStatus,
          sql,
        );
        runtimes.push(runtime);
        started.push({ group, ...info });
      }
    const frontEnd =
      sql === undefined ? undefined : await startFrontEnd(s, sql, runtimes, transport, logger);
    if (frontEnd !== undefined) cleanup.add('the SQL front end', () => frontEnd.stop());
    // Transactions across groups: every kv or SQL node runs a commit node (stopped first).
    if (s.machineName === 'kv' || s.machineName === 'sql') {
      const plant = plantedCommitBug(logger);
      const commit = await CommitNode.start({
        nodeId: s.id,
        transport,
        dataDir: s.data,
        groups: runtimes,
        protocol: s.commitProtocol,
        logger,
        fatal: (error) => reportFatal(error),
        ...(plant === undefined ? {} : { rules: commitRulesFor(plant) }),
      });
      for (const runtime of runtimes) runtime.serveTransactions(commit);
      commitStatus.counts = () => commit.counts;
      cleanup.add('the commit node', () => commit.stop());
    }
    logger.info(
      {
        peers: s.peers,
        machine: s.machineName,
        nats: s.nats.servers,
        ...(s.groups.length === 1 ? started[0] : { groups: started }),
        ...(frontEnd === undefined ? {} : { sqlPort: frontEnd.port, sql: frontEnd.address }),
      },
      'node started',
    );
    const failed = await Promise.race([stop.requested.then(() => undefined), fatal]);
    if (failed !== undefined) throw failed;
    logger.info('stopping');
  } finally {
    await cleanup.run(logger);
    stop.dispose();
  }
}

/** The process's commit counts, for every group's status (`npm run bench:commit` reads them). */
interface CommitStatus {
  counts?: () => CommitCounts;
}

/**
 * SYNOD_COMMIT_PLANT names one of @synod/commit's planted bugs: the transaction tests run
 * real processes with it to prove their checker catches a broken commit. Never in production;
 * the node says so loudly.
 */
function plantedCommitBug(logger: Logger): CommitPlant | undefined {
  const plant = process.env.SYNOD_COMMIT_PLANT;
  if (plant === undefined || plant === '') return undefined;
  if (!(COMMIT_PLANTS as readonly string[]).includes(plant))
    throw new Error(`SYNOD_COMMIT_PLANT must be one of ${COMMIT_PLANTS.join(', ')}`);
  logger.warn({ plant }, 'a planted commit bug is on: this node can break atomicity (tests only)');
  return plant as CommitPlant;
}

/**
 * One group's node in this process: its inspector, its NodeRuntime (and SQL machine, metrics
 * and SQL front end where asked), each stopped by `cleanup`. Returns what the start log says.
 */
async function startGroup(
  s: NodeSettings,
  group: string,
  dataDir: string,
  lock: DataDirLock,
  transport: Transport,
  logger: Logger,
  cleanup: Cleanup,
  reportFatal: (error: unknown) => void,
  commitStatus: CommitStatus,
  sqlMachines: OpenSqlMachines | undefined,
): Promise<{ runtime: NodeRuntime; info: Record<string, unknown> }> {
  const sql = sqlMachines?.machines.get(group);
  // The inspector reads the node's status, which exists once it has started; it skips a
  // batch whose summary throws.
  let node: NodeRuntime | undefined;
  const inspector = new NodeInspector({
    transport,
    group,
    nodeId: s.id,
    summary: () => {
      if (node === undefined) throw new Error('the node has not started');
      return nodeSummary(node.status());
    },
  });
  cleanup.add(`the ${group} inspector`, () => inspector.stop());
  // NodeMetrics reads the status on a timer from the start, so it is made once the node
  // runs; what the node measures before then is not counted.
  let metrics: NodeMetrics | undefined;
  const runtime = await NodeRuntime.start({
    group,
    nodeId: s.id,
    peers: s.peers,
    ...(s.join ? { join: s.join } : {}),
    transport,
    dataDir,
    dataDirLock: lock,
    logger,
    ...(sql === undefined ? { machine: s.machine! } : { asyncMachine: sql }),
    ...(s.snapshotEvery === undefined ? {} : { snapshotEvery: s.snapshotEvery }),
    ...(s.retainSlots === undefined ? {} : { retainSlots: s.retainSlots }),
    ...(s.maxBatch === undefined ? {} : { maxBatch: s.maxBatch }),
    ...(s.maxInFlight === undefined ? {} : { maxInFlight: s.maxInFlight }),
    ...(s.verifyEverySeconds === undefined ? {} : { verifyEveryMs: s.verifyEverySeconds * 1000 }),
    inspection: inspector,
    ...(s.metricsPort === undefined
      ? {}
      : {
          metrics: {
            committed: (ms: number) => metrics?.committed(ms),
            persisted: (ms: number) => metrics?.persisted(ms),
          },
        }),
    statusExtra: () => ({
      ...(metrics === undefined ? {} : { metrics: metrics.snapshot() }),
      ...(commitStatus.counts === undefined ? {} : { commit: commitStatus.counts() }),
    }),
    onFatal: (error) => reportFatal(error),
  });
  node = runtime;
  // The node closes the SQL machine when it stops.
  if (sql !== undefined) sqlMachines?.closedByNode.add(sql);
  cleanup.add(`the ${group} node`, () => runtime.stop());
  if (s.metricsPort !== undefined) {
    const serving = new NodeMetrics({
      group,
      nodeId: s.id,
      status: () => runtime.status(),
      transport,
    });
    metrics = serving;
    cleanup.add('the metrics', () => serving.stop());
  }
  const metricsPort =
    metrics === undefined || s.metricsPort === undefined
      ? undefined
      : await metrics.serve(s.metricsPort);
  return {
    runtime,
    info: metricsPort === undefined ? {} : { metricsPort },
  };
}

interface OpenSqlMachines {
  /** Each group's SQL machine, all on one database. */
  readonly machines: ReadonlyMap<string, SqlMachine>;
  /** Those a running node closes itself as it stops. */
  readonly closedByNode: Set<SqlMachine>;
}

/**
 * The groups' SQL machines on the database given with --pg, or on an embedded PostgreSQL kept
 * in DATA/postgres when none is given. Both are stopped by `cleanup`.
 */
async function openSqlMachines(
  s: NodeSettings,
  logger: Logger,
  cleanup: Cleanup,
): Promise<OpenSqlMachines> {
  let database: EmbeddedDatabase | undefined;
  if (s.pg === undefined) {
    const started = await startEmbeddedPostgres(join(s.data, 'postgres'), {
      onLog: (line) => logger.debug({ postgres: line }),
    });
    cleanup.add('the embedded PostgreSQL', () => started.stop());
    database = started;
  }
  const connectionString = s.pg ?? database!.url;
  logger.info(
    { postgres: database === undefined ? 'given' : 'embedded', replicated: s.replicate },
    'sql machine',
  );
  const list = await SqlMachine.openGroups({
    connectionString,
    groups: s.groups.map((group) => ({
      group,
      replicated: s.replicateByGroup.get(group) ?? [],
    })),
  });
  const open: OpenSqlMachines = {
    machines: new Map(list.map((m) => [m.group, m])),
    closedByNode: new Set(),
  };
  for (const machine of list)
    cleanup.add(`the ${machine.group} SQL machine`, () =>
      open.closedByNode.has(machine) ? undefined : machine.close(),
    );
  return open;
}

/**
 * The SQL front end, when asked (--sql-port, --sql-listen): one for every group this node
 * serves, on their one database; a write goes through its table's group's log, and the
 * first group's users log in.
 */
async function startFrontEnd(
  s: NodeSettings,
  sql: OpenSqlMachines,
  runtimes: readonly NodeRuntime[],
  transport: Transport,
  logger: Logger,
): Promise<SqlFrontEnd | undefined> {
  if (s.sqlListen === undefined) return undefined;
  const groups = runtimes.map((runtime, i) => {
    const group = s.groups[i]!;
    return {
      group,
      replicated: sql.machines.get(group)!.replicatedTables,
      local: (write: Uint8Array) => runtime.write(write),
      localRead: (read: Uint8Array) => runtime.read(read),
    };
  });
  const first = sql.machines.get(s.group)!;
  const frontEnd = await SqlFrontEnd.start({
    port: s.sqlListen.port,
    host: s.sqlListen.host,
    users: first.users,
    ...(s.sqlTls === undefined
      ? {}
      : { tls: { cert: await readFile(s.sqlTls.cert), key: await readFile(s.sqlTls.key) } }),
    ...groups[0]!,
    moreGroups: groups.slice(1),
    nodeId: s.id,
    transport,
    connectionString: first.clientConnectionString,
    transactionConnectionString: first.transactionConnectionString,
  });
  if (!isLoopback(frontEnd.address.replace(/:\d+$/, '')))
    logger.warn(
      { sql: frontEnd.address, users: first.users.size },
      'the SQL front end listens beyond loopback: every login needs a user and its password (synod sql user add)',
    );
  return frontEnd;
}
