import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidSubjectError,
  NoRespondersError,
  PayloadTooLargeError,
  type Transport,
  TransportClosedError,
  type TransportMessage,
  TransportTimeoutError,
} from '../src/index.js';

/** What a contract run needs from an implementation: transports for named nodes, and cleanup. */
export interface ContractHarness {
  connect(nodeId: string): Promise<Transport>;
  teardown(): Promise<void>;
}

const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Resolves once `predicate` holds, polling; fails the test after `timeoutMs`. */
export async function eventually(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The behaviour every Transport must have. Run against the NATS transport (real nats-server)
 * and the in-memory transport: a difference between them is a bug in one of them.
 */
export function transportContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`Transport contract: ${name}`, () => {
    let harness: ContractHarness;
    let open: Transport[] = [];
    let subjectSeq = 0;
    const connect = async (nodeId: string): Promise<Transport> => {
      const transport = await harness.connect(nodeId);
      open.push(transport);
      return transport;
    };
    // Each test uses its own subjects, so a late message from an earlier test cannot leak in.
    const subject = (suffix = 'x'): string => `synod.test${subjectSeq++}.${suffix}`;
    const collect = (transport: Transport, on: string, queue?: string): TransportMessage[] => {
      const got: TransportMessage[] = [];
      transport.subscribe(on, (m) => void got.push(m), queue === undefined ? {} : { queue });
      return got;
    };

    beforeAll(async () => {
      harness = await setup();
    });
    afterEach(async () => {
      await Promise.all(open.map((t) => t.close()));
      open = [];
    });
    afterAll(async () => {
      await harness.teardown();
    });

    it('delivers a published message, bytes and headers intact, to every subscriber', async () => {
      const [a, b, c] = await Promise.all([connect('a'), connect('b'), connect('c')]);
      const s = subject();
      const atB = collect(b, s);
      const atC = collect(c, s);
      await b.flush();
      await c.flush();
      a.publish(s, new Uint8Array([0, 1, 2, 255]), {
        headers: { 'content-type': 'application/json' },
      });
      await eventually(() => atB.length === 1 && atC.length === 1, 5_000, 'both subscribers');
      for (const m of [atB[0]!, atC[0]!]) {
        expect(Array.from(m.data)).toEqual([0, 1, 2, 255]);
        expect(m.subject).toBe(s);
        expect(m.headers?.['content-type']).toBe('application/json');
      }
    });

    it("matches '*' to one token and '>' to one or more trailing tokens", async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const base = subject('root');
      const star = collect(b, `${base}.*`);
      const tail = collect(b, `${base}.>`);
      await b.flush();
      for (const s of [`${base}.one`, `${base}.one.two`, base]) a.publish(s, bytes(s));
      await a.flush();
      await eventually(() => tail.length === 2 && star.length === 1, 5_000, 'wildcard deliveries');
      await new Promise((r) => setTimeout(r, 50));
      expect(star.map((m) => m.subject)).toEqual([`${base}.one`]);
      expect(tail.map((m) => m.subject).sort()).toEqual([`${base}.one`, `${base}.one.two`]);
    });

    it('gives each message to exactly one member of a queue group, and to every plain subscriber', async () => {
      const [a, b, c, d] = await Promise.all([
        connect('a'),
        connect('b'),
        connect('c'),
        connect('d'),
      ]);
      const s = subject();
      const q1 = collect(b, s, 'workers');
      const q2 = collect(c, s, 'workers');
      const plain = collect(d, s);
      await Promise.all([b.flush(), c.flush(), d.flush()]);
      for (let i = 0; i < 40; i++) a.publish(s, bytes(String(i)));
      await eventually(
        () => q1.length + q2.length === 40 && plain.length === 40,
        5_000,
        'queue deliveries',
      );
      const seen = [...q1, ...q2].map((m) => str(m.data)).sort();
      expect(new Set(seen).size).toBe(40);
    });

    it('stops delivering after unsubscribe', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      const got: string[] = [];
      const sub = b.subscribe(s, (m) => void got.push(str(m.data)));
      await b.flush();
      a.publish(s, bytes('before'));
      await eventually(() => got.length === 1);
      sub.unsubscribe();
      await b.flush();
      a.publish(s, bytes('after'));
      await a.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(got).toEqual(['before']);
    });

    it('keeps the order of one publisher to one subscriber', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      const got = collect(b, s);
      await b.flush();
      for (let i = 0; i < 500; i++) a.publish(s, bytes(String(i)));
      await eventually(() => got.length === 500);
      expect(got.map((m) => Number(str(m.data)))).toEqual(Array.from({ length: 500 }, (_, i) => i));
    });

    it('answers a request with the reply its responder published', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      b.subscribe(s, (m) =>
        b.publish(m.reply!, bytes(`echo:${str(m.data)}`), { headers: { from: 'b' } }),
      );
      await b.flush();
      const reply = await a.request(s, bytes('ping'), { timeoutMs: 2_000 });
      expect(str(reply.data)).toBe('echo:ping');
      expect(reply.headers?.from).toBe('b');
    });

    it('matches 512 concurrent requests to their own replies', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      b.subscribe(s, (m) => b.publish(m.reply!, m.data));
      await b.flush();
      const replies = await Promise.all(
        Array.from({ length: 512 }, (_, i) =>
          a.request(s, bytes(String(i)), { timeoutMs: 10_000 }),
        ),
      );
      expect(replies.map((r) => Number(str(r.data)))).toEqual(
        Array.from({ length: 512 }, (_, i) => i),
      );
    });

    it('fails a request nobody answers with TransportTimeoutError', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      b.subscribe(s, () => undefined);
      await b.flush();
      const started = Date.now();
      await expect(a.request(s, bytes('x'), { timeoutMs: 150 })).rejects.toBeInstanceOf(
        TransportTimeoutError,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('fails a request to a subject without subscribers with NoRespondersError', async () => {
      const a = await connect('a');
      await expect(
        a.request(subject('nobody'), bytes('x'), { timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
    });

    it('gathers replies until a quorum holds', async () => {
      const [a, b, c, d] = await Promise.all([
        connect('a'),
        connect('b'),
        connect('c'),
        connect('d'),
      ]);
      const s = subject();
      for (const [t, id] of [
        [b, 'b'],
        [c, 'c'],
        [d, 'd'],
      ] as const)
        t.subscribe(s, (m) => t.publish(m.reply!, bytes(id)));
      await Promise.all([b.flush(), c.flush(), d.flush()]);
      const result = await a.gather(s, bytes('q'), {
        timeoutMs: 5_000,
        map: (m) => str(m.data),
        until: (r) => r.length >= 2,
      });
      expect(result.satisfied).toBe(true);
      expect(result.timedOut).toBe(false);
      expect(result.replies.length).toBe(2);
      expect(new Set(result.replies).size).toBe(2);
    });

    it('returns the replies it has when a gather times out, ignoring replies map() rejects', async () => {
      const [a, b, c] = await Promise.all([connect('a'), connect('b'), connect('c')]);
      const s = subject();
      b.subscribe(s, (m) => b.publish(m.reply!, bytes('yes')));
      c.subscribe(s, (m) => c.publish(m.reply!, bytes('garbage')));
      await Promise.all([b.flush(), c.flush()]);
      const result = await a.gather(s, bytes('q'), {
        timeoutMs: 200,
        map: (m) => (str(m.data) === 'yes' ? 'yes' : undefined),
        until: (r) => r.length >= 2,
      });
      expect(result).toMatchObject({
        replies: ['yes'],
        satisfied: false,
        timedOut: true,
        noResponders: false,
      });
    });

    it('ends a gather at once when nobody subscribes', async () => {
      const a = await connect('a');
      const result = await a.gather(subject('nobody'), bytes('q'), {
        timeoutMs: 5_000,
        map: (m) => m,
      });
      expect(result).toMatchObject({
        replies: [],
        satisfied: false,
        timedOut: false,
        noResponders: true,
      });
    });

    it('rejects every call on a closed transport with TransportClosedError, and closes idempotently', async () => {
      const a = await connect('a');
      await a.close();
      await a.close();
      expect(a.closed).toBe(true);
      expect(() => a.publish(subject(), bytes('x'))).toThrow(TransportClosedError);
      expect(() => a.subscribe(subject(), () => undefined)).toThrow(TransportClosedError);
      await expect(a.request(subject(), bytes('x'), { timeoutMs: 100 })).rejects.toBeInstanceOf(
        TransportClosedError,
      );
      await expect(
        a.gather(subject(), bytes('x'), { timeoutMs: 100, map: (m) => m }),
      ).rejects.toBeInstanceOf(TransportClosedError);
      await expect(a.flush()).rejects.toBeInstanceOf(TransportClosedError);
    });

    it('fails requests in flight with TransportClosedError when closed', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      b.subscribe(s, () => undefined);
      await b.flush();
      const pending = a.request(s, bytes('x'), { timeoutMs: 5_000 });
      const gathering = a.gather(s, bytes('x'), { timeoutMs: 5_000, map: (m) => m });
      await a.flush();
      await a.close();
      await expect(pending).rejects.toBeInstanceOf(TransportClosedError);
      await expect(gathering).rejects.toBeInstanceOf(TransportClosedError);
    });

    it('keeps delivering after a handler throws, and counts the failure', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      const got: string[] = [];
      b.subscribe(s, (m) => {
        const value = str(m.data);
        if (value === 'bad') throw new Error('handler bug');
        got.push(value);
      });
      b.subscribe(s, async (m) => {
        if (str(m.data) === 'bad') throw new Error('async handler bug');
      });
      await b.flush();
      for (const v of ['one', 'bad', 'two']) a.publish(s, bytes(v));
      await eventually(() => got.length === 2);
      await eventually(() => b.stats().handlerErrors === 2, 2_000, 'two handler errors counted');
      expect(got).toEqual(['one', 'two']);
    });

    it('rejects invalid subjects and oversized payloads without sending anything', async () => {
      const a = await connect('a');
      for (const bad of ['', 'a..b', 'a b', 'a.*', 'a.>', '.a', 'a.']) {
        expect(() => a.publish(bad, bytes('x'))).toThrow(InvalidSubjectError);
      }
      for (const bad of ['', 'a..b', 'a.>.b', 'a.b*'])
        expect(() => a.subscribe(bad, () => undefined)).toThrow(InvalidSubjectError);
      expect(() => a.publish(subject(), new Uint8Array(2 * 1024 * 1024))).toThrow(
        PayloadTooLargeError,
      );
      expect(a.stats().published).toBe(0);
    });

    it('delivers what was published before drain, then closes', async () => {
      const [a, b] = await Promise.all([connect('a'), connect('b')]);
      const s = subject();
      const got = collect(b, s);
      await b.flush();
      for (let i = 0; i < 50; i++) a.publish(s, bytes(String(i)));
      await a.drain();
      expect(a.closed).toBe(true);
      await eventually(() => got.length === 50);
    });
  });
}
