import { readFile } from 'node:fs/promises';
import {
  type ConnectionOptions,
  connect,
  createInbox,
  credsAuthenticator,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
} from '@nats-io/transport-node';
import type { Logger } from '@synod/log';
import {
  PayloadTooLargeError,
  TransportClosedError,
  TransportConnectError,
  TransportError,
  withoutUserinfo,
} from './errors.js';
import { InboxMux } from './inbox-mux.js';
import { MuxedTransport } from './muxed-transport.js';
import { realScheduler } from './scheduler.js';
import { assertPublishSubject, parseSubscription } from './subjects.js';
import type {
  MessageHandler,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportMessage,
  TransportStats,
} from './types.js';

export interface NatsTransportOptions {
  /**
   * One or more `nats://host:port` URLs; the client fails over among them. A URL may carry
   * `user:password@` or `token@`, used when no user, pass, token or credentials file is
   * given; nats.js only ever sees the URLs without them. A `tls://` URL turns TLS on.
   */
  readonly servers: string | readonly string[];
  readonly name?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** TLS settings, passed to nats.js (certFile, keyFile, caFile, ...). */
  readonly tls?: ConnectionOptions['tls'];
  /** Path of a NATS `.creds` file (JWT + nkey seed). */
  readonly credentialsFile?: string;
  /** Any further nats.js connection options; they override the settings above. */
  readonly connection?: Partial<ConnectionOptions>;
  readonly logger?: Logger;
}

/**
 * Connects to NATS. The connection reconnects forever (every 250 ms, with jitter) when its
 * server goes away, and nats.js re-sends our subscriptions when it is back. NATS is
 * at-most-once: what is published during an outage is lost, and the protocol retransmits.
 */
export async function connectNats(options: NatsTransportOptions): Promise<Transport> {
  const given = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  const servers = given.map(withoutUserinfo);
  const inUrls = given.map(credentialsInUrl).filter((c) => c !== undefined);
  const secrets = [options.pass, options.token, ...inUrls.flatMap((c) => [c.pass, c.token])].filter(
    (s) => s !== undefined,
  );
  const settings: ConnectionOptions = {
    servers,
    name: options.name ?? 'synod',
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    timeout: 5_000,
  };
  if (options.user !== undefined) settings.user = options.user;
  if (options.pass !== undefined) settings.pass = options.pass;
  if (options.token !== undefined) settings.token = options.token;
  if (options.tls !== undefined) settings.tls = options.tls;
  else if (given.some((url) => /^tls:\/\//i.test(url))) settings.tls = {};
  const explicitAuth =
    options.user !== undefined ||
    options.pass !== undefined ||
    options.token !== undefined ||
    options.credentialsFile !== undefined;
  let connection: NatsConnection;
  try {
    if (!explicitAuth && inUrls.length > 0) {
      const { user, pass, token } = sameCredentials(inUrls);
      if (user !== undefined) settings.user = user;
      if (pass !== undefined) settings.pass = pass;
      if (token !== undefined) settings.token = token;
    }
    if (options.credentialsFile !== undefined) {
      settings.authenticator = credsAuthenticator(await readFile(options.credentialsFile));
    }
    connection = await connect({ ...settings, ...options.connection });
  } catch (error) {
    throw new TransportConnectError(servers, error, secrets);
  }
  return new NatsTransport(connection, options.logger);
}

export interface UrlCredentials {
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

/**
 * `nats://user:pass@host` gives a user and password, `nats://token@host` a token (percent-
 * decoded; taken as written when that fails); undefined for a URL without credentials.
 */
export function credentialsInUrl(url: string): UrlCredentials | undefined {
  const bare = withoutUserinfo(url);
  if (bare === url) return undefined;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  // What the bare URL lacks: the userinfo and its '@'.
  const userinfo = url.slice(scheme.length, scheme.length + url.length - bare.length - 1);
  const colon = userinfo.indexOf(':');
  return colon === -1
    ? { token: decodeUserinfo(userinfo) }
    : {
        user: decodeUserinfo(userinfo.slice(0, colon)),
        pass: decodeUserinfo(userinfo.slice(colon + 1)),
      };
}

/** Percent-decoded, as in a URL; taken as written when it is not valid percent-encoding. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One login for the connection: every URL that carries credentials must carry the same. */
function sameCredentials(found: readonly UrlCredentials[]): UrlCredentials {
  const first = found[0]!;
  const same = (c: UrlCredentials) =>
    c.user === first.user && c.pass === first.pass && c.token === first.token;
  if (!found.every(same)) throw new TransportError('the server URLs carry different credentials');
  return first;
}

function toRecord(hdrs: MsgHdrs | undefined): Record<string, string> | undefined {
  if (hdrs === undefined) return undefined;
  const record: Record<string, string> = {};
  for (const key of hdrs.keys()) record[key] = hdrs.get(key);
  return record;
}

function toHeaders(record: Readonly<Record<string, string>> | undefined): MsgHdrs | undefined {
  if (record === undefined) return undefined;
  const hdrs = natsHeaders();
  for (const [key, value] of Object.entries(record)) hdrs.set(key, value);
  return hdrs;
}

function toMessage(msg: Msg): TransportMessage {
  const headers = toRecord(msg.headers);
  return {
    subject: msg.subject,
    data: msg.data,
    ...(msg.reply === undefined || msg.reply === '' ? {} : { reply: msg.reply }),
    ...(headers === undefined ? {} : { headers }),
  };
}

class NatsTransport extends MuxedTransport {
  readonly kind = 'nats';
  readonly #nc: NatsConnection;
  readonly #maxPayload: number;
  #closed = false;
  #published = 0;
  #received = 0;
  #reconnects = 0;

  constructor(nc: NatsConnection, logger: Logger | undefined) {
    super(new InboxMux(createInbox(), realScheduler), logger);
    this.#nc = nc;
    this.#maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    nc.subscribe(this.mux.subscription, {
      callback: (error, msg) => {
        if (error !== null) return;
        this.#received++;
        this.mux.dispatch({ message: toMessage(msg), noResponders: msg.headers?.code === 503 });
      },
    });
    void this.#watchStatus();
    void nc.closed().then((error) => {
      if (error) this.logger?.error({ err: error }, 'NATS connection closed with an error');
      this.#markClosed();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    this.#assertOpen('publish');
    assertPublishSubject(subject);
    if (data.length > this.#maxPayload)
      throw new PayloadTooLargeError(data.length, this.#maxPayload);
    const headers = toHeaders(options.headers);
    try {
      this.#nc.publish(subject, data, {
        ...(options.reply === undefined ? {} : { reply: options.reply }),
        ...(headers === undefined ? {} : { headers }),
      });
    } catch (error) {
      throw this.#translate(error, 'publish');
    }
    this.#published++;
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    this.#assertOpen('subscribe');
    parseSubscription(subject);
    const sub = this.#nc.subscribe(subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (error, msg) => {
        if (error !== null) {
          this.logger?.warn({ err: error, subject }, 'subscription error');
          return;
        }
        this.#received++;
        this.runHandler(handler, toMessage(msg));
      },
    });
    return { subject, unsubscribe: () => sub.unsubscribe() };
  }

  async flush(): Promise<void> {
    if (this.#closed) throw new TransportClosedError('flush');
    try {
      await this.#nc.flush();
    } catch (error) {
      throw this.#translate(error, 'flush');
    }
  }

  async drain(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#nc.drain();
    } finally {
      this.mux.closeAll();
    }
  }

  async close(): Promise<void> {
    if (this.#nc.isClosed()) {
      this.#markClosed();
      return;
    }
    this.#markClosed();
    await this.#nc.close();
  }

  stats(): TransportStats {
    return {
      published: this.#published,
      received: this.#received,
      reconnects: this.#reconnects,
      handlerErrors: this.handlerErrors,
    };
  }

  #markClosed(): void {
    this.#closed = true;
    this.mux.closeAll();
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new TransportClosedError(operation);
  }

  #translate(error: unknown, operation: string): Error {
    if (this.#nc.isClosed() || this.#nc.isDraining()) {
      this.#markClosed();
      return new TransportClosedError(operation);
    }
    if (error instanceof Error) return error;
    return new TransportError(String(error));
  }

  async #watchStatus(): Promise<void> {
    for await (const status of this.#nc.status()) {
      switch (status.type) {
        case 'disconnect':
          this.logger?.warn({ server: status.server }, 'NATS disconnected');
          break;
        case 'reconnect':
          this.#reconnects++;
          this.logger?.info({ server: status.server }, 'NATS reconnected');
          break;
        case 'error':
          this.logger?.warn({ err: status.error }, 'NATS server error');
          break;
        default:
          break;
      }
    }
  }
}
