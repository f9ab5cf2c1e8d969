import type { MemoryNetwork, Rng, VirtualScheduler } from '@synod/transport';
import type { SafetyChecker } from './checker.js';
import type { Scenario } from './scenario.js';
import type { TraceSink } from './trace.js';

export const GROUP = 'sim';

/** What the nodes, the nemesis, the workload and the checks of one seed's run all share. */
export interface SimWorld {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly scheduler: VirtualScheduler;
  readonly network: MemoryNetwork;
  readonly checker: SafetyChecker;
  /** Undefined when nobody listens, so that no trace line is built for nothing. */
  readonly trace: TraceSink | undefined;
  /** Every node, members or not. */
  readonly peers: readonly string[];
  /** The members the group starts with. */
  readonly founders: readonly string[];
  /** When the faults end and the network heals (simulated ms). */
  readonly healAt: number;
}

/** One client operation as the history records it; `return` is Infinity if it never returned. */
export interface KvOperation {
  readonly clientId: string;
  readonly input: {
    readonly op: 'get' | 'put' | 'append';
    readonly key: string;
    readonly value?: string;
  };
  readonly call: number;
  output: string | undefined;
  return: number;
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)]!;
}
