import type { Logger } from '@synod/log';
import { TransportClosedError } from './errors.js';
import { checkTimeout, type InboxMux } from './inbox-mux.js';
import type {
  GatherOptions,
  GatherResult,
  MessageHandler,
  PublishOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportMessage,
  TransportStats,
} from './types.js';

/**
 * What the NATS and in-memory transports share: request and gather over one inbox mux, and
 * handlers whose failures are logged and counted instead of stopping delivery.
 */
export abstract class MuxedTransport implements Transport {
  abstract readonly kind: string;
  abstract get closed(): boolean;
  abstract publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  abstract subscribe(
    subject: string,
    handler: MessageHandler,
    options?: SubscribeOptions,
  ): Subscription;
  abstract flush(): Promise<void>;
  abstract drain(): Promise<void>;
  abstract close(): Promise<void>;
  abstract stats(): TransportStats;

  protected readonly mux: InboxMux;
  protected readonly logger: Logger | undefined;
  protected handlerErrors = 0;

  protected constructor(mux: InboxMux, logger: Logger | undefined) {
    this.mux = mux;
    this.logger = logger;
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<TransportMessage> {
    if (this.closed) return Promise.reject(new TransportClosedError('request'));
    checkTimeout(options.timeoutMs);
    return this.mux.request(subject, options.timeoutMs, (reply) =>
      this.#send(subject, data, reply, options.headers),
    );
  }

  gather<T>(
    subject: string,
    data: Uint8Array,
    options: GatherOptions<T>,
  ): Promise<GatherResult<T>> {
    if (this.closed) return Promise.reject(new TransportClosedError('gather'));
    checkTimeout(options.timeoutMs);
    return this.mux.gather(subject, options, (reply) =>
      this.#send(subject, data, reply, options.headers),
    );
  }

  protected runHandler(handler: MessageHandler, message: TransportMessage): void {
    try {
      const result = handler(message);
      if (result instanceof Promise)
        result.catch((error: unknown) => this.#handlerFailed(error, message));
    } catch (error) {
      this.#handlerFailed(error, message);
    }
  }

  #send(
    subject: string,
    data: Uint8Array,
    reply: string,
    headers: Readonly<Record<string, string>> | undefined,
  ): void {
    this.publish(subject, data, { reply, ...(headers === undefined ? {} : { headers }) });
  }

  #handlerFailed(error: unknown, message: TransportMessage): void {
    this.handlerErrors++;
    this.logger?.error({ err: error, subject: message.subject }, 'message handler failed');
  }
}
