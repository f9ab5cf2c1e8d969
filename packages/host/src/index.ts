export {
  type Disk,
  GroupHost,
  type GroupHostOptions,
  type HostObserver,
  type InspectionSink,
  type Snapshot,
  type SnapshotHooks,
} from './group-host.js';
export {
  LeaderMode,
  type LeaderModeHost,
  type LeaderReadOutcome,
  type SubmitResult,
} from './leader-mode.js';
export {
  DEFAULT_HOST_LIMITS,
  type HostLimits,
  resolveHostLimits,
  SNAPSHOT_CHUNK_BYTES,
} from './limits.js';
export { DROP_REASONS, type DropReason, MAX_ROUND_STEP, PeerFilter } from './peer-filter.js';
