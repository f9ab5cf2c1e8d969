export { decodeBatch, encodeBatch } from './batch.js';
export { CommandError, KvState } from './kv-state.js';
export { NodeRuntime, type NodeRuntimeOptions } from './runtime.js';
