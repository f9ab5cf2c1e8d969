import type { KvInput, KvOutput } from './kv-model.js';
import type { Operation } from './model.js';
import type { RegisterInput, RegisterOutput } from './register-model.js';

interface Open<I> {
  readonly clientId: number;
  readonly input: I;
  readonly call: number;
}

/**
 * Jepsen's etcd register log (testdata/linearizability/README.md). Time is the line index. An
 * invocation without a matching completion (`:info`, or none at all) stays open to the end
 * with an unknown output; a timed-out read returns an unknown output.
 */
export function parseJepsenEtcdLog(text: string): Operation<RegisterInput, RegisterOutput>[] {
  const line = /jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;
  const open = new Map<number, Open<RegisterInput>>();
  const ops: Operation<RegisterInput, RegisterOutput>[] = [];
  text.split('\n').forEach((raw, time) => {
    const m = line.exec(raw);
    if (m === null) return;
    const process = Number(m[1]);
    const [type, f, arg] = [m[2]!, m[3]!, m[4]!];
    if (type === 'invoke') {
      const input: RegisterInput =
        f === 'read'
          ? { op: 'read' }
          : f === 'write'
            ? { op: 'write', value: Number(arg) }
            : { op: 'cas', expect: casArgs(arg)[0], value: casArgs(arg)[1] };
      open.set(process, { clientId: process, input, call: time });
      return;
    }
    const call = open.get(process);
    if (call === undefined || type === 'info') return; // :info: indeterminate, stays open
    let output: RegisterOutput | undefined;
    if (f === 'read')
      output = type === 'ok' ? { value: arg === 'nil' ? null : Number(arg) } : undefined;
    else if (f === 'write') {
      if (type !== 'ok') return;
      output = null;
    } else output = { ok: type === 'ok' };
    open.delete(process);
    ops.push({ ...call, output, return: time });
  });
  for (const call of open.values())
    ops.push({ ...call, output: undefined, return: Number.POSITIVE_INFINITY });
  return ops;
}

function casArgs(arg: string): [number, number] {
  const m = /^\[(\d+)\s+(\d+)\]$/.exec(arg);
  if (m === null) throw new SyntaxError(`not a cas argument: ${arg}`);
  return [Number(m[1]), Number(m[2])];
}

/** The key-value logs of testdata/linearizability/kv/ (EDN-like, one event per line). */
export function parseKvLog(text: string): Operation<KvInput, KvOutput>[] {
  const line =
    /^\{:process (\d+), :type :(invoke|ok|fail|info), :f :(get|put|append), :key "([^"]*)", :value (nil|"[^"]*")\}$/;
  const open = new Map<number, Open<KvInput>>();
  const ops: Operation<KvInput, KvOutput>[] = [];
  text.split('\n').forEach((raw, time) => {
    const m = line.exec(raw.trim());
    if (m === null) return;
    const process = Number(m[1]);
    const [type, f, key, rawValue] = [m[2]!, m[3]! as KvInput['op'], m[4]!, m[5]!];
    const value = rawValue === 'nil' ? undefined : rawValue.slice(1, -1);
    if (type === 'invoke') {
      open.set(process, {
        clientId: process,
        input: f === 'get' ? { op: 'get', key } : { op: f, key, value: value ?? '' },
        call: time,
      });
      return;
    }
    const call = open.get(process);
    if (call === undefined || type !== 'ok') return;
    open.delete(process);
    ops.push({ ...call, output: f === 'get' ? (value ?? '') : '', return: time });
  });
  for (const call of open.values())
    ops.push({ ...call, output: undefined, return: Number.POSITIVE_INFINITY });
  return ops;
}
