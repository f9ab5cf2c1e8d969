export {
  InvalidSubjectError,
  NoRespondersError,
  PayloadTooLargeError,
  TransportClosedError,
  TransportConnectError,
  TransportError,
  TransportTimeoutError,
  withoutUserinfo,
} from './errors.js';
export { freeLoopbackPort } from './free-port.js';
export { type Fate, FaultModel, type FaultOptions } from './memory/fault-model.js';
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type TraceEvent,
} from './memory/memory-network.js';
export { MemoryTransport, type MemoryTransportOptions } from './memory/memory-transport.js';
export {
  connectNats,
  credentialsInUrl,
  type NatsTransportOptions,
  type UrlCredentials,
} from './nats-transport.js';
export { createRng, type Rng } from './rng.js';
export { realScheduler, type Scheduler, type TimerHandle } from './scheduler.js';
export { assertPublishSubject, subjectMatches } from './subjects.js';
export { TransportLease } from './transport-lease.js';
export type {
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
export { VirtualScheduler } from './virtual-scheduler.js';
