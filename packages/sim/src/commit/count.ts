import type { CommitProtocol, Outcome } from '@synod/commit';
import { COMMIT_RULES, PAPER } from '@synod/commit';
import { createRng, VirtualScheduler } from '@synod/transport';
import { CommitCluster } from './commit-cluster.js';

/** What one failure-free, committed transaction cost, counted as the paper counts. */
export interface CommitCount {
  readonly protocol: CommitProtocol;
  readonly rms: number;
  readonly f: number;
  /** Messages between processes until every RM knew the outcome, in all and by kind. */
  readonly messages: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** Message delays on the longest chain of causes to an RM's decision. */
  readonly delays: number;
  /** Records made durable on the way (the RMs' own outcome records apart). */
  readonly writes: number;
  readonly writesByKind: Readonly<Record<string, number>>;
}

/**
 * One transaction over `rms` RMs that all vote prepared, 2F+1 acceptors and one coordinator,
 * with no loss, no crash and short delays: the case the paper's table counts. The count stops
 * when the last RM decides, before any timer would send a message again.
 */
export function countCommit(protocol: CommitProtocol, rms: number, f: number): CommitCount {
  const scheduler = new VirtualScheduler();
  const rmIds = Array.from({ length: rms }, (_, i) => `rm${i + 1}`);
  const decided = new Map<string, Outcome>();
  const cluster = new CommitCluster({
    txid: 'tx',
    protocol,
    rms: rmIds,
    votes: new Map(rmIds.map((rm) => [rm, 'prepared'])),
    acceptors: Array.from({ length: 2 * f + 1 }, (_, i) => `acc${i + 1}`),
    coordinators: ['c1'],
    scheduler,
    rng: createRng(1),
    faults: { dropRate: 0, maxDelayMs: 0.5, fsyncMaxMs: 0.5 },
    rules: COMMIT_RULES,
    decided: (process, outcome) => void decided.set(process, outcome),
  });
  for (const id of cluster.processes.keys()) cluster.start(id);
  const allKnow = (): boolean => rmIds.every((rm) => decided.has(rm));
  while (!allKnow() && scheduler.step()) {
    // stepping
  }
  if (!rmIds.every((rm) => decided.get(rm) === 'committed'))
    throw new Error(`${protocol}: the failure-free transaction did not commit everywhere`);
  const writesByKind = Object.fromEntries(cluster.writesByKind);
  return {
    protocol,
    rms,
    f,
    messages: cluster.messages,
    byKind: Object.fromEntries(cluster.messagesByKind),
    delays: Math.max(...rmIds.map((rm) => cluster.depthAtDecision.get(rm) ?? 0)),
    writes: Object.entries(writesByKind)
      .filter(([kind]) => kind !== 'rm outcome')
      .reduce((sum, [, n]) => sum + n, 0),
    writesByKind,
  };
}

/** Counted against the paper, for N = 2..5 RMs and F = 1, 2: a markdown table. */
export function countTable(): string {
  const rows = [
    '| protocol | N | F | messages (paper) | delays (paper) | durable writes (paper) |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const protocol of ['2pc', 'paxos-commit', 'faster-paxos-commit'] as const)
    for (const f of protocol === '2pc' ? [0] : [1, 2])
      for (let n = 2; n <= 5; n++) {
        const c = countCommit(protocol, n, Math.max(f, 1));
        const paper = PAPER[protocol];
        rows.push(
          `| ${protocol} | ${n} | ${protocol === '2pc' ? '-' : f} | ${c.messages} (${paper.messages(n, f)}) | ${c.delays} (${paper.delays}) | ${c.writes} (${paper.writes(n, f)}) |`,
        );
      }
  return rows.join('\n');
}
