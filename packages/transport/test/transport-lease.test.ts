import { describe, expect, it } from 'vitest';
import { MemoryNetwork, TransportClosedError, TransportLease } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('a lease of a shared transport', () => {
  it('closing it ends its own subscriptions and use, and leaves the connection to the others', async () => {
    const network = new MemoryNetwork({ seed: 1 });
    const shared = network.connect('a');
    const sender = network.connect('b');
    const north = new TransportLease(shared);
    const south = new TransportLease(shared);
    const heard: string[] = [];
    north.subscribe('x', () => void heard.push('north'));
    south.subscribe('x', () => void heard.push('south'));
    sender.publish('x', bytes('1'));
    await settle();
    expect(heard.sort()).toEqual(['north', 'south']);

    await north.close();
    expect(north.closed).toBe(true);
    expect(shared.closed).toBe(false);
    expect(() => north.publish('x', bytes('2'))).toThrow(TransportClosedError);
    await expect(north.request('x', bytes('2'), { timeoutMs: 50 })).rejects.toThrow(
      TransportClosedError,
    );
    // The other lease still publishes and hears; the closed one hears nothing more.
    heard.length = 0;
    south.publish('x', bytes('3'));
    sender.publish('x', bytes('4'));
    await settle();
    expect(heard).toEqual(['south', 'south']);
    await shared.close();
    expect(south.closed).toBe(true);
  });
});
