export type { Admission, AsyncStateMachine, WriteResult } from './async-machine.js';
export { decodeBatch, encodeBatch } from './batch.js';
export { CommitNode } from './commit-node.js';
export type { CommitCounts, CommitGroup, CommitNodeOptions } from './commit-options.js';
export { commitSubjects, decodeCommit } from './commit-wire.js';
export { DataDirError } from './data-dir-errors.js';
export { type DataDirLock, LOCK_FILE, type LockOwner, lockDataDir } from './data-dir-lock.js';
export { IDENTITY_FILE, type Identity, readIdentity } from './identity-file.js';
export {
  type IdentityAnswer,
  type IdentityRequest,
  identitySubject,
  type Verdict,
} from './identity-messages.js';
export { KeyHeldError, KV } from './kv-machine.js';
export { TXN_PROTOCOLS } from './kv-transactions.js';
export { LOG, MAX_LOG_READ } from './log-machine.js';
export { MACHINES } from './machines.js';
export { NodeRuntime, type NodeRuntimeOptions, type RuntimeMetrics } from './runtime.js';
export {
  type ResolvedRuntimeOptions,
  RUNTIME_NUMBERS,
  resolveRuntimeOptions,
} from './runtime-options.js';
export {
  CommandError,
  ReplicatedState,
  type StateMachine,
  type StateMachineKind,
} from './state-machine.js';
