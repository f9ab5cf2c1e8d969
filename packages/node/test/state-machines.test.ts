import { describe, expect, it } from 'vitest';
import { KV, LOG, MAX_LOG_READ, ReplicatedState } from '../src/index.js';

const kv = (): ReplicatedState => new ReplicatedState(KV);

const put = (key: string, value: string, seq: number) => ({
  clientId: 'c',
  seq,
  command: { op: 'put', key, value },
});

describe('KvState digest', () => {
  it('is equal for equal contents, whatever the order of writes, and differs otherwise', () => {
    const a = kv();
    const b = kv();
    a.applyWrite(put('x', '1', 1));
    a.applyWrite(put('y', '2', 2));
    b.applyWrite(put('y', '2', 1));
    b.applyWrite(put('x', '0', 2));
    expect(b.digest()).not.toBe(a.digest());
    b.applyWrite(put('x', '1', 3));
    expect(b.digest()).toBe(a.digest());
    a.applyWrite({ clientId: 'c', seq: 3, command: { op: 'delete', key: 'y' } });
    expect(a.digest()).not.toBe(b.digest());
    expect(kv().digest()).toBe('0'.repeat(32));
  });
});

describe('KvState snapshot', () => {
  it('restores the data, the digest and every client last result, so retries stay answered once', () => {
    const a = kv();
    a.applyWrite(put('x', '1', 1));
    a.applyWrite({
      clientId: 'd',
      seq: 4,
      command: { op: 'cas', key: 'x', expect: '1', value: '2' },
    });
    a.applyWrite({ clientId: 'e', seq: 1, command: { op: 'nope', key: 'x' } });
    const b = ReplicatedState.restore(KV, a.snapshot());
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
    expect(() => ReplicatedState.restore(KV, new Uint8Array([0xc0]))).toThrow(TypeError);
  });
});

describe('log machine', () => {
  const append = (value: string, seq: number) => ({
    clientId: 'w',
    seq,
    command: { op: 'append', value },
  });

  it('appends opaque values in order and reads them back in pages', () => {
    const log = new ReplicatedState(LOG);
    expect(log.applyWrite(append('a', 1))).toEqual({ index: 0 });
    expect(log.applyWrite(append('{"not":"parsed"}', 2))).toEqual({ index: 1 });
    expect(log.applyWrite(append('c', 3))).toEqual({ index: 2 });
    expect(log.read({ op: 'entries' })).toEqual({
      entries: ['a', '{"not":"parsed"}', 'c'],
      from: 0,
      total: 3,
    });
    expect(log.read({ op: 'entries', from: 1, limit: 1 })).toEqual({
      entries: ['{"not":"parsed"}'],
      from: 1,
      total: 3,
    });
    // A retried append is applied once and gets its first index.
    expect(log.applyWrite(append('c', 3))).toEqual({ index: 2 });
    expect((log.read({ op: 'entries' }) as { total: number }).total).toBe(3);
  });

  it('has an order-sensitive digest and survives a snapshot', () => {
    const a = new ReplicatedState(LOG);
    const b = new ReplicatedState(LOG);
    a.applyWrite(append('x', 1));
    a.applyWrite(append('y', 2));
    b.applyWrite(append('y', 1));
    b.applyWrite(append('x', 2));
    expect(a.digest()).not.toBe(b.digest());
    const copy = ReplicatedState.restore(LOG, a.snapshot());
    expect(copy.digest()).toBe(a.digest());
    expect(copy.read({ op: 'entries' })).toEqual(a.read({ op: 'entries' }));
  });

  it('refuses unknown operations and bad ranges with a CommandError, the same on every replica', () => {
    const log = new ReplicatedState(LOG);
    expect(
      String(
        log.applyWrite({ clientId: 'w', seq: 1, command: { op: 'put', key: 'k', value: 'v' } }),
      ),
    ).toMatch(/log machine knows append/);
    expect(() => log.read({ op: 'get', key: 'k' })).toThrow(/reads with "entries"/);
    expect(() => log.read({ op: 'entries', from: -1 })).toThrow(/at least 0/);
    for (let i = 0; i < MAX_LOG_READ + 5; i++) log.applyWrite(append(String(i), i + 2));
    const page = log.read({ op: 'entries', limit: 10_000 }) as { entries: string[] };
    expect(page.entries).toHaveLength(MAX_LOG_READ);
  });

  it('will not restore a snapshot of another kind of machine', () => {
    const log = new ReplicatedState(LOG);
    log.applyWrite(append('a', 1));
    expect(() => ReplicatedState.restore(KV, log.snapshot())).toThrow(
      /every node of a group must run the same machine/,
    );
  });
});
