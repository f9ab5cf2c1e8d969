import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type TraceEvent, VirtualScheduler } from '../src/index.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Run {
  readonly trace: string[];
  readonly received: string[];
}

/**
 * A small chatty workload over a faulty network on simulated time: three nodes publish to
 * one another and answer requests, while the seed decides drops, duplicates and delays.
 */
async function runWorkload(seed: number): Promise<Run> {
  const scheduler = new VirtualScheduler();
  const trace: string[] = [];
  const network = new MemoryNetwork({
    seed,
    scheduler,
    faults: {
      dropRate: 0.2,
      duplicateRate: 0.1,
      minDelayMs: 1,
      maxDelayMs: 20,
      reorderRate: 0.2,
      reorderDelayMs: 50,
    },
    trace: (e: TraceEvent) =>
      trace.push(`${e.at.toFixed(6)} ${e.kind} ${e.from}->${e.to} ${e.subject} ${e.bytes}`),
  });
  const nodes = ['a', 'b', 'c'].map((id) => ({ id, t: network.connect(id) }));
  const received: string[] = [];
  for (const { id, t } of nodes) {
    t.subscribe(
      'synod.g.learn',
      (m) => void received.push(`${id}<${str(m.data)}@${scheduler.now().toFixed(6)}`),
    );
    t.subscribe('synod.g.acceptor', (m) => t.publish(m.reply!, bytes(`${id}:${str(m.data)}`)), {
      queue: 'acceptors',
    });
  }
  for (let i = 0; i < 60; i++) {
    const { t } = nodes[i % 3]!;
    scheduler.setTimer(i * 3, () => {
      t.publish('synod.g.learn', bytes(`m${i}`));
      t.request('synod.g.acceptor', bytes(`r${i}`), { timeoutMs: 30 }).then(
        (r) => received.push(`reply ${str(r.data)}@${scheduler.now().toFixed(6)}`),
        (e: Error) => received.push(`${e.name} r${i}`),
      );
    });
  }
  await scheduler.runUntilIdleAsync();
  return { trace, received };
}

describe('in-memory fault model', () => {
  it('replays identically from the same seed', async () => {
    const first = await runWorkload(42);
    const second = await runWorkload(42);
    expect(first.trace.length).toBeGreaterThan(100);
    expect(second.trace).toEqual(first.trace);
    expect(second.received).toEqual(first.received);
  });

  it('takes a different course from a different seed', async () => {
    expect((await runWorkload(43)).trace).not.toEqual((await runWorkload(42)).trace);
  });

  it('exercises every fault: drops, duplicates, reordering and request timeouts all happen', async () => {
    const { trace, received } = await runWorkload(42);
    expect(trace.some((line) => line.includes(' drop '))).toBe(true);
    const learned = received.filter((r) => r.includes('<')).map((r) => r.split('@')[0]!);
    expect(new Set(learned).size).toBeLessThan(learned.length);
    const arrivals = (node: string, publisher: number): number[] =>
      learned
        .filter((r) => r.startsWith(`${node}<`))
        .map((r) => Number(r.slice(3)))
        .filter((i) => i % 3 === publisher);
    const reordered = ['a', 'b', 'c'].some((node) =>
      [0, 1, 2].some((p) =>
        arrivals(node, p).some((value, i, list) => i > 0 && value < list[i - 1]!),
      ),
    );
    expect(reordered).toBe(true);
    expect(received.some((r) => r.startsWith('TransportTimeoutError'))).toBe(true);
  });

  it('loses every message with dropRate 1, and delivers two copies with duplicateRate 1', () => {
    const scheduler = new VirtualScheduler();
    const lossy = new MemoryNetwork({ scheduler, faults: { dropRate: 1 } });
    const got: string[] = [];
    lossy.connect('b').subscribe('s', (m) => void got.push(str(m.data)));
    lossy.connect('a').publish('s', bytes('x'));
    scheduler.runUntilIdle();
    expect(got).toEqual([]);

    const doubling = new MemoryNetwork({ scheduler, faults: { duplicateRate: 1 } });
    doubling.connect('b').subscribe('s', (m) => void got.push(str(m.data)));
    doubling.connect('a').publish('s', bytes('y'));
    scheduler.runUntilIdle();
    expect(got).toEqual(['y', 'y']);
  });

  it('reorders messages when delays vary, and keeps FIFO order when they do not', () => {
    const order = (faults: ConstructorParameters<typeof MemoryNetwork>[0]): number[] => {
      const scheduler = new VirtualScheduler();
      const network = new MemoryNetwork({ ...faults, scheduler });
      const got: number[] = [];
      network.connect('b').subscribe('s', (m) => void got.push(Number(str(m.data))));
      const a = network.connect('a');
      for (let i = 0; i < 50; i++) a.publish('s', bytes(String(i)));
      scheduler.runUntilIdle();
      return got;
    };
    const fifo = order({ seed: 5 });
    expect(fifo).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const shuffled = order({ seed: 5, faults: { minDelayMs: 0, maxDelayMs: 10 } });
    expect([...shuffled].sort((x, y) => x - y)).toEqual(fifo);
    expect(shuffled).not.toEqual(fifo);
  });

  it('cuts traffic between partition sets, keeps it within a set, and heals', () => {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ scheduler });
    const got: Record<string, string[]> = { a: [], b: [], c: [] };
    const t = Object.fromEntries(['a', 'b', 'c'].map((id) => [id, network.connect(id)]));
    for (const id of ['a', 'b', 'c']) t[id]!.subscribe('s', (m) => void got[id]!.push(str(m.data)));
    network.partition(['a', 'b'], ['c']);
    t.a!.publish('s', bytes('split'));
    scheduler.runUntilIdle();
    expect(got).toEqual({ a: ['split'], b: ['split'], c: [] });
    network.heal();
    t.a!.publish('s', bytes('healed'));
    scheduler.runUntilIdle();
    expect(got.c).toEqual(['healed']);
  });

  it('times out a request whose reply is partitioned away, on simulated time', async () => {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ scheduler });
    const a = network.connect('a');
    const b = network.connect('b');
    b.subscribe('s', (m) => b.publish(m.reply!, bytes('pong')));
    network.partition(['a'], ['b']);
    const outcome = a.request('s', bytes('ping'), { timeoutMs: 100 }).then(
      () => 'answered',
      (e: Error) => `${e.name} at ${scheduler.now()}`,
    );
    scheduler.runUntilIdle();
    expect(await outcome).toBe('TransportTimeoutError at 100');
  });

  it('rejects fault settings outside their ranges', () => {
    const network = new MemoryNetwork();
    expect(() => network.configureFaults({ dropRate: 1.5 })).toThrow(RangeError);
    expect(() => network.configureFaults({ minDelayMs: 5, maxDelayMs: 1 })).toThrow(RangeError);
    expect(() => network.partition(['a'], ['a', 'b'])).toThrow(/two partition sets/);
  });
});
