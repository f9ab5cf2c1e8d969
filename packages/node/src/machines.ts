import { KV } from './kv-machine.js';
import { LOG } from './log-machine.js';
import type { StateMachineKind } from './state-machine.js';

/** The built-in state machines, by the name `synod node start --machine` takes. */
export const MACHINES: Readonly<Record<string, StateMachineKind>> = { kv: KV, log: LOG };
