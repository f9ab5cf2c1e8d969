// The leader's admission control: a burst of writes is answered BUSY with a retry hint beyond
// the byte bounds, instead of being held (issue: 200 writes of 250 KiB took a leader to 1.6 GB).
import type { SubmitResult } from '@synod/host';
import type { ClientResponse, ClientWrite } from '@synod/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher } from '../src/batcher.js';

const write = (clientId: string, seq: number): ClientWrite => ({
  clientId,
  seq,
  command: { op: 'put', key: 'k', value: 'v' },
});

function setup(limits: { maxPendingBytes: number; maxPendingBytesPerClient: number }) {
  const submitted: ((result: SubmitResult) => void)[] = [];
  const batcher = new Batcher({
    nodeId: 'a',
    maxBatch: 256,
    timeoutMs: 1_000,
    ...limits,
    submit: (_value, done) => void submitted.push(done),
    appliedThrough: () => -1,
  });
  const answers: ClientResponse[] = [];
  const send = (w: ClientWrite, bytes: number): void =>
    batcher.write(w, bytes, (response) => void answers.push(response));
  return { batcher, answers, send, submitted };
}

describe('leader admission control', () => {
  afterEach(() => vi.useRealTimers());

  it('answers BUSY with a retry hint once the leader holds its limit, and admits again once answered', () => {
    vi.useFakeTimers();
    const t = setup({ maxPendingBytes: 1_000, maxPendingBytesPerClient: 1_000 });
    t.send(write('c1', 1), 600);
    t.send(write('c2', 1), 300);
    t.send(write('c3', 1), 200); // 1,100 > 1,000
    expect(t.batcher.pendingBytes).toBe(900);
    expect(t.answers).toHaveLength(1);
    expect(t.answers[0]).toMatchObject({ ok: false, error: { code: 'BUSY' } });
    const busy = t.answers[0] as { error: { retryAfterMs: number } };
    expect(busy.error.retryAfterMs).toBeGreaterThanOrEqual(100);
    t.batcher.answer(write('c1', 1), { ok: true, slot: 0, result: null });
    expect(t.batcher.pendingBytes).toBe(300);
    t.send(write('c3', 1), 200);
    expect(t.batcher.pendingBytes).toBe(500);
    expect(t.answers).toHaveLength(2);
  });

  it('bounds what one client holds, while others still get in', () => {
    const t = setup({ maxPendingBytes: 10_000, maxPendingBytesPerClient: 500 });
    t.send(write('greedy', 1), 400);
    t.send(write('greedy', 2), 400);
    t.send(write('other', 1), 400);
    expect(t.answers).toEqual([
      expect.objectContaining({ ok: false, error: expect.objectContaining({ code: 'BUSY' }) }),
    ]);
    expect(t.batcher.pendingBytes).toBe(800);
  });

  it('always admits one write when nothing is held, however large', () => {
    const t = setup({ maxPendingBytes: 100, maxPendingBytesPerClient: 100 });
    t.send(write('c1', 1), 5_000);
    expect(t.answers).toEqual([]);
    expect(t.batcher.pendingBytes).toBe(5_000);
  });

  it('gives the bytes back when a write times out or the leader is deposed', () => {
    vi.useFakeTimers();
    const t = setup({ maxPendingBytes: 1_000, maxPendingBytesPerClient: 1_000 });
    t.send(write('c1', 1), 500);
    t.send(write('c2', 1), 400);
    vi.advanceTimersByTime(0); // the batch goes to the leader machine
    t.submitted[0]!({ ok: false, leader: 'b' });
    expect(t.answers.map((a) => (a.ok ? 'ok' : a.error.code))).toEqual([
      'NOT_LEADER',
      'NOT_LEADER',
    ]);
    expect(t.batcher.pendingBytes).toBe(0);
    t.send(write('c3', 1), 700);
    vi.advanceTimersByTime(1_000);
    expect(t.answers.at(-1)).toMatchObject({ ok: false, error: { code: 'NO_QUORUM' } });
    expect(t.batcher.pendingBytes).toBe(0);
  });
});
