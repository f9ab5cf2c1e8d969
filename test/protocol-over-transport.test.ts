// The protocol and the transports together: what one node encodes, another decodes, over a
// real nats-server and over the in-memory network; hostile bytes are dropped and counted
// while the receiver keeps serving; a plain JSON client (any language's NATS client) works.
import {
  ballot,
  createClientCodec,
  createPeerCodec,
  DecodeError,
  groupSubjects,
  type PeerMessage,
} from '@synod/protocol';
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats, MemoryNetwork, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const peer = createPeerCodec();
const client = createClientCodec();
const subjects = groupSubjects('mokka');

/** A toy acceptor endpoint: answers prepares, counts what it had to drop. */
function serveAcceptor(transport: Transport, nodeId: string): { dropped: DecodeError[] } {
  const dropped: DecodeError[] = [];
  transport.subscribe(subjects.acceptor, (m) => {
    let message: PeerMessage;
    try {
      message = peer.decode(m.data);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      dropped.push(error);
      return;
    }
    if (message.type !== 'prepare' || m.reply === undefined) return;
    const reply: PeerMessage = {
      type: 'promise',
      group: 'mokka',
      from: nodeId,
      ballot: message.ballot,
      ok: true,
      promised: message.ballot,
      accepted: [],
      more: false,
    };
    transport.publish(m.reply, peer.encode(reply));
  });
  return { dropped };
}

/** A toy write endpoint answering in the format it was asked in. */
function serveWrites(transport: Transport): void {
  transport.subscribe(subjects.write, (m) => {
    const format =
      m.headers?.['content-type'] === 'application/json' || m.data[0] === 0x7b ? 'json' : 'msgpack';
    let body: Uint8Array;
    try {
      const write = client.decodeWrite(m.data, m.headers?.['content-type']);
      body = client.encodeResponse(
        { ok: true, slot: write.seq, result: { echoed: write.command.op } },
        format,
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      body = client.encodeResponse({ ok: false, error: { code: 'BAD_REQUEST', message } }, format);
    }
    if (m.reply !== undefined) transport.publish(m.reply, body);
  });
}

function suite(
  name: string,
  start: () => Promise<{ connect: (id: string) => Promise<Transport>; stop: () => Promise<void> }>,
): void {
  describe(`protocol over ${name}`, () => {
    let env: Awaited<ReturnType<typeof start>>;
    let a: Transport;
    let b: Transport;
    let acceptor: { dropped: DecodeError[] };

    beforeAll(async () => {
      env = await start();
      a = await env.connect('a');
      b = await env.connect('b');
      acceptor = serveAcceptor(b, 'b');
      serveWrites(b);
      await b.flush();
    });
    afterAll(async () => {
      await a.close();
      await b.close();
      await env.stop();
    });

    it('carries a prepare and its promise between nodes intact', async () => {
      const prepare: PeerMessage = {
        type: 'prepare',
        group: 'mokka',
        from: 'a',
        ballot: ballot(3, 'a'),
        instance: 'leader',
      };
      const reply = peer.decode(
        (await a.request(subjects.acceptor, peer.encode(prepare), { timeoutMs: 2_000 })).data,
      );
      expect(reply).toEqual({
        type: 'promise',
        group: 'mokka',
        from: 'b',
        ballot: { round: 3, nodeId: 'a' },
        ok: true,
        promised: { round: 3, nodeId: 'a' },
        accepted: [],
        more: false,
      });
    });

    it('drops hostile bytes with a DecodeError and keeps serving', async () => {
      const hostile = [
        new Uint8Array([0xc1]),
        new TextEncoder().encode('{"v":1}'),
        peer
          .encode({
            type: 'heartbeat',
            group: 'mokka',
            from: 'a',
            ballot: ballot(1, 'a'),
            commitIndex: 5,
          })
          .slice(0, 10),
        new Uint8Array(4096).fill(0xdc),
      ];
      for (const bytes of hostile) a.publish(subjects.acceptor, bytes);
      const prepare: PeerMessage = {
        type: 'prepare',
        group: 'mokka',
        from: 'a',
        ballot: ballot(4, 'a'),
        instance: 7,
      };
      const reply = peer.decode(
        (await a.request(subjects.acceptor, peer.encode(prepare), { timeoutMs: 2_000 })).data,
      );
      expect(reply.type).toBe('promise');
      expect(acceptor.dropped.length).toBe(hostile.length);
      expect(acceptor.dropped.every((e) => e instanceof DecodeError)).toBe(true);
    });

    it('serves a plain JSON client, and answers a malformed one with a JSON BAD_REQUEST', async () => {
      const json = (s: string): Uint8Array => new TextEncoder().encode(s);
      const ok = await a.request(
        subjects.write,
        json('{"clientId":"c1","seq":7,"command":{"op":"put","key":"k","value":"v"}}'),
        { timeoutMs: 2_000 },
      );
      expect(JSON.parse(new TextDecoder().decode(ok.data))).toEqual({
        ok: true,
        slot: 7,
        result: { echoed: 'put' },
      });
      const bad = await a.request(
        subjects.write,
        json('{"clientId":"c1","seq":-1,"command":{"op":"put"}}'),
        { timeoutMs: 2_000 },
      );
      const answer = JSON.parse(new TextDecoder().decode(bad.data));
      expect(answer.ok).toBe(false);
      expect(answer.error.code).toBe('BAD_REQUEST');
      expect(answer.error.message).toMatch(/seq/);
    });
  });
}

suite('a real nats-server', async () => {
  const server: NatsServer = await startNatsServer();
  return {
    connect: (id) => connectNats({ servers: server.url, name: id }),
    stop: () => server.stop(),
  };
});

suite('the in-memory network', async () => {
  const network = new MemoryNetwork({ seed: 3 });
  return { connect: async (id) => network.connect(id), stop: async () => undefined };
});
