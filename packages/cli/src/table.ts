import { SynodClient } from '@synod/client';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';

/** What each node of the group says it replicates (a strong read on every node that answers). */
export interface NodeTables {
  readonly node: string;
  readonly tables?: readonly string[];
  readonly error?: string;
}

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const decode = (data: Uint8Array): Record<string, unknown> =>
  JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;

/**
 * Every node that answers status within `waitMs`, and the replicated tables it has applied.
 * The read is strong: a node first applies what a majority accepted, so a table replicated
 * just before shows on every node that can reach a majority.
 */
export async function tablesOfEveryNode(
  transport: Transport,
  group: string,
  waitMs: number,
): Promise<NodeTables[]> {
  const nodes = await nodesOf(transport, group, waitMs);
  return Promise.all(
    nodes.map(async (node): Promise<NodeTables> => {
      try {
        const reply = await transport.request(
          groupSubjects(group).endpoint(node, 'read'),
          encode({ command: { op: 'tables' }, consistency: 'strong' }),
          { timeoutMs: 10_000 },
        );
        const answer = decode(reply.data) as {
          ok: boolean;
          result?: { tables: string[] };
          error?: { message: string };
        };
        return answer.ok
          ? { node, tables: answer.result?.tables ?? [] }
          : { node, error: answer.error?.message ?? 'refused' };
      } catch (error) {
        return { node, error: error instanceof Error ? error.message : String(error) };
      }
    }),
  );
}

/** The nodes that answer status within `waitMs`, sorted. */
async function nodesOf(transport: Transport, group: string, waitMs: number): Promise<string[]> {
  const answered = await transport.gather(groupSubjects(group).status, encode({}), {
    timeoutMs: waitMs,
    map: (m) => String(decode(m.data).node),
  });
  return [...new Set(answered.replies)].sort();
}

/** A node whose own database has `table` (its definition is read there), if one answers. */
async function nodeWithTable(
  transport: Transport,
  group: string,
  nodes: readonly string[],
  table: string,
): Promise<string | undefined> {
  for (const node of nodes) {
    try {
      const reply = await transport.request(
        groupSubjects(group).endpoint(node, 'read'),
        encode({
          command: {
            op: 'query',
            sql: 'SELECT to_regclass($1) IS NOT NULL AS found',
            params: [table],
          },
          consistency: 'optimistic',
        }),
        { timeoutMs: 2_000 },
      );
      const answer = decode(reply.data) as {
        ok: boolean;
        result?: { rows?: { found?: boolean }[] };
      };
      if (answer.ok && answer.result?.rows?.[0]?.found === true) return node;
    } catch {
      // A node that does not answer cannot take the write either.
    }
  }
  return undefined;
}

/**
 * `synod table replicate`: the write goes to a node that has the table (the definition is
 * read from its database; it forwards the write to the leader), then every node that
 * answers is asked whether it has applied it.
 */
export async function replicateTable(
  transport: Transport,
  group: string,
  table: string,
  waitMs: number,
): Promise<{ table: string; slot: number | undefined; nodes: NodeTables[]; text: string }> {
  const maker = await nodeWithTable(
    transport,
    group,
    await nodesOf(transport, group, waitMs),
    table,
  );
  // No node has it: any node answers why (the table does not exist, or the name is bad).
  // A table with many rows stages them through the log before the write is answered.
  const client = new SynodClient({
    transport,
    group,
    timeoutMs: 120_000,
    ...(maker === undefined ? {} : { via: maker }),
  });
  const answer = await client.replicateTable(table);
  const nodes = await tablesOfEveryNode(transport, group, waitMs);
  const lines = [
    `replicated ${table} in group ${group}${answer.slot === undefined ? '' : ` (slot ${answer.slot})`}`,
  ];
  for (const n of nodes)
    lines.push(
      n.error !== undefined
        ? `  ${n.node}: did not confirm (${n.error})`
        : `  ${n.node}: ${n.tables?.includes(table) === true ? 'replicating' : 'not yet applied'}`,
    );
  return { table, slot: answer.slot, nodes, text: lines.join('\n') };
}

/** `synod table list`: every node's replicated tables, one line per node. */
export function tablesText(group: string, nodes: readonly NodeTables[]): string {
  if (nodes.length === 0) return `no node of group ${group} answered`;
  return nodes
    .map((n) =>
      n.error !== undefined
        ? `${n.node}: (${n.error})`
        : `${n.node}: ${n.tables?.length === 0 ? '(none)' : n.tables?.join(', ')}`,
    )
    .join('\n');
}
