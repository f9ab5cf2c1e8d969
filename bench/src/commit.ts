// npm run bench:commit — transactions across groups on real processes (issue 18), counted
// against Gray and Lamport's Paxos Commit paper. For Paxos Commit and Faster Paxos Commit, at
// F = 1 and 2 (2F+1 `synod node start` processes, each serving groups g1..g5), a run of
// sequential transactions writing one key in each of N = 2..5 groups, coordinated by g1.
// Counted per committed transaction:
// - the commit protocol's messages, as the paper counts them (one per receiver), watched on
//   nats-server by a subscriber to `synod.>`: in all, and between different nodes (the paper's
//   co-located count leaves out a node's messages to itself);
// - the messages of the groups' own logs that carry the RMs' records (txn, txn_prepare,
//   txn_outcome: accept, accepted, decide; heartbeats left out), which the paper's RM writes
//   to a local disk and synod replicates;
// - message delays on the longest causal chain, as the nodes count them (CommitEnvelope.hops);
// - fsyncs: the commit acceptors' and the groups' logs'.
// Then latency and throughput of cross-group transactions against single-group puts.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PAPER } from '@synod/commit';
import { decodeCommit } from '@synod/node';
import { createPeerCodec, groupSubjects, type PeerMessage } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import { startSynod } from './cluster-procs.js';
import { describeMachine } from './machine.js';
import { BENCH_DIR, updateReadme, writeResults } from './report.js';
import { percentile, round } from './stats.js';

const TXNS = Number(process.env.BENCH_TXNS ?? 30);
const LOAD_SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const GROUPS = ['g1', 'g2', 'g3', 'g4', 'g5'];
const PROTOCOLS = ['2pc', 'paxos-commit', 'faster-paxos-commit'] as const;
type Protocol = (typeof PROTOCOLS)[number];

interface Status {
  readonly node: string;
  readonly leader: string | null;
  readonly fsyncs: number;
  readonly commit?: {
    readonly acceptorFsyncs: number;
    readonly lastDecision: { coordinator?: number; rm?: number };
  };
}

interface Row {
  readonly protocol: Protocol;
  readonly n: number;
  readonly f: number;
  readonly commitMessages: number;
  readonly commitMessagesBetweenNodes: number;
  readonly byKind: Record<string, number>;
  readonly logMessages: number;
  readonly logMessagesBetweenNodes: number;
  readonly delaysToCoordinator: number;
  readonly delaysToRm: number;
  readonly acceptorFsyncs: number;
  /** Bytes each node's commit.acceptor.log grew by (nothing compacts it yet). */
  readonly acceptorLogBytes: number;
  readonly logFsyncs: number;
  readonly latencyP50Ms: number;
}

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;

async function statuses(t: Transport, group: string, count: number): Promise<Status[]> {
  const { replies } = await t.gather(groupSubjects(group).status, enc({}), {
    timeoutMs: 500,
    map: (m) => dec(m.data) as unknown as Status,
    until: (r) => r.length === count,
  });
  return [...replies];
}

/**
 * Counts what crosses nats-server: each published message once, turned into deliveries by
 * who receives that subject (every member for `commit.acceptor`, `acceptor` and `learn`; the
 * leader for `commit.coordinator` and `commit.rm`; one node for `*.node.<id>`).
 */
class Watcher {
  readonly byKind = new Map<string, number>();
  commit = 0;
  commitBetween = 0;
  log = 0;
  logBetween = 0;
  #leaders = new Map<string, string>();
  readonly #codec = createPeerCodec();
  constructor(
    readonly transport: Transport,
    readonly nodes: readonly string[],
  ) {
    transport.subscribe('synod.>', (m) => this.#see(m.subject, m.data));
  }
  reset(leaders: Map<string, string>): void {
    this.#leaders = leaders;
    this.byKind.clear();
    this.commit = this.commitBetween = this.log = this.logBetween = 0;
  }
  #see(subject: string, data: Uint8Array): void {
    const [, group, kind, ...rest] = subject.split('.');
    if (group === undefined || kind === undefined) return;
    if (kind === 'commit') {
      const { node: from, message } = decodeCommit(data);
      const to =
        rest[0] === 'acceptor'
          ? this.nodes
          : rest[0] === 'node'
            ? [rest[1]!]
            : [this.#leaders.get(group)!];
      this.commit += to.length;
      this.commitBetween += to.filter((n) => n !== from).length;
      const key = `${rest[0]} ${message.type}`;
      this.byKind.set(key, (this.byKind.get(key) ?? 0) + to.length);
      return;
    }
    if (kind !== 'acceptor' && kind !== 'learn' && kind !== 'node') return;
    if (kind === 'node' && rest.length !== 1) return; // a node's write/read endpoints: clients'
    let message: PeerMessage;
    try {
      message = this.#codec.decode(data);
    } catch {
      return;
    }
    if (message.type === 'heartbeat') return;
    const to = kind === 'node' ? [rest[0]!] : this.nodes;
    this.log += to.length;
    this.logBetween += to.filter((n) => n !== message.from).length;
  }
}

async function transaction(t: Transport, groups: readonly string[], id: string): Promise<number> {
  const started = performance.now();
  const reply = await t.request(
    groupSubjects('g1').write,
    enc({
      clientId: id,
      seq: 1,
      command: {
        op: 'txn',
        ops: groups.map((group) => ({ group, op: 'put', key: `k-${id}`, value: 'v' })),
      },
    }),
    { timeoutMs: 10_000 },
  );
  const answer = dec(reply.data) as { ok: boolean; result?: { committed?: boolean } };
  if (!answer.ok || answer.result?.committed !== true)
    throw new Error(`transaction ${id} did not commit: ${JSON.stringify(answer)}`);
  return performance.now() - started;
}

async function count(protocol: Protocol, f: number): Promise<Row[]> {
  const peers = Array.from({ length: 2 * f + 1 }, (_, i) => String.fromCharCode(97 + i));
  const synod = await startSynod(GROUPS, ['--commit-protocol', protocol], [], peers);
  const rows: Row[] = [];
  try {
    const t = synod.transport;
    const watcher = new Watcher(t, peers);
    for (let n = 2; n <= 5; n++) {
      const groups = GROUPS.slice(0, n);
      for (let i = 0; i < 5; i++) await transaction(t, groups, `warm-${protocol}-${f}-${n}-${i}`);
      // The RMs log their outcomes after the client hears: let the last ones land.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const leaders = new Map<string, string>();
      for (const g of GROUPS) leaders.set(g, (await statuses(t, g, peers.length))[0]!.leader!);
      const fsyncs = async () => {
        let log = 0;
        let acceptor = 0;
        for (const g of GROUPS)
          for (const s of await statuses(t, g, peers.length)) {
            log += s.fsyncs;
            if (g === 'g1') acceptor += s.commit?.acceptorFsyncs ?? 0;
          }
        return { log, acceptor };
      };
      const logBytes = () =>
        peers.reduce(
          (sum, id) => sum + statSync(join(synod.dataDir, id, 'commit.acceptor.log')).size,
          0,
        ) / peers.length;
      const before = await fsyncs();
      const bytesBefore = logBytes();
      watcher.reset(leaders);
      const latencies: number[] = [];
      let coordinatorDelays = 0;
      let rmDelays = 0;
      for (let i = 0; i < TXNS; i++) {
        latencies.push(await transaction(t, groups, `${protocol}-${f}-${n}-${i}`));
        await new Promise((resolve) => setTimeout(resolve, 30)); // the RMs' outcomes land
        const s = await statuses(t, 'g1', peers.length);
        coordinatorDelays = Math.max(
          coordinatorDelays,
          ...s.map((x) => x.commit?.lastDecision.coordinator ?? 0),
        );
        rmDelays = Math.max(rmDelays, ...s.map((x) => x.commit?.lastDecision.rm ?? 0));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const after = await fsyncs();
      const bytesAfter = logBytes();
      latencies.sort((a, b) => a - b);
      rows.push({
        protocol,
        n,
        f,
        commitMessages: round(watcher.commit / TXNS, 1),
        commitMessagesBetweenNodes: round(watcher.commitBetween / TXNS, 1),
        byKind: Object.fromEntries([...watcher.byKind].map(([k, v]) => [k, round(v / TXNS, 1)])),
        logMessages: round(watcher.log / TXNS, 1),
        logMessagesBetweenNodes: round(watcher.logBetween / TXNS, 1),
        delaysToCoordinator: coordinatorDelays,
        delaysToRm: rmDelays,
        acceptorFsyncs: round((after.acceptor - before.acceptor) / TXNS, 1),
        acceptorLogBytes: round((bytesAfter - bytesBefore) / TXNS, 0),
        logFsyncs: round((after.log - before.log) / TXNS, 1),
        latencyP50Ms: round(percentile(latencies, 0.5), 2),
      });
      console.log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    await synod.stop();
  }
  return rows;
}

/** Cross-group transactions against single-group puts, `clients` at once, on one cluster. */
async function throughput(clients: number): Promise<Record<string, number>> {
  const synod = await startSynod(GROUPS.slice(0, 2));
  try {
    const t = synod.transport;
    const run = async (what: 'put' | 'txn') => {
      const latencies: number[] = [];
      const end = performance.now() + LOAD_SECONDS * 1000;
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let i = 0; performance.now() < end; i++) {
            const id = `${what}-${clients}-${c}-${i}`;
            const started = performance.now();
            if (what === 'txn') await transaction(t, ['g1', 'g2'], id);
            else {
              const reply = await t.request(
                groupSubjects('g1').write,
                enc({ clientId: id, seq: 1, command: { op: 'put', key: id, value: 'v' } }),
                { timeoutMs: 10_000 },
              );
              if (dec(reply.data).ok !== true) throw new Error('put failed');
            }
            latencies.push(performance.now() - started);
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      return {
        perSecond: round(latencies.length / LOAD_SECONDS, 0),
        p50: round(percentile(latencies, 0.5), 2),
      };
    };
    await run('put'); // warm-up
    const put = await run('put');
    const txn = await run('txn');
    return {
      clients,
      putsPerSecond: put.perSecond,
      putP50Ms: put.p50,
      txnsPerSecond: txn.perSecond,
      txnP50Ms: txn.p50,
    };
  } finally {
    await synod.stop();
  }
}

function explain(rows: readonly Row[]): string {
  const lines = [
    "| protocol | N | F | commit messages (between nodes) | paper (co-located) | delays to RMs (coordinator) | paper | commit acceptor fsyncs, log bytes | groups' log messages, fsyncs | p50 ms |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const p = PAPER[r.protocol];
    lines.push(
      `| ${r.protocol} | ${r.n} | ${r.f} | ${r.commitMessages} (${r.commitMessagesBetweenNodes}) | ${p.messages(r.n, r.f)} (${p.colocatedMessages(r.n, r.f)}) | ${r.delaysToRm} (${r.delaysToCoordinator}) | ${p.delays} | ${r.acceptorFsyncs}, ${r.acceptorLogBytes ?? '-'} | ${r.logMessages}, ${r.logFsyncs} | ${r.latencyP50Ms} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  // BENCH_FROM=results/commit-<date>.json writes the section again from recorded data.
  const from = process.env.BENCH_FROM;
  let machine = describeMachine();
  let rows: Row[] = [];
  let load: Record<string, number>[];
  let file: string;
  if (from !== undefined) {
    const recorded = JSON.parse(readFileSync(join(BENCH_DIR, from), 'utf8')) as {
      machine: typeof machine;
      results: { rows: Row[]; load: Record<string, number>[] };
    };
    ({ machine } = recorded);
    ({ rows, load } = recorded.results);
    file = from;
  } else {
    for (const protocol of PROTOCOLS)
      for (const f of [1, 2]) rows.push(...(await count(protocol, f)));
    load = [await throughput(1), await throughput(16)];
    file = writeResults('commit', machine, {
      txns: TXNS,
      loadSeconds: LOAD_SECONDS,
      rows,
      load,
    });
  }
  const section = [
    '## Transactions across groups, counted against the paper (`npm run bench:commit`)',
    '',
    `${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}: 2F+1 \`synod node start\` processes serving g1..g5, ${TXNS} sequential transactions per row, each a put in each of N groups, coordinated by g1. Per committed transaction. Raw data: [${file}](${file}).`,
    '',
    explain(rows),
    '',
    'Every difference from the paper, measured here and closed-form checked in the simulator (`npm run sim:commit -- --count` counts the same machines without NATS):',
    '',
    "- **Two-phase commit** sends 3N (the paper 3N−1, whose initiating RM's BeginCommit is also its vote: here the client asks the coordinator, which asks all N RMs) in 3 delays (the paper 4: no BeginCommit). Its coordinator's outcome record is a `txn_decided` entry in the coordinating group's log, so the groups' log columns carry one entry more than Paxos Commit's, and a coordinator that takes over finds it: 2PC here does not block on a dead coordinator, because its log is replicated; the simulator's 2PC, whose coordinator has one disk, shows the blocking.",
    "- **Commit messages.** Paxos Commit sends N(6F+5): N requests to prepare (the paper's N−1 plus a BeginCommit: here the client asks the coordinator, which is no RM), each RM's phase 2a to all 2F+1 acceptors (the paper: F+1), each acceptor's answer to the RM that proposed (the paper has none; the RM needs it only when it would conclude alone, and the acceptor machine always answers), each acceptor's phase 2b *per instance* to the coordinator (the paper bundles an acceptor's 2b for all N instances into one message: N(2F+1) against F+1), and N outcomes. Faster Paxos Commit: N + N(2F+1)(N+3): the phase 2b per instance goes to the coordinator and all N RMs, unbundled, and there is no phase 3. A fraction above the formula is a resend or an RM's outcome query when a transaction took over 200 ms.",
    "- **Between nodes** leaves out a node's messages to itself (the paper's co-located count puts the coordinator and acceptors on RMs' machines): here every node serves every group, so the coordinating group's leader is an RM and an acceptor, and other groups' leaders may share a node.",
    '- **Delays.** 4 to the RMs for Paxos Commit and 3 for Faster (the paper 5 and 4): no BeginCommit hop. The coordinator knows one delay before the RMs (phase 3), and answers the client then.',
    "- **Durable writes.** The paper's RM writes its vote and outcome to its own disk; a synod RM is a group, whose record is a log entry replicated to 2F+1 acceptors: N `txn_prepare` and N `txn_outcome` entries, and the coordinating group's `txn` entry that numbers the transaction, each with its own accept, accepted and decide messages (the groups' log columns; heartbeats left out). The commit acceptors' fsyncs are fewer than their N(2F+1) acceptances because an acceptor's group commit writes the accepts that arrive together in one fsync. Their log bytes are what each node's `commit.acceptor.log` grows by per transaction: nothing compacts it yet.",
    '',
    'Cross-group transactions against single-group writes, on one cluster of three processes serving g1 and g2 (Paxos Commit, F = 1), `clients` loops at once for ' +
      LOAD_SECONDS +
      ' s each: a put in g1, against a transaction with a put in g1 and one in g2. A transaction is five log entries in two groups and 22 commit messages where a put is a share of one slot.',
    '',
    '| clients | single-group puts/s | put p50 ms | 2-group txns/s | txn p50 ms |',
    '|---:|---:|---:|---:|---:|',
    ...load.map(
      (l) =>
        `| ${l.clients} | ${l.putsPerSecond} | ${l.putP50Ms} | ${l.txnsPerSecond} | ${l.txnP50Ms} |`,
    ),
  ].join('\n');
  updateReadme('commit', section);
  console.log(section);
}

await main();
process.exit(0);
