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
  SNAPSHOT_CHUNK_BYTES,
  type SubmitResult,
} from './leader-mode.js';
export { DROP_REASONS, type DropReason, MAX_ROUND_STEP, PeerFilter } from './peer-filter.js';
