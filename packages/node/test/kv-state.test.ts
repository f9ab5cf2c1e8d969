import { describe, expect, it } from 'vitest';
import { KvState } from '../src/index.js';

const put = (key: string, value: string, seq: number) => ({
  clientId: 'c',
  seq,
  command: { op: 'put', key, value },
});

describe('KvState digest', () => {
  it('is equal for equal contents, whatever the order of writes, and differs otherwise', () => {
    const a = new KvState();
    const b = new KvState();
    a.applyWrite(put('x', '1', 1));
    a.applyWrite(put('y', '2', 2));
    b.applyWrite(put('y', '2', 1));
    b.applyWrite(put('x', '0', 2));
    expect(b.digest()).not.toBe(a.digest());
    b.applyWrite(put('x', '1', 3));
    expect(b.digest()).toBe(a.digest());
    a.applyWrite({ clientId: 'c', seq: 3, command: { op: 'delete', key: 'y' } });
    expect(a.digest()).not.toBe(b.digest());
    expect(new KvState().digest()).toBe('0'.repeat(32));
  });
});

describe('KvState snapshot', () => {
  it('restores the data, the digest and every client last result, so retries stay answered once', () => {
    const a = new KvState();
    a.applyWrite(put('x', '1', 1));
    a.applyWrite({
      clientId: 'd',
      seq: 4,
      command: { op: 'cas', key: 'x', expect: '1', value: '2' },
    });
    a.applyWrite({ clientId: 'e', seq: 1, command: { op: 'nope', key: 'x' } });
    const b = KvState.restore(a.snapshot());
    expect(b.digest()).toBe(a.digest());
    expect(b.read({ op: 'get', key: 'x' })).toEqual({ found: true, value: '2' });
    // A retry of an applied write gets its first result and changes nothing.
    expect(
      b.applyWrite({ clientId: 'd', seq: 4, command: { op: 'put', key: 'x', value: 'z' } }),
    ).toEqual({
      swapped: true,
    });
    expect(
      String(b.applyWrite({ clientId: 'e', seq: 1, command: { op: 'put', key: 'x', value: 'z' } })),
    ).toMatch(/unknown write operation/);
    expect(b.digest()).toBe(a.digest());
    expect(b.applyWrite(put('x', '3', 2))).toBeNull();
    expect(b.digest()).not.toBe(a.digest());
  });

  it('refuses bytes that are not a kv snapshot', () => {
    expect(() => KvState.restore(new Uint8Array([0xc0]))).toThrow(TypeError);
  });
});
