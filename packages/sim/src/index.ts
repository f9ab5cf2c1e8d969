export * from './linearizability/index.js';
export { type BatchOptions, type BatchSummary, replayCommand, runSeeds } from './sim/batch.js';
export { SafetyChecker } from './sim/checker.js';
export { SimDisk } from './sim/disk.js';
export {
  type Disk,
  GroupHost,
  type GroupHostOptions,
  type HostObserver,
  type Snapshot,
  type SnapshotHooks,
} from './sim/host.js';
export { LeaderMode, type SubmitResult } from './sim/leader-mode.js';
export { type KvOperation, runSeed, type SeedResult } from './sim/run.js';
export type { SimMode } from './sim/scenario.js';
export { chooseScenario, type Scenario, type ScenarioOptions } from './sim/scenario.js';
