import type { Logger } from '@synod/log';
import { PayloadTooLargeError, TransportClosedError } from '../errors.js';
import { InboxMux } from '../inbox-mux.js';
import { MuxedTransport } from '../muxed-transport.js';
import { assertPublishSubject, parseSubscription } from '../subjects.js';
import type {
  MessageHandler,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  TransportMessage,
  TransportStats,
} from '../types.js';
import type { Route, RouteTable } from './memory-routes.js';

export interface MemoryTransportOptions {
  readonly logger?: Logger;
}

/** One node's connection to a MemoryNetwork. Create it with network.connect(nodeId). */
export class MemoryTransport extends MuxedTransport {
  readonly kind = 'memory';
  readonly nodeId: string;
  readonly #network: RouteTable;
  readonly #routes = new Set<Route>();
  readonly #flushWaiters: (() => void)[] = [];
  #outstanding = 0;
  #closed = false;
  #published = 0;
  #received = 0;

  constructor(
    network: RouteTable,
    nodeId: string,
    inboxPrefix: string,
    options: MemoryTransportOptions,
  ) {
    super(new InboxMux(inboxPrefix, network.scheduler), options.logger);
    this.#network = network;
    this.nodeId = nodeId;
    this.#addRoute(this.mux.subscription, undefined, (message) =>
      this.mux.dispatch({ message, noResponders: false }),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    if (this.#closed) throw new TransportClosedError('publish');
    assertPublishSubject(subject);
    if (options.reply !== undefined) assertPublishSubject(options.reply);
    const limit = this.#network.maxPayloadBytes;
    if (data.length > limit) throw new PayloadTooLargeError(data.length, limit);
    const message: TransportMessage = {
      subject,
      // A copy, as a socket would make: the caller may reuse its buffer at once.
      data: data.slice(),
      ...(options.reply === undefined ? {} : { reply: options.reply }),
      ...(options.headers === undefined ? {} : { headers: Object.freeze({ ...options.headers }) }),
    };
    this.#published++;
    this.#outstanding++;
    this.#network.route(this, message, () => this.#settled());
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    if (this.#closed) throw new TransportClosedError('subscribe');
    const route = this.#addRoute(subject, options.queue, (message) =>
      this.runHandler(handler, message),
    );
    return {
      subject,
      unsubscribe: () => {
        this.#routes.delete(route);
        this.#network.removeRoute(route);
      },
    };
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportClosedError('flush'));
    if (this.#outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  async drain(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    await this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const route of this.#routes) this.#network.removeRoute(route);
    this.#routes.clear();
    this.mux.closeAll();
    for (const waiter of this.#flushWaiters.splice(0)) waiter();
  }

  stats(): TransportStats {
    return {
      published: this.#published,
      received: this.#received,
      reconnects: 0,
      handlerErrors: this.handlerErrors,
    };
  }

  /** @internal The network tells a requester that nobody subscribes to its subject. */
  receiveNoResponders(replySubject: string): void {
    if (this.#closed) return;
    this.mux.dispatch({
      message: { subject: replySubject, data: new Uint8Array(0) },
      noResponders: true,
    });
  }

  #addRoute(
    subject: string,
    queue: string | undefined,
    handler: (message: TransportMessage) => void,
  ): Route {
    const route: Route = {
      owner: this,
      tokens: parseSubscription(subject),
      queue,
      handler: (message) => {
        this.#received++;
        handler(message);
      },
      active: true,
    };
    this.#routes.add(route);
    this.#network.addRoute(route);
    return route;
  }

  #settled(): void {
    if (--this.#outstanding === 0) for (const waiter of this.#flushWaiters.splice(0)) waiter();
  }
}
