import type { TxnOp } from '@synod/client';
import { groupSubjects } from '@synod/protocol';
import { print, withClient } from './client-session.js';
import { parseCommand } from './command-line.js';
import { consistency, wholeNumber } from './option-values.js';
import type { NodeRow } from './status-table.js';
import { metricsTable, statusTable } from './status-table.js';
import { listenForStop } from './stop-signals.js';
import { replicateTable, tablesOfEveryNode, tablesText } from './table.js';
import { USAGE, UsageError } from './usage.js';

// Every command checks its own arguments before withClient connects: a mistake never waits
// for NATS.

/** `synod kv put|get|delete|cas|txn --group G ...`: the kv state machine. */
export async function kv(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseCommand(rest, {
    consistency: { type: 'string' },
    absent: { type: 'boolean' },
  } as const);
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.kv);
  const arity: Record<string, number> = { put: 2, get: 1, delete: 1, cas: 3, txn: 1 };
  const wanted = arity[verb];
  if (wanted === undefined)
    throw new UsageError(`unknown kv operation ${verb}; use put, get, delete, cas or txn`);
  if (positionals.length !== wanted) throw new UsageError(`kv ${verb} takes ${wanted} argument(s)`);
  const read = consistency(values.consistency);
  const [key, second, third] = positionals as [string, string?, string?];
  const ops = verb === 'txn' ? txnOps(key) : [];
  await withClient(values, async (client) => {
    switch (verb) {
      case 'txn': {
        const answer = await client.txn(ops);
        const { txid, committed } = answer.result as { txid: string; committed: boolean };
        return print(values.json, answer, `${committed ? 'committed' : 'aborted'} (${txid})`);
      }
      case 'put': {
        const answer = await client.put(key, second!);
        return print(values.json, answer, `OK (slot ${answer.slot})`);
      }
      case 'get': {
        const answer = await client.get(key, read);
        const result = answer.result as { found: boolean; value?: string };
        return print(values.json, answer, result.found ? String(result.value) : '(not found)');
      }
      case 'delete': {
        const answer = await client.delete(key);
        const { found } = answer.result as { found: boolean };
        return print(values.json, answer, found ? 'deleted' : '(not found)');
      }
      default: {
        const answer = await client.cas(key, values.absent ? null : second!, third!);
        const { swapped } = answer.result as { swapped: boolean };
        return print(values.json, answer, swapped ? 'swapped' : 'not swapped');
      }
    }
  });
}

/** `kv txn`'s OPS: a JSON array of writes, each with its group (the nodes check each one). */
function txnOps(text: string): TxnOp[] {
  let ops: unknown;
  try {
    ops = JSON.parse(text);
  } catch {
    ops = undefined;
  }
  if (
    !Array.isArray(ops) ||
    ops.length === 0 ||
    !ops.every((o) => o !== null && typeof o === 'object')
  )
    throw new UsageError(
      'kv txn takes OPS, a JSON array of writes, e.g. \'[{"group":"g1","op":"put","key":"k","value":"v"}]\'',
    );
  return ops as TxnOp[];
}

/** `synod write --group G VALUE`: appends to a group running the log machine. */
export async function write(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, {});
  if (values.help) return void console.log(USAGE.write);
  if (positionals.length !== 1) throw new UsageError('write takes one VALUE');
  await withClient(values, async (client) => {
    const answer = await client.append(positionals[0]!);
    const { index } = answer.result as { index: number };
    print(values.json, answer, `appended at index ${index} (slot ${answer.slot})`);
  });
}

/** `synod read --group G`: the values of a group running the log machine, one per line. */
export async function read(args: string[]): Promise<void> {
  const { values } = parseCommand(args, {
    consistency: { type: 'string' },
    from: { type: 'string' },
    limit: { type: 'string' },
  } as const);
  if (values.help) return void console.log(USAGE.read);
  const from = values.from === undefined ? undefined : wholeNumber('--from', values.from, 0);
  const limit = values.limit === undefined ? undefined : wholeNumber('--limit', values.limit, 0);
  const level = consistency(values.consistency);
  await withClient(values, async (client) => {
    const answer = await client.entries(
      { ...(from === undefined ? {} : { from }), ...(limit === undefined ? {} : { limit }) },
      level,
    );
    const { entries } = answer.result as { entries: string[] };
    print(values.json, answer, entries.join('\n'));
  });
}

/** `synod paxos --group G KEY VALUE`: seed 001's paxos(k, v). */
export async function paxos(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, {});
  if (values.help) return void console.log(USAGE.paxos);
  if (positionals.length !== 2) throw new UsageError('paxos takes KEY and VALUE');
  const [key, value] = positionals as [string, string];
  await withClient(values, async (client) => {
    const chosen = await client.paxos(key, value);
    print(values.json, { key, value: chosen }, chosen);
  });
}

/** `synod status --group G`: every node that answers within --wait-ms. */
export async function status(args: string[]): Promise<void> {
  const { values } = parseCommand(args, { 'wait-ms': { type: 'string' } } as const);
  if (values.help) return void console.log(USAGE.status);
  const waitMs = wholeNumber('--wait-ms', values['wait-ms'] ?? '500', 1);
  await withClient(values, async (_client, transport, group) => {
    const result = await transport.gather(
      groupSubjects(group).status,
      new TextEncoder().encode('{"digest":true}'),
      {
        timeoutMs: waitMs,
        map: (m) => JSON.parse(new TextDecoder().decode(m.data)) as NodeRow,
      },
    );
    const nodes = [...result.replies].sort((a, b) => (a.node < b.node ? -1 : 1));
    const measured = metricsTable(nodes);
    const table = measured === '' ? statusTable(nodes) : `${statusTable(nodes)}\n\n${measured}`;
    print(values.json, nodes, nodes.length === 0 ? `no node of group ${group} answered` : table);
  });
}

/** `synod inspect --group G`: watches the group's actors until SIGINT or SIGTERM. */
export async function inspectCommand(args: string[]): Promise<void> {
  const { values } = parseCommand(args, { web: { type: 'string' } } as const);
  if (values.help) return void console.log(USAGE.inspect);
  // The inspector's views are loaded only for this command.
  const { inspect, parseListen } = await import('./inspect.js');
  const web = values.web === undefined ? undefined : parseListen(values.web);
  const stop = listenForStop();
  try {
    await withClient(values, (_client, transport, group) =>
      inspect({
        transport,
        group,
        json: values.json === true,
        web,
        stop: stop.requested.then(() => undefined),
      }),
    );
  } finally {
    stop.dispose();
  }
}

/** `synod group join|leave --group G NODE`: pg_paxos's paxos_join_group, and its opposite. */
export async function group(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseCommand(rest, {});
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.group);
  if (verb !== 'join' && verb !== 'leave')
    throw new UsageError(`unknown group operation ${verb}; use join or leave`);
  if (positionals.length !== 1) throw new UsageError(`group ${verb} takes one NODE`);
  const node = positionals[0]!;
  await withClient(values, async (client, _transport, name) => {
    const answer = await (verb === 'join' ? client.join(node) : client.leave(node));
    const result = answer.result as { members: string[]; effectiveFromSlot: number };
    print(
      values.json,
      { members: result.members, slot: answer.slot, effectiveFromSlot: result.effectiveFromSlot },
      `members of ${name}: ${result.members.join(', ')} (from slot ${result.effectiveFromSlot})`,
    );
  });
}

/** `synod table replicate|list --group G [TABLE]`: the SQL machine's replicated tables. */
export async function table(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseCommand(rest, { 'wait-ms': { type: 'string' } } as const);
  if (values.help || verb === undefined || verb === '--help') return void console.log(USAGE.table);
  if (verb !== 'replicate' && verb !== 'list')
    throw new UsageError(`unknown table operation ${verb}; use replicate or list`);
  if (verb === 'replicate' && positionals.length !== 1)
    throw new UsageError('table replicate takes one TABLE');
  if (verb === 'list' && positionals.length !== 0)
    throw new UsageError('table list takes no argument');
  const waitMs = wholeNumber('--wait-ms', values['wait-ms'] ?? '500', 1);
  await withClient(values, async (_client, transport, group) => {
    if (verb === 'list') {
      const nodes = await tablesOfEveryNode(transport, group, waitMs);
      return print(values.json, nodes, tablesText(group, nodes));
    }
    const done = await replicateTable(transport, group, positionals[0]!, waitMs);
    print(values.json, { table: done.table, slot: done.slot, nodes: done.nodes }, done.text);
  });
}
