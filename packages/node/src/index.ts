export type { Admission, AsyncStateMachine, WriteResult } from './async-machine.js';
export { decodeBatch, encodeBatch } from './batch.js';
export { KV } from './kv-machine.js';
export { LOG, MAX_LOG_READ } from './log-machine.js';
export { MACHINES } from './machines.js';
export { NodeRuntime, type NodeRuntimeOptions, type RuntimeMetrics } from './runtime.js';
export {
  CommandError,
  ReplicatedState,
  type StateMachine,
  type StateMachineKind,
} from './state-machine.js';
