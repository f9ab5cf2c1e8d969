export { type CheckOptions, checkOperations } from './check.js';
export {
  type KvInput,
  type KvOutput,
  kvModel,
  kvModelUnsplit,
  pruneUnobserved,
} from './kv-model.js';
export type { CheckResult, Model, Operation } from './model.js';
export { parseJepsenEtcdLog, parseKvLog } from './parsers.js';
export { type RegisterInput, type RegisterOutput, registerModel } from './register-model.js';
