import {
  type CommitPlant,
  type CommitProtocol,
  commitRulesFor,
  type Outcome,
  type Vote,
} from '@synod/commit';
import { createRng, VirtualScheduler } from '@synod/transport';
import { CommitCluster } from './commit-cluster.js';

export interface CommitRunOptions {
  readonly protocol: CommitProtocol;
  readonly plant?: CommitPlant;
  readonly trace?: (line: string) => void;
}

export interface CommitScenario {
  readonly rms: number;
  /** Acceptors: 2F+1. */
  readonly f: number;
  readonly votes: Readonly<Record<string, Vote>>;
  readonly dropRate: number;
  readonly faultPhaseMs: number;
  /** The first coordinator dies right after it asked the RMs to prepare, and stays dead. */
  readonly coordinatorDies: boolean;
  /** Acceptors that stay dead after the heal (at most F). */
  readonly acceptorsLost: number;
}

export interface CommitSeedResult {
  readonly seed: number;
  readonly protocol: CommitProtocol;
  readonly scenario: CommitScenario;
  readonly violations: readonly string[];
  /** The outcome the RMs learned (undefined if none did). */
  readonly outcome: Outcome | undefined;
  /** RMs alive at the end that voted prepared and never learned the outcome. */
  readonly blocked: readonly string[];
  readonly messages: number;
}

const TXID = 'tx1';
/** After the heal, every live RM must know the outcome within this long (not for 2PC). */
const DECIDE_WITHIN_MS = 5_000;

/**
 * One seed of the commit simulator: a transaction over 2 to 5 RMs with 2F+1 acceptors (F = 1
 * or 2), votes drawn at random, message loss and delay, crashes and restarts of every kind of
 * process until the heal; after it, up to F acceptors and (often) the first coordinator stay
 * dead. Checked: every process that learns an outcome learns the same; committed only if
 * every RM made `prepared` durable; for Paxos Commit, every live RM learns the outcome. For
 * two-phase commit the last is not a violation but what the run shows: the RMs it blocks.
 */
export function runCommitSeed(seed: number, options: CommitRunOptions): CommitSeedResult {
  const rng = createRng(seed);
  const scenarioRng = rng.fork();
  const n = scenarioRng.int(2, 5);
  const f = scenarioRng.int(1, 2);
  const rms = Array.from({ length: n }, (_, i) => `rm${i + 1}`);
  const acceptors = Array.from({ length: 2 * f + 1 }, (_, i) => `acc${i + 1}`);
  const votes: Record<string, Vote> = {};
  for (const rm of rms) votes[rm] = scenarioRng.chance(0.8) ? 'prepared' : 'aborted';
  const scenario: CommitScenario = {
    rms: n,
    f,
    votes,
    dropRate: scenarioRng.chance(0.7) ? scenarioRng.next() * 0.1 : 0,
    faultPhaseMs: scenarioRng.int(50, 400),
    coordinatorDies: scenarioRng.chance(0.4),
    acceptorsLost: scenarioRng.int(0, f),
  };
  const coordinators = options.protocol === '2pc' ? ['c1'] : ['c1', 'c2'];
  const scheduler = new VirtualScheduler();
  const violations: string[] = [];
  const decisions = new Map<string, Outcome>();
  const trace = options.trace;
  const cluster = new CommitCluster({
    txid: TXID,
    protocol: options.protocol,
    rms,
    votes: new Map(Object.entries(votes)),
    acceptors,
    coordinators,
    scheduler,
    rng: rng.fork(),
    faults: { dropRate: scenario.dropRate, maxDelayMs: 3, fsyncMaxMs: 3 },
    rules: commitRulesFor(options.plant),
    trace,
    decided: (process, outcome) => {
      const at = `t=${scheduler.now().toFixed(1)}ms`;
      for (const [other, earlier] of decisions)
        if (earlier !== outcome)
          violations.push(`${at} agreement: ${process} decided ${outcome}, ${other} ${earlier}`);
      decisions.set(process, outcome);
      if (outcome === 'committed') {
        const unprepared = rms.filter(
          (rm) =>
            !cluster
              .get(rm)
              .durable.some((r) => 'kind' in r && r.kind === 'vote' && r.vote === 'prepared'),
        );
        if (unprepared.length > 0)
          violations.push(
            `${at} validity: ${process} decided committed, but ${unprepared.join(', ')} never made prepared durable`,
          );
      }
    },
  });
  trace?.(`scenario ${JSON.stringify(scenario)} protocol ${options.protocol}`);
  const faultRng = rng.fork();
  for (const id of cluster.processes.keys()) cluster.start(id);
  if (scenario.coordinatorDies) scheduler.setTimer(0.01, () => cluster.crash('c1'));

  // Crashes and restarts of any process until the heal.
  let healed = false;
  const fault = (): void => {
    if (healed) return;
    const ids = [...cluster.processes.keys()];
    const p = cluster.get(ids[faultRng.int(0, ids.length - 1)]!);
    const deadForGood = scenario.coordinatorDies && p.id === 'c1';
    if (p.up) cluster.crash(p.id);
    else if (!deadForGood) cluster.start(p.id);
    scheduler.setTimer(5 + faultRng.next() * 40, fault);
  };
  scheduler.setTimer(faultRng.next() * 20, fault);
  const lost = new Set(acceptors.slice(0, scenario.acceptorsLost));
  scheduler.setTimer(scenario.faultPhaseMs, () => {
    healed = true;
    trace?.('HEAL');
    for (const p of cluster.processes.values()) {
      const stays = lost.has(p.id) || (scenario.coordinatorDies && p.id === 'c1');
      if (stays) cluster.crash(p.id);
      else cluster.start(p.id);
    }
  });

  const end = scenario.faultPhaseMs + DECIDE_WITHIN_MS;
  const liveRms = (): string[] => rms.filter((rm) => cluster.get(rm).up);
  const allKnow = (): boolean => healed && liveRms().every((rm) => decisions.has(rm));
  while (scheduler.now() < end && !allKnow() && scheduler.step()) {
    // stepping
  }
  const blocked = liveRms().filter((rm) => !decisions.has(rm) && votes[rm] === 'prepared');
  const undecided = liveRms().filter((rm) => !decisions.has(rm));
  if (options.protocol !== '2pc' && undecided.length > 0)
    violations.push(
      `progress: ${undecided.join(', ')} never learned the outcome (${scenario.acceptorsLost} of ${2 * f + 1} acceptors and ${scenario.coordinatorDies ? 'the first coordinator' : 'no coordinator'} lost)`,
    );
  const rmOutcomes = rms.map((rm) => decisions.get(rm)).filter((o) => o !== undefined);
  return {
    seed,
    protocol: options.protocol,
    scenario,
    violations,
    outcome: rmOutcomes[0],
    blocked,
    messages: cluster.messages,
  };
}
