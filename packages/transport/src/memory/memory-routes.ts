import type { Scheduler } from '../scheduler.js';
import type { TransportMessage } from '../types.js';

/**
 * What a MemoryNetwork and the MemoryTransports connected to it need of each other: the
 * network routes a connection's messages to its routes' handlers, and tells a requester that
 * nobody listens. Kept apart so that neither file imports the other's class.
 */

/** A connection as the network sees it: who it is, and how to tell it of no responders. */
export interface RouteOwner {
  readonly nodeId: string;
  receiveNoResponders(replySubject: string): void;
}

/** @internal A subscription as the network routes to it. */
export interface Route {
  readonly owner: RouteOwner;
  readonly tokens: readonly string[];
  readonly queue: string | undefined;
  readonly handler: (message: TransportMessage) => void;
  active: boolean;
}

/** The network as a connection sees it. */
export interface RouteTable {
  readonly scheduler: Scheduler;
  readonly maxPayloadBytes: number;
  addRoute(route: Route): void;
  removeRoute(route: Route): void;
  route(from: RouteOwner, message: TransportMessage, onSettled: () => void): void;
}
