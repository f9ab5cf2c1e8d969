import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeRuntime } from '@synod/node';
import { type EmbeddedDatabase, SqlMachine, startEmbeddedPostgres } from '@synod/pg-applier';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import pg from 'pg';

const peers = ['a', 'b', 'c'];
const GROUP = 'coordinates';

/** What the SQL part of the demo started, for the demo to stop. */
export interface SqlDemo {
  stop(): Promise<void>;
}

/**
 * Seed 000 on this machine: three nodes of group `coordinates`, each with its own embedded
 * PostgreSQL (nothing to install), replicating writes of table `coordinates` through the
 * group's log. Prints what each node's table holds.
 */
export async function sqlDemo(
  dir: string,
  connect: (name: string) => Promise<Transport>,
  show: (what: string, outcome: string) => void,
): Promise<SqlDemo> {
  const databases: EmbeddedDatabase[] = [];
  const nodes: NodeRuntime[] = [];
  const transports: Transport[] = [];
  const stop = async (): Promise<void> => {
    for (const node of nodes) await node.stop();
    for (const t of transports) await t.close();
    for (const db of databases) await db.stop().catch(() => undefined);
  };
  try {
    // As root, the servers run as the OS user postgres: it must be able to enter the demo's directory.
    await chmod(dir, 0o755);
    const started = await Promise.all(
      peers.map((id) => startEmbeddedPostgres(join(dir, `${id}-postgres`))),
    );
    databases.push(...started);
    for (const [i, id] of peers.entries()) {
      const db = new pg.Client({ connectionString: started[i]!.url });
      await db.connect();
      // As in pg_paxos, every node creates the table; its writes then replicate.
      await db.query('CREATE TABLE IF NOT EXISTS coordinates (x int PRIMARY KEY, y int)');
      await db.end();
      const transport = await connect(`${GROUP}-${id}`);
      transports.push(transport);
      nodes.push(
        await NodeRuntime.start({
          group: GROUP,
          nodeId: id,
          peers,
          transport,
          dataDir: join(dir, `${GROUP}-${id}`),
          asyncMachine: await SqlMachine.open({
            connectionString: started[i]!.url,
            group: GROUP,
            replicated: ['coordinates'],
          }),
        }),
      );
    }
    while (!nodes.every((n) => n.leader !== undefined && n.leader === nodes[0]!.leader))
      await new Promise((r) => setTimeout(r, 20));
    const client = await connect('sql-demo-client');
    transports.push(client);
    let seq = 0;
    const ask = async (subject: string, body: unknown): Promise<Record<string, unknown>> => {
      const reply = await client.request(subject, new TextEncoder().encode(JSON.stringify(body)), {
        timeoutMs: 10_000,
      });
      return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    };
    // As PostgreSQL's psql shows an error: ERROR, its SQLSTATE, its message.
    const refusal = (error: { message: string; sqlState?: string }): string =>
      `ERROR ${error.sqlState ?? ''}${error.sqlState === undefined ? '' : ': '}${error.message}`.slice(
        0,
        60,
      );
    const sql = async (id: string, text: string): Promise<void> => {
      const answer = await ask(groupSubjects(GROUP).endpoint(id, 'write'), {
        clientId: 'sql-demo',
        seq: ++seq,
        command: { op: 'sql', sql: text },
      });
      show(
        `${text} (via ${id})`,
        answer.ok === true
          ? `${(answer.result as { command: string; rowCount: number }).command} ${(answer.result as { rowCount: number }).rowCount}`
          : `refused: ${refusal(answer.error as { message: string; sqlState?: string })}...`,
      );
    };
    const rows = async (id: string): Promise<string> => {
      const answer = await ask(groupSubjects(GROUP).endpoint(id, 'read'), {
        command: { op: 'query', sql: 'SELECT x, y FROM coordinates ORDER BY x' },
        consistency: 'strong',
      });
      const result = answer.result as { rows: { x: number; y: number }[] };
      return result.rows.map((r) => `(${r.x},${r.y})`).join(' ');
    };
    console.log(
      `\ngroup ${GROUP}: nodes ${peers.join(', ')}, each with its own embedded PostgreSQL`,
    );
    await sql('a', 'INSERT INTO coordinates VALUES (3, 3)');
    await sql('b', 'UPDATE coordinates SET x = x * 10');
    await sql('c', 'INSERT INTO coordinates VALUES (4, 4)');
    await sql('a', 'INSERT INTO coordinates VALUES (5, extract(epoch FROM now()))');
    for (const id of peers) show(`SELECT * FROM coordinates (on ${id})`, await rows(id));
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
