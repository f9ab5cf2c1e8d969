// Credentials in server URLs are used, never handed on in the URL, and never shown in errors.
import { type NatsServer, startNatsServer } from '@synod/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, TransportConnectError } from '../src/index.js';

let userServer: NatsServer;
let tokenServer: NatsServer;
/** A password with the characters a URL must percent-encode. */
const PASSWORD = 'p@ss:w/rd';
const hostOf = (server: NatsServer) => server.url.replace('nats://', '');

beforeAll(async () => {
  userServer = await startNatsServer({ extraArgs: ['--user', 'synod', '--pass', PASSWORD] });
  tokenServer = await startNatsServer({ extraArgs: ['--auth', 'tok-123'] });
});

afterAll(async () => {
  await userServer?.stop();
  await tokenServer?.stop();
});

describe('connectNats with credentials in the URL', () => {
  it('logs in with nats://user:password@host (percent-encoded)', async () => {
    const url = `nats://synod:${encodeURIComponent(PASSWORD)}@${hostOf(userServer)}`;
    const transport = await connectNats({ servers: url });
    await transport.flush();
    expect(transport.closed).toBe(false);
    await transport.close();
  });

  it('logs in with nats://token@host', async () => {
    const transport = await connectNats({ servers: `nats://tok-123@${hostOf(tokenServer)}` });
    await transport.flush();
    expect(transport.closed).toBe(false);
    await transport.close();
  });

  it('prefers an explicit password over the one in the URL', async () => {
    const url = `nats://synod:wrong@${hostOf(userServer)}`;
    const transport = await connectNats({ servers: url, user: 'synod', pass: PASSWORD });
    expect(transport.closed).toBe(false);
    await transport.close();
  });

  it('fails with a message naming the server but not the password', async () => {
    const url = `nats://synod:hunter2-secret@${hostOf(userServer)}`;
    const attempt = connectNats({ servers: url, connection: { timeout: 2_000 } });
    await expect(attempt).rejects.toBeInstanceOf(TransportConnectError);
    const error = (await attempt.catch((e: unknown) => e)) as TransportConnectError;
    expect(error.message).toBe(
      `cannot connect to NATS at nats://${hostOf(userServer)}: Authorization Violation`,
    );
    expect(error.servers).toEqual([`nats://${hostOf(userServer)}`]);
  });

  it('refuses URLs that carry different credentials, showing neither', async () => {
    const attempt = connectNats({
      servers: [
        `nats://a:one-secret@${hostOf(userServer)}`,
        `nats://b:two-secret@${hostOf(userServer)}`,
      ],
    });
    await expect(attempt).rejects.toThrow(/carry different credentials/);
    await expect(attempt).rejects.not.toThrow(/secret/);
  });

  it('turns TLS on for a tls:// URL (and so fails on a server without TLS)', async () => {
    const attempt = connectNats({
      servers: `tls://${hostOf(tokenServer)}`,
      token: 'tok-123',
      connection: { timeout: 2_000 },
    });
    await expect(attempt).rejects.toThrow(/tls/i);
  });
});

describe('TransportConnectError', () => {
  it('blots out the userinfo of the servers and the secrets in the reason', () => {
    const error = new TransportConnectError(
      ['nats://u:pw-1@a:4222', 'tls://tok@b:4222/path', 'c:4222'],
      new Error('server said pw-1 and tok are wrong'),
      ['pw-1', 'tok'],
    );
    expect(error.message).toBe(
      'cannot connect to NATS at nats://a:4222, tls://b:4222/path, c:4222: server said *** and *** are wrong',
    );
  });
});
