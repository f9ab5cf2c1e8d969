import { chmodSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '@synod/testkit';
import { leaderOf, startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { pgbench, psql, type Row } from './pgbench.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = [1, 8];
const ACCOUNTS = 10_000;
const script = (second: 'n' | 's'): string => `\\set a random(1, ${ACCOUNTS})
\\set b random(1, ${ACCOUNTS})
\\set d random(-100, 100)
BEGIN;
UPDATE accounts_n SET balance = balance - :d WHERE id = :a;
UPDATE accounts_${second} SET balance = balance + :d WHERE id = :b;
END;
`;

async function main(): Promise<void> {
  const machine = describeMachine();
  const dir = await mkdtemp(join(tmpdir(), 'synod-bench-sql-commit-'));
  chmodSync(dir, 0o755); // the embedded servers run as the OS user postgres when we are root
  const oneGroup = join(dir, 'one-group.sql');
  const acrossGroups = join(dir, 'across-groups.sql');
  writeFileSync(oneGroup, script('n'));
  writeFileSync(acrossGroups, script('s'));
  const peers = ['a', 'b', 'c'];
  const ports = new Map<string, number>();
  for (const id of peers) ports.set(id, await freePort());
  // Both groups' leaders known, each node with its embedded PostgreSQL; stop() kills them all.
  const synod = await startSynod(['north', 'south'], (id) => [
    ...['--machine', 'sql', '--replicate', 'north:accounts_n,south:accounts_s'],
    ...['--sql-port', String(ports.get(id))],
  ]);
  try {
    for (const id of peers)
      await waitFor(
        `node ${id}`,
        async () => psql(ports.get(id)!, 'SELECT 1').trim() === '1',
        60_000,
      );
    for (const id of peers)
      for (const g of ['n', 's'])
        psql(
          ports.get(id)!,
          `CREATE TABLE IF NOT EXISTS accounts_${g} (id int PRIMARY KEY, balance int NOT NULL)`,
        );
    const north = leaderOf(synod.nats.url, 'north');
    const port = ports.get(north)!;
    for (const g of ['n', 's'])
      psql(
        port,
        `INSERT INTO accounts_${g} SELECT i, 0 FROM generate_series(1, ${ACCOUNTS}) i ON CONFLICT DO NOTHING`,
      );
    console.error(`north leader: ${north}, south leader: ${leaderOf(synod.nats.url, 'south')}`);
    const rows: Row[] = [];
    for (const clients of CLIENTS) {
      rows.push(pgbench(SECONDS, 'one group', port, clients, oneGroup, '', true));
      rows.push(pgbench(SECONDS, 'across groups', port, clients, acrossGroups, '', true));
    }
    const sums = peers.map((id) =>
      psql(
        ports.get(id)!,
        'SELECT (SELECT sum(balance) FROM accounts_n) + (SELECT sum(balance) FROM accounts_s)',
      ).trim(),
    );
    const prepared = peers.map((id) =>
      psql(ports.get(id)!, 'SELECT count(*) FROM pg_prepared_xacts').trim(),
    );
    console.error(`sums on the replicas: ${sums.join(', ')}; prepared: ${prepared.join(', ')}`);
    const file = writeResults('sql-commit', machine, { seconds: SECONDS, rows, sums, prepared });
    const at = (target: string, clients: number) =>
      rows.find((r) => r.target === target && r.clients === clients)!;
    const lines = CLIENTS.map((c) => {
      const one = at('one group', c);
      const across = at('across groups', c);
      return `| ${c} | ${one.tps.toLocaleString('en-US')} | ${across.tps.toLocaleString('en-US')} | ${round(across.tps / one.tps, 2)}x | ${one.latencyMs} | ${across.latencyMs} | ${round(100 * (one.retryRate ?? 0), 1)}% | ${round(100 * (across.retryRate ?? 0), 1)}% |`;
    });
    const table = [
      '## SQL transactions across groups (`npm run bench:sql-commit`)',
      '',
      `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: 3 \`synod node start --machine sql --group north,south\` processes over ${machine.natsServer}, each with one embedded PostgreSQL 15.18 holding both groups' tables; pgbench -M simple on the north leader's front end, ${SECONDS} s per row, 40001 retried (\`--max-tries 1000\`). Each transaction: two UPDATEs of random rows among ${ACCOUNTS.toLocaleString('en-US')}, both in north (one entry of north's log) or one in north and one in south (Paxos Commit: \`txn\` in north's log, \`txn_prepare\` and \`txn_outcome\` in each group's, each prepare a PostgreSQL PREPARE TRANSACTION on every replica). Raw data: [${file}](${file}).`,
      '',
      '| clients | one group tx/s | across groups tx/s | across/one | one group latency ms | across groups latency ms | one group retried | across retried |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...lines,
      '',
      `After the run, balances summed over both groups on each replica: ${sums.join(', ')} (0 at the start); prepared transactions left: ${prepared.join(', ')}.`,
      '',
      "Where the time goes: a transaction of one group is one log entry, batched with others into a slot and applied in the applier's batch, one flush for many. One across groups costs each group two slots of their own (`txn_prepare`, `txn_outcome`: PREPARE TRANSACTION ends the database transaction a batch would share), and on every replica four flushes per group, one after the other in the group's applier (PREPARE TRANSACTION, the slot's bookkeeping, COMMIT PREPARED, its bookkeeping), besides the coordinating group's `txn` entry and the commit acceptors' log. Under load these slots of their own queue behind each other: the gap widens from 1 to 8 clients. Batching outcomes (several COMMIT PREPARED per slot) and preparing several transactions in one slot are the next steps, not built.",
    ].join('\n');
    updateReadme('sql-commit', table);
    console.log(table);
  } finally {
    await synod.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
