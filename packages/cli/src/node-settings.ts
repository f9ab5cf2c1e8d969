import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CommitProtocol } from '@synod/commit';
import { MACHINES, RUNTIME_NUMBERS, type StateMachineKind, TXN_PROTOCOLS } from '@synod/node';
import { assertGroupName, assertNodeId } from '@synod/protocol';
import type { CommonValues } from './command-line.js';
import { type ConfigFile, fileProblem } from './config-file.js';
import { type NatsConnection, natsConnection } from './nats-options.js';
import { assertCanListen, portNumber, wholeNumber } from './option-values.js';
import { OptionError, UsageError } from './usage.js';

/** `synod node start`'s own flags (parseArgs options), besides the common ones. */
export const NODE_FLAGS = {
  id: { type: 'string' },
  peers: { type: 'string' },
  data: { type: 'string' },
  'snapshot-every': { type: 'string' },
  'retain-slots': { type: 'string' },
  machine: { type: 'string' },
  'max-batch': { type: 'string' },
  'max-in-flight': { type: 'string' },
  pg: { type: 'string' },
  replicate: { type: 'string' },
  'sql-port': { type: 'string' },
  'sql-listen': { type: 'string' },
  'sql-tls-cert': { type: 'string' },
  'sql-tls-key': { type: 'string' },
  join: { type: 'boolean' },
  'metrics-port': { type: 'string' },
  'verify-every': { type: 'string' },
  'commit-protocol': { type: 'string' },
} as const;

type NodeValues = CommonValues & {
  readonly [K in keyof typeof NODE_FLAGS]?: (typeof NODE_FLAGS)[K]['type'] extends 'boolean'
    ? boolean | undefined
    : string | undefined;
};

/** Everything a node needs to start, checked. */
export interface NodeSettings {
  readonly id: string;
  /** The groups this process serves (--group G1,G2,...), each with its own log and leader. */
  readonly groups: readonly string[];
  /** The first of them: the only one of a SQL node. */
  readonly group: string;
  readonly peers: readonly string[];
  readonly join: boolean;
  readonly data: string;
  readonly nats: NatsConnection;
  /** The state machine: one of MACHINES, or the SQL machine (machine undefined). */
  readonly machineName: string;
  readonly machine: StateMachineKind | undefined;
  readonly replicate: readonly string[];
  /** --replicate by group: GROUP:TABLE entries, or every entry for the one group. */
  readonly replicateByGroup: ReadonlyMap<string, readonly string[]>;
  readonly pg: string | undefined;
  /** Where the SQL front end listens: --sql-listen HOST:PORT, or 127.0.0.1 with --sql-port. */
  readonly sqlListen: { readonly host: string; readonly port: number } | undefined;
  /** PEM files of the SQL front end's TLS certificate and key. */
  readonly sqlTls: { readonly cert: string; readonly key: string } | undefined;
  readonly metricsPort: number | undefined;
  readonly snapshotEvery: number | undefined;
  readonly retainSlots: number | undefined;
  /** How the transactions (kv `txn`) this node's groups coordinate commit. */
  readonly commitProtocol: CommitProtocol;
  readonly maxBatch: number | undefined;
  readonly maxInFlight: number | undefined;
  /** Seconds between the leader's verify writes (0: none). */
  readonly verifyEverySeconds: number | undefined;
}

/**
 * The node's settings from its flags, else --config, else the environment (NATS only), all
 * checked before anything connects or starts: names, numbers and port ranges, the ports free,
 * the data directory usable, the NATS files readable.
 */
export async function nodeSettings(values: NodeValues, config: ConfigFile): Promise<NodeSettings> {
  const id = values.id ?? config.string('id');
  // One group, or several (G1,G2 on the command line; a string or a list in --config).
  const groups = values.group?.split(',') ?? config.strings('group');
  const data = values.data ?? config.string('data');
  const peers = values.peers?.split(',') ?? config.strings('peers');
  if (id === undefined || groups === undefined || data === undefined || peers === undefined)
    throw new UsageError('--id, --group, --peers and --data are required (or in --config)');
  for (const group of groups) assertGroupName(group);
  if (new Set(groups).size !== groups.length)
    throw new OptionError(`--group names a group twice: ${groups.join(',')}`);
  const group = groups[0]!;
  assertNodeId(id);
  for (const peer of peers) assertNodeId(peer);
  const join = values.join === true || config.boolean('join') === true;
  if (!peers.includes(id) && !join)
    throw new OptionError(
      `--peers ${peers.join(',')} must include this node's --id ${id} (or start it with --join)`,
    );
  const number = (flag: keyof typeof NODE_FLAGS, key: string, min: number): number | undefined => {
    const text = (values[flag] as string | undefined) ?? config.numberText(key);
    if (text === undefined) return undefined;
    return wholeNumber(values[flag] === undefined ? config.describe(key) : `--${flag}`, text, min);
  };
  const port = (flag: 'sql-port' | 'metrics-port', key: string): number | undefined => {
    const text = values[flag] ?? config.numberText(key);
    if (text === undefined) return undefined;
    const name = values[flag] === undefined ? config.describe(key) : `--${flag}`;
    return portNumber(name, text, { zeroMeansAny: flag === 'metrics-port' });
  };
  const machineName = values.machine ?? config.string('machine') ?? 'kv';
  const machine = MACHINES[machineName];
  if (machine === undefined && machineName !== 'sql')
    throw new OptionError(
      `--machine must be one of ${[...Object.keys(MACHINES), 'sql'].join(', ')}, got ${machineName}`,
    );
  // A SQL node of several groups keeps its embedded PostgreSQL in DIR/postgres, beside DIR/GROUP.
  if (groups.length > 1 && machineName === 'sql' && groups.includes('postgres'))
    throw new OptionError(
      'a SQL node of several groups keeps its database in DIR/postgres: name no group "postgres"',
    );
  const commitProtocol =
    values['commit-protocol'] ?? config.string('commitProtocol') ?? 'paxos-commit';
  if (!(TXN_PROTOCOLS as readonly string[]).includes(commitProtocol))
    throw new OptionError(
      `--commit-protocol must be one of ${TXN_PROTOCOLS.join(', ')}, got ${commitProtocol}`,
    );
  const sqlListen = sqlAddress(values, config, port('sql-port', 'sqlPort'));
  if (sqlListen !== undefined && machineName !== 'sql')
    throw new OptionError(`${sqlListen.flag} needs --machine sql`);
  const cert = values['sql-tls-cert'] ?? config.string('sqlTlsCert');
  const key = values['sql-tls-key'] ?? config.string('sqlTlsKey');
  if ((cert === undefined) !== (key === undefined))
    throw new OptionError('--sql-tls-cert and --sql-tls-key go together');
  if (cert !== undefined && sqlListen === undefined)
    throw new OptionError('--sql-tls-cert needs --sql-port or --sql-listen');
  const replicate = (values.replicate?.split(',') ?? config.strings('replicate') ?? [])
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const replicateByGroup = tablesByGroup(groups, replicate);
  const settings: NodeSettings = {
    id,
    groups,
    group,
    peers,
    join,
    data,
    machineName,
    machine,
    replicate,
    replicateByGroup,
    pg: values.pg ?? config.string('pg'),
    sqlListen,
    sqlTls: cert === undefined || key === undefined ? undefined : { cert, key },
    metricsPort: port('metrics-port', 'metricsPort'),
    snapshotEvery: number('snapshot-every', 'snapshotEvery', RUNTIME_NUMBERS.snapshotEvery.min),
    retainSlots: number('retain-slots', 'retainSlots', RUNTIME_NUMBERS.retainSlots.min),
    maxBatch: number('max-batch', 'maxBatch', RUNTIME_NUMBERS.maxBatch.min),
    maxInFlight: number('max-in-flight', 'maxInFlight', 1),
    verifyEverySeconds: number('verify-every', 'verifyEvery', 0),
    commitProtocol: commitProtocol as CommitProtocol,
    nats: await natsConnection(values, config),
  };
  await assertUsableDataDirectory(data);
  if (sqlListen !== undefined)
    await assertCanListen(sqlListen.flag, sqlListen.host, sqlListen.port);
  for (const file of [cert, key])
    if (file !== undefined)
      await stat(file).catch(() => {
        throw new OptionError(`cannot read ${file} (--sql-tls-cert/--sql-tls-key)`);
      });
  if (settings.metricsPort !== undefined && groups.length > 1)
    throw new OptionError('--metrics-port serves one group: leave it out with several groups');
  if (settings.metricsPort !== undefined)
    await assertCanListen('--metrics-port', '127.0.0.1', settings.metricsPort);
  return settings;
}

/**
 * --sql-listen HOST:PORT (any address; IPv6 in brackets), or --sql-port PORT for 127.0.0.1.
 * Not both: they say the same thing.
 */
function sqlAddress(
  values: NodeValues,
  config: ConfigFile,
  loopbackPort: number | undefined,
): { host: string; port: number; flag: string } | undefined {
  const listen = values['sql-listen'] ?? config.string('sqlListen');
  if (listen === undefined)
    return loopbackPort === undefined
      ? undefined
      : { host: '127.0.0.1', port: loopbackPort, flag: '--sql-port' };
  if (loopbackPort !== undefined)
    throw new OptionError('--sql-port is --sql-listen 127.0.0.1:PORT: give one of them');
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (match === null)
    throw new OptionError(`--sql-listen takes HOST:PORT (IPv6 as [::1]:PORT), got ${listen}`);
  return {
    host: match[1] ?? match[2]!,
    port: portNumber('--sql-listen', match[3]!),
    flag: '--sql-listen',
  };
}

/**
 * --data is a directory, or can be made one: its nearest existing ancestor is a directory.
 * Nothing is created here; the node makes it when it starts.
 */
async function assertUsableDataDirectory(data: string): Promise<void> {
  for (let dir = resolve(data); ; dir = dirname(dir)) {
    try {
      if ((await stat(dir)).isDirectory()) return;
      throw new OptionError(
        dir === resolve(data)
          ? `--data ${data} is not a directory`
          : `--data ${data}: ${dir} is not a directory`,
      );
    } catch (error) {
      if (error instanceof OptionError) throw error;
      const code = (error as { code?: unknown }).code;
      // Not there (or below a file): look at its parent.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dir === dirname(dir))
        throw new OptionError(`--data ${data}: ${fileProblem(error)}`);
    }
  }
}

/**
 * --replicate's tables for each group: with one group, TABLE (or GROUP:TABLE); with several,
 * GROUP:TABLE, since each table belongs to one group.
 */
export function tablesByGroup(
  groups: readonly string[],
  entries: readonly string[],
): Map<string, string[]> {
  const byGroup = new Map(groups.map((g): [string, string[]] => [g, []]));
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const group =
      colon < 0 ? (groups.length === 1 ? groups[0]! : undefined) : entry.slice(0, colon);
    if (group === undefined)
      throw new OptionError(
        `--replicate ${entry}: a node of several groups names each table's group, as GROUP:TABLE (${groups[0]}:${entry})`,
      );
    const tables = byGroup.get(group);
    if (tables === undefined)
      throw new OptionError(
        `--replicate ${entry}: ${group} is not one of --group ${groups.join(',')}`,
      );
    const table = entry.slice(colon + 1);
    const other = groups.find((g) => g !== group && byGroup.get(g)!.includes(table));
    if (other !== undefined)
      throw new OptionError(
        `--replicate names ${table} for ${other} and ${group}: a table belongs to one group`,
      );
    tables.push(table);
  }
  return byGroup;
}
