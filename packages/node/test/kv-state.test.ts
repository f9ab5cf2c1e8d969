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
