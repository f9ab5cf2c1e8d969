// A node's numbers are checked once, with their relations, and resolved to the values in
// force: every part of the runtime reads those, none carries its own default.
import { describe, expect, it } from 'vitest';
import type { NodeRuntimeOptions } from '../src/runtime-options.js';
import { RUNTIME_NUMBERS, resolveRuntimeOptions } from '../src/runtime-options.js';

const base = {
  group: 'g',
  nodeId: 'a',
  peers: ['a'],
  dataDir: '/tmp/unused',
} as unknown as NodeRuntimeOptions; // the numbers are all this test looks at

describe('resolveRuntimeOptions', () => {
  it('fills in every default', () => {
    const resolved = resolveRuntimeOptions(base);
    for (const [name, { default: value }] of Object.entries(RUNTIME_NUMBERS))
      expect([name, (resolved as unknown as Record<string, number>)[name]]).toEqual([name, value]);
  });

  it('keeps what was given, and refuses a number below its least value, naming it', () => {
    expect(resolveRuntimeOptions({ ...base, maxBatch: 8 }).maxBatch).toBe(8);
    expect(() => resolveRuntimeOptions({ ...base, maxBatch: 0 })).toThrow(/^maxBatch must be/);
    expect(() => resolveRuntimeOptions({ ...base, retainSlots: 1.5 })).toThrow(/^retainSlots/);
    expect(() => resolveRuntimeOptions({ ...base, requestTimeoutMs: -1 })).toThrow(
      /^requestTimeoutMs/,
    );
    expect(() => resolveRuntimeOptions({ ...base, maxInFlight: 0 })).toThrow(/^maxInFlight/);
  });

  it('refuses numbers that contradict each other', () => {
    expect(() => resolveRuntimeOptions({ ...base, maxWriteBytes: 1024 * 1024 })).toThrow(
      /a write travels in one slot/,
    );
    expect(() =>
      resolveRuntimeOptions({ ...base, maxPendingBytes: 1024, maxPendingBytesPerClient: 2048 }),
    ).toThrow(/maxPendingBytesPerClient must be at most maxPendingBytes/);
  });
});
