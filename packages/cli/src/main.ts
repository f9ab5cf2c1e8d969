#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SynodClient, SynodError } from '@synod/client';
import { NodeInspector, NodeMetrics, nodeSummary } from '@synod/inspector';
import { createLogger, type Logger } from '@synod/log';
import { MACHINES, NodeRuntime } from '@synod/node';
import {
  type EmbeddedDatabase,
  SqlFrontEnd,
  SqlMachine,
  startEmbeddedPostgres,
} from '@synod/pg-applier';
import { assertGroupName, InvalidNameError, type ReadConsistency } from '@synod/protocol';
import { connectNats, type Transport, TransportConnectError } from '@synod/transport';
import { demo } from './demo.js';
import { inspect, parseListen } from './inspect.js';
import { metricsTable, type NodeRow, statusTable } from './status-table.js';
import { replicateTable, tablesOfEveryNode, tablesText } from './table.js';
import { USAGE, UsageError } from './usage.js';

const DEFAULT_NATS = 'nats://127.0.0.1:4222';

const COMMON = {
  help: { type: 'boolean' },
  json: { type: 'boolean' },
  nats: { type: 'string' },
  group: { type: 'string' },
} as const;

type Flags = Record<string, { readonly type: 'string' | 'boolean' }>;

function options<E extends Flags>(args: string[], extra: E) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { ...COMMON, ...extra },
  });
}

async function withClient<T>(
  nats: string | undefined,
  group: string | undefined,
  run: (client: SynodClient, transport: Transport) => Promise<T>,
): Promise<T> {
  if (group === undefined) throw new UsageError('--group is required');
  assertGroupName(group);
  const transport = await connectNats({
    servers: (nats ?? DEFAULT_NATS).split(','),
    name: 'synod-cli',
  });
  try {
    return await run(new SynodClient({ transport, group }), transport);
  } finally {
    await transport.close();
  }
}

function print(json: boolean | undefined, value: unknown, text: string): void {
  console.log(json === true ? JSON.stringify(value) : text);
}

async function nodeStart(args: string[]): Promise<void> {
  const { values } = options(args, {
    id: { type: 'string' },
    peers: { type: 'string' },
    data: { type: 'string' },
    config: { type: 'string' },
    'snapshot-every': { type: 'string' },
    'retain-slots': { type: 'string' },
    machine: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-in-flight': { type: 'string' },
    pg: { type: 'string' },
    replicate: { type: 'string' },
    'sql-port': { type: 'string' },
    join: { type: 'boolean' },
    'metrics-port': { type: 'string' },
  } as const);
  if (values.help) return void console.log(USAGE['node start']);
  const file =
    values.config === undefined
      ? {}
      : (JSON.parse(await readFile(values.config, 'utf8')) as Record<string, unknown>);
  const pick = (name: string, flag: string | undefined): string | undefined =>
    flag ?? (typeof file[name] === 'string' ? (file[name] as string) : undefined);
  const id = pick('id', values.id);
  const group = pick('group', values.group);
  const data = pick('data', values.data);
  const peers =
    values.peers?.split(',') ?? (Array.isArray(file.peers) ? (file.peers as string[]) : undefined);
  if (id === undefined || group === undefined || data === undefined || peers === undefined) {
    throw new UsageError('--id, --group, --peers and --data are required (or in --config)');
  }
  const count = (flag: string, name: string, min: number): number | undefined => {
    const text =
      values[
        flag as
          | 'snapshot-every'
          | 'retain-slots'
          | 'max-batch'
          | 'max-in-flight'
          | 'sql-port'
          | 'metrics-port'
      ] ?? file[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min)
      throw new UsageError(
        `--${flag} must be a whole number of at least ${min}, got ${String(text)}`,
      );
    return n;
  };
  const machineName = pick('machine', values.machine) ?? 'kv';
  const machine = MACHINES[machineName];
  if (machine === undefined && machineName !== 'sql')
    throw new UsageError(
      `--machine must be one of ${[...Object.keys(MACHINES), 'sql'].join(', ')}, got ${machineName}`,
    );
  const replicate = (pick('replicate', values.replicate) ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const sqlPort = count('sql-port', 'sqlPort', 1);
  if (sqlPort !== undefined && machineName !== 'sql')
    throw new UsageError('--sql-port needs --machine sql');
  const snapshotEvery = count('snapshot-every', 'snapshotEvery', 1);
  const retainSlots = count('retain-slots', 'retainSlots', 0);
  const maxBatch = count('max-batch', 'maxBatch', 1);
  const maxInFlight = count('max-in-flight', 'maxInFlight', 1);
  const metricsPort = count('metrics-port', 'metricsPort', 0);
  // Listen for SIGINT/SIGTERM before anything else, so a stop that comes early is still clean.
  const stopRequested = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  const logger = createLogger({ name: 'synod' }).child({ group, node: id });
  const transport = await connectNats({
    servers: (pick('nats', values.nats) ?? DEFAULT_NATS).split(','),
    name: `synod-${group}-${id}`,
    logger,
  });
  const sql =
    machineName === 'sql'
      ? await openSqlMachine(group, data, pick('pg', values.pg), replicate, logger)
      : undefined;
  const join = values.join === true || file.join === true;
  // The inspector and the metrics read the node's status, which exists once it has started.
  let node: NodeRuntime | undefined;
  const nodeStatus = () => {
    if (node === undefined) throw new Error('the node has not started');
    return node.status();
  };
  const inspector = new NodeInspector({
    transport,
    group,
    nodeId: id,
    summary: () => nodeSummary(nodeStatus()),
  });
  const metrics =
    metricsPort === undefined
      ? undefined
      : new NodeMetrics({ group, nodeId: id, status: nodeStatus, transport });
  node = await NodeRuntime.start({
    group,
    nodeId: id,
    peers,
    ...(join ? { join } : {}),
    transport,
    dataDir: data,
    logger,
    ...(sql === undefined ? { machine: machine! } : { asyncMachine: sql.machine }),
    ...(snapshotEvery === undefined ? {} : { snapshotEvery }),
    ...(retainSlots === undefined ? {} : { retainSlots }),
    ...(maxBatch === undefined ? {} : { maxBatch }),
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    inspection: inspector,
    ...(metrics === undefined
      ? {}
      : { metrics, statusExtra: () => ({ metrics: metrics.snapshot() }) }),
  });
  const runtime = node;
  const servedMetricsPort =
    metricsPort === undefined ? undefined : await metrics!.serve(metricsPort);
  const frontEnd =
    sql === undefined || sqlPort === undefined
      ? undefined
      : await SqlFrontEnd.start({
          port: sqlPort,
          group,
          nodeId: id,
          transport,
          connectionString: sql.connectionString,
          replicated: sql.machine.replicatedTables,
          local: (write) => runtime.write(write),
        });
  logger.info(
    {
      peers,
      machine: machineName,
      ...(frontEnd === undefined ? {} : { sqlPort: frontEnd.port }),
      ...(servedMetricsPort === undefined ? {} : { metricsPort: servedMetricsPort }),
    },
    'node started',
  );
  await stopRequested;
  logger.info('stopping');
  await frontEnd?.stop();
  inspector.stop();
  await metrics?.stop();
  await node.stop();
  await sql?.database?.stop();
  await transport.drain().catch(() => undefined);
}

/**
 * The SQL machine on the database given with --pg, or on an embedded PostgreSQL kept in
 * DATA/postgres when none is given.
 */
async function openSqlMachine(
  group: string,
  data: string,
  url: string | undefined,
  replicated: readonly string[],
  logger: Logger,
): Promise<{
  machine: SqlMachine;
  database: EmbeddedDatabase | undefined;
  connectionString: string;
}> {
  const database =
    url === undefined
      ? await startEmbeddedPostgres(join(data, 'postgres'), {
          onLog: (line) => logger.debug({ postgres: line }),
        })
      : undefined;
  const connectionString = url ?? database!.url;
  logger.info(
    { postgres: database === undefined ? 'given' : 'embedded', replicated },
    'sql machine',
  );
  return {
    machine: await SqlMachine.open({ connectionString, group, replicated }),
    database,
    connectionString,
  };
}

async function kv(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = options(rest, {
    consistency: { type: 'string' },
    absent: { type: 'boolean' },
  } as const);
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.kv);
  await withClient(values.nats, values.group, async (client) => {
    const need = (n: number): string[] => {
      if (positionals.length !== n) throw new UsageError(`kv ${verb} takes ${n} argument(s)`);
      return positionals;
    };
    switch (verb) {
      case 'put': {
        const [key, value] = need(2);
        const answer = await client.put(key!, value!);
        return print(values.json, answer, `OK (slot ${answer.slot})`);
      }
      case 'get': {
        const [key] = need(1);
        const answer = await client.get(key!, (values.consistency ?? 'strong') as ReadConsistency);
        const result = answer.result as { found: boolean; value?: string };
        return print(values.json, answer, result.found ? String(result.value) : '(not found)');
      }
      case 'delete': {
        const [key] = need(1);
        const answer = await client.delete(key!);
        return print(
          values.json,
          answer,
          (answer.result as { found: boolean }).found ? 'deleted' : '(not found)',
        );
      }
      case 'cas': {
        const [key, expect, value] = need(3);
        const answer = await client.cas(key!, values.absent ? null : expect!, value!);
        return print(
          values.json,
          answer,
          (answer.result as { swapped: boolean }).swapped ? 'swapped' : 'not swapped',
        );
      }
      default:
        throw new UsageError(`unknown kv operation ${verb}; use put, get, delete or cas`);
    }
  });
}

/** `synod write --group G VALUE`: appends to a group running the log machine. */
async function write(args: string[]): Promise<void> {
  const { values, positionals } = options(args, {});
  if (values.help) return void console.log(USAGE.write);
  if (positionals.length !== 1) throw new UsageError('write takes one VALUE');
  await withClient(values.nats, values.group, async (client) => {
    const answer = await client.append(positionals[0]!);
    const { index } = answer.result as { index: number };
    print(values.json, answer, `appended at index ${index} (slot ${answer.slot})`);
  });
}

/** `synod read --group G`: the values of a group running the log machine, one per line. */
async function read(args: string[]): Promise<void> {
  const { values } = options(args, {
    consistency: { type: 'string' },
    from: { type: 'string' },
    limit: { type: 'string' },
  } as const);
  if (values.help) return void console.log(USAGE.read);
  const number = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new UsageError(`--${flag} must be a whole number, got ${text}`);
    return n;
  };
  const from = number('from', values.from);
  const limit = number('limit', values.limit);
  await withClient(values.nats, values.group, async (client) => {
    const answer = await client.entries(
      { ...(from === undefined ? {} : { from }), ...(limit === undefined ? {} : { limit }) },
      (values.consistency ?? 'strong') as ReadConsistency,
    );
    const { entries } = answer.result as { entries: string[] };
    print(values.json, answer, entries.join('\n'));
  });
}

async function paxos(args: string[]): Promise<void> {
  const { values, positionals } = options(args, {});
  if (values.help) return void console.log(USAGE.paxos);
  if (positionals.length !== 2) throw new UsageError('paxos takes KEY and VALUE');
  await withClient(values.nats, values.group, async (client) => {
    const chosen = await client.paxos(positionals[0]!, positionals[1]!);
    print(values.json, { key: positionals[0], value: chosen }, chosen);
  });
}

async function status(args: string[]): Promise<void> {
  const { values } = options(args, { 'wait-ms': { type: 'string' } } as const);
  if (values.help) return void console.log(USAGE.status);
  await withClient(values.nats, values.group, async (_client, transport) => {
    const result = await transport.gather(
      `synod.${values.group}.status`,
      new TextEncoder().encode('{"digest":true}'),
      {
        timeoutMs: Number(values['wait-ms'] ?? 500),
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeRow,
      },
    );
    const nodes = [...result.replies].sort((a, b) => (a.node < b.node ? -1 : 1));
    const measured = metricsTable(nodes);
    const table = measured === '' ? statusTable(nodes) : `${statusTable(nodes)}\n\n${measured}`;
    print(
      values.json,
      nodes,
      nodes.length === 0 ? `no node of group ${values.group} answered` : table,
    );
  });
}

async function inspectCommand(args: string[]): Promise<void> {
  const { values } = options(args, { web: { type: 'string' } } as const);
  if (values.help) return void console.log(USAGE.inspect);
  // A bad --web fails before connecting.
  const web = values.web === undefined ? undefined : parseListen(values.web);
  const stop = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  await withClient(values.nats, values.group, (_client, transport) =>
    inspect({ transport, group: values.group!, json: values.json === true, web, stop }),
  );
}

/** `synod group join|leave --group G NODE`: pg_paxos's paxos_join_group, and its opposite. */
async function group(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = options(rest, {});
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.group);
  if (verb !== 'join' && verb !== 'leave')
    throw new UsageError(`unknown group operation ${verb}; use join or leave`);
  if (positionals.length !== 1) throw new UsageError(`group ${verb} takes one NODE`);
  const node = positionals[0]!;
  await withClient(values.nats, values.group, async (client) => {
    const answer = await (verb === 'join' ? client.join(node) : client.leave(node));
    const result = answer.result as { members: string[]; effectiveFromSlot: number };
    print(
      values.json,
      { members: result.members, slot: answer.slot, effectiveFromSlot: result.effectiveFromSlot },
      `members of ${values.group}: ${result.members.join(', ')} (from slot ${result.effectiveFromSlot})`,
    );
  });
}

/** `synod table replicate|list --group G [TABLE]`: the SQL machine's replicated tables. */
async function table(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = options(rest, { 'wait-ms': { type: 'string' } } as const);
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.table);
  // Usage first: a mistake is reported without connecting anywhere.
  if (verb !== 'replicate' && verb !== 'list')
    throw new UsageError(`unknown table operation ${verb}; use replicate or list`);
  if (verb === 'replicate' && positionals.length !== 1)
    throw new UsageError('table replicate takes one TABLE');
  if (verb === 'list' && positionals.length !== 0)
    throw new UsageError('table list takes no argument');
  const waitMs = Number(values['wait-ms'] ?? 500);
  if (!Number.isSafeInteger(waitMs) || waitMs < 1)
    throw new UsageError(
      `--wait-ms must be a whole number of milliseconds, got ${values['wait-ms']}`,
    );
  await withClient(values.nats, values.group, async (_client, transport) => {
    const group = values.group!;
    if (verb === 'list') {
      const nodes = await tablesOfEveryNode(transport, group, waitMs);
      return print(values.json, nodes, tablesText(group, nodes));
    }
    const done = await replicateTable(transport, group, positionals[0]!, waitMs);
    print(values.json, { table: done.table, slot: done.slot, nodes: done.nodes }, done.text);
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === 'help')
      console.log(USAGE.synod);
    else if (command === 'node' && rest[0] === 'start') await nodeStart(rest.slice(1));
    else if (command === 'node') console.log(USAGE['node start']);
    else if (command === 'kv') await kv(rest);
    else if (command === 'paxos') await paxos(rest);
    else if (command === 'write') await write(rest);
    else if (command === 'read') await read(rest);
    else if (command === 'status') await status(rest);
    else if (command === 'table') await table(rest);
    else if (command === 'group') await group(rest);
    else if (command === 'inspect') await inspectCommand(rest);
    else if (command === 'demo') {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          help: { type: 'boolean' },
          once: { type: 'boolean' },
          'no-sql': { type: 'boolean' },
        },
      });
      if (values.help) console.log(USAGE.demo);
      else await demo(values.once === true, values['no-sql'] !== true);
    } else throw new UsageError(`unknown command ${command}`);
    return 0;
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error instanceof TypeError &&
        'code' in error &&
        String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      console.error(`synod: ${error.message}\n\n${USAGE.synod}`);
      return 2;
    }
    if (
      error instanceof SynodError ||
      error instanceof TransportConnectError ||
      error instanceof InvalidNameError
    ) {
      console.error(`synod: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
