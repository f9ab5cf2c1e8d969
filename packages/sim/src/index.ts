// The effect executor the simulator drives lives in @synod/host (the node runtime uses it too).
export {
  type Disk,
  GroupHost,
  type GroupHostOptions,
  type HostObserver,
  LeaderMode,
  type Snapshot,
  type SnapshotHooks,
  type SubmitResult,
} from '@synod/host';
export * from './linearizability/index.js';
export { type BatchOptions, type BatchSummary, replayCommand, runSeeds } from './sim/batch.js';
export { SafetyChecker } from './sim/checker.js';
export type { MembershipShapes } from './sim/checks.js';
export { SimDisk } from './sim/disk.js';
export { runSeed, type SeedResult } from './sim/run.js';
export type { SimMode } from './sim/scenario.js';
export { chooseScenario, type Scenario, type ScenarioOptions } from './sim/scenario.js';
export type { KvOperation } from './sim/world.js';
