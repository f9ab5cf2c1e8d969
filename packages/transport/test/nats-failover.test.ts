import {
  type NatsCluster,
  type NatsServer,
  startNatsCluster,
  startNatsServer,
} from '@synod/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectNats,
  NoRespondersError,
  type Transport,
  TransportConnectError,
} from '../src/index.js';
import { eventually } from './contract.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Publishes until the subscriber has seen a message sent after `mark`, since NATS drops what it cannot deliver. */
async function publishUntilSeen(
  from: Transport,
  subject: string,
  seen: string[],
  mark: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  while (!seen.some((s) => s.startsWith(mark))) {
    if (Date.now() > deadline)
      throw new Error(`no message with ${mark} arrived within ${timeoutMs} ms`);
    try {
      from.publish(subject, bytes(`${mark}${n++}`));
    } catch {
      // Disconnected: nats.js may refuse while reconnecting; try again shortly.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('NATS transport across server failures', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it('keeps a subscription receiving after its nats-server is killed and restarted on the same port', async () => {
    const server: NatsServer = await startNatsServer();
    cleanups.push(() => server.stop());
    const sub = await connectNats({ servers: server.url });
    const pub = await connectNats({ servers: server.url });
    cleanups.push(
      () => sub.close(),
      () => pub.close(),
    );
    const seen: string[] = [];
    sub.subscribe('synod.g.learn', (m) => void seen.push(str(m.data)));
    await sub.flush();
    await publishUntilSeen(pub, 'synod.g.learn', seen, 'before-');

    await server.kill('SIGKILL');
    await server.restart();
    await publishUntilSeen(pub, 'synod.g.learn', seen, 'after-');

    expect(sub.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect(pub.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect(sub.closed).toBe(false);
  });

  it('keeps a client on a 3-server cluster working after the server it was connected to is killed', async () => {
    const cluster: NatsCluster = await startNatsCluster(3);
    cleanups.push(() => cluster.stop());
    const [first, second, third] = cluster.servers;
    // noRandomize: the client connects to the first server listed, the one we then kill.
    const client = await connectNats({ servers: cluster.urls, connection: { noRandomize: true } });
    const responder = await connectNats({ servers: [second!.url, third!.url] });
    cleanups.push(
      () => client.close(),
      () => responder.close(),
    );
    responder.subscribe('synod.g.acceptor', (m) =>
      responder.publish(m.reply!, bytes(`ok:${str(m.data)}`)),
    );
    await responder.flush();
    // flush() says the responder's server has the subscription; the cluster tells the first
    // server over its routes a moment later, and until then a request there has no responders.
    let before: Awaited<ReturnType<Transport['request']>> | undefined;
    const routed = Date.now() + 5_000;
    while (before === undefined) {
      try {
        before = await client.request('synod.g.acceptor', bytes('1'), { timeoutMs: 2_000 });
      } catch (error) {
        if (!(error instanceof NoRespondersError) || Date.now() > routed) throw error;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(str(before.data)).toBe('ok:1');

    await first!.kill('SIGKILL');

    const deadline = Date.now() + 15_000;
    let answered = '';
    while (answered === '' && Date.now() < deadline) {
      try {
        answered = str(
          (await client.request('synod.g.acceptor', bytes('2'), { timeoutMs: 500 })).data,
        );
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(answered).toBe('ok:2');
    expect(client.stats().reconnects).toBeGreaterThanOrEqual(1);
  });

  it('fails to connect to a server that is not there with TransportConnectError naming it', async () => {
    const server = await startNatsServer();
    const url = server.url;
    await server.stop();
    const attempt = connectNats({ servers: url, connection: { timeout: 1_000 } });
    await expect(attempt).rejects.toBeInstanceOf(TransportConnectError);
    await expect(attempt).rejects.toThrow(url.replace('nats://', ''));
  });

  it('passes user and password through, and refuses wrong credentials with a typed error', async () => {
    const server = await startNatsServer({ extraArgs: ['--user', 'synod', '--pass', 's3cret'] });
    cleanups.push(() => server.stop());
    await expect(
      connectNats({ servers: server.url, user: 'synod', pass: 'wrong' }),
    ).rejects.toBeInstanceOf(TransportConnectError);
    const ok = await connectNats({ servers: server.url, user: 'synod', pass: 's3cret' });
    cleanups.push(() => ok.close());
    const got: string[] = [];
    ok.subscribe('synod.g.write', (m) => void got.push(str(m.data)));
    await ok.flush();
    ok.publish('synod.g.write', bytes('authenticated'));
    await eventually(() => got.length === 1);
  });

  it('fails with TransportConnectError, not a crash, when the credentials file cannot be read', async () => {
    const server = await startNatsServer();
    cleanups.push(() => server.stop());
    const attempt = connectNats({
      servers: server.url,
      credentialsFile: '/nonexistent/synod.creds',
    });
    await expect(attempt).rejects.toBeInstanceOf(TransportConnectError);
    await expect(attempt).rejects.toThrow(/synod\.creds/);
  });

  it('passes a token through', async () => {
    const server = await startNatsServer({ extraArgs: ['--auth', 'tok-123'] });
    cleanups.push(() => server.stop());
    await expect(connectNats({ servers: server.url, token: 'nope' })).rejects.toBeInstanceOf(
      TransportConnectError,
    );
    const ok = await connectNats({ servers: server.url, token: 'tok-123' });
    cleanups.push(() => ok.close());
    await ok.flush();
    expect(ok.closed).toBe(false);
  });
});
