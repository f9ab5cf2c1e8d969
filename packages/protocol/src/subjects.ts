import { assertGroupName, assertNodeId } from './names.js';

/**
 * The NATS subjects of one group (ARCHITECTURE.md, Subjects). Every subject starts with
 * `synod.<group>.`; building one validates the group (and node) so no caller can
 * smuggle a '.' or a wildcard into a subject.
 */
export interface GroupSubjects {
  readonly group: string;
  /** Phase 1 and phase 2 requests; every acceptor subscribes, replies go to the request's inbox. */
  readonly acceptor: string;
  /** Decisions and heartbeats. */
  readonly learn: string;
  /** Client writes: any node answers, followers forward to the leader. */
  readonly write: string;
  /** Client reads. */
  readonly read: string;
  /** Catch-up requests for chosen values. */
  readonly catchup: string;
  /** Status requests: every node answers with its view (`synod status`). */
  readonly status: string;
  /** A node's identity records: who it is, which incarnation, whether it votes. */
  readonly identity: string;
  /** Point-to-point subject of one node: peer replies go here. */
  node(nodeId: string): string;
  /** A request subject one node serves alone (its writes, reads, repairs and digests). */
  endpoint(nodeId: string, name: NodeEndpoint): string;
  /** Inspection stream of one node. */
  inspect(nodeId: string): string;
  /**
   * Viewers' heartbeats: nodes publish inspection only while one arrives here (one token
   * shorter than `inspect.<node>`, so no node id can collide with it).
   */
  readonly inspectWatch: string;
  /** Every node's inspection stream (a wildcard, for viewers). */
  readonly inspectAll: string;
}

/** What a node serves on its own subjects (GroupSubjects.endpoint). */
export type NodeEndpoint = 'write' | 'read' | 'repair' | 'digest';

export function groupSubjects(group: string): GroupSubjects {
  const prefix = `synod.${assertGroupName(group)}`;
  return {
    group,
    acceptor: `${prefix}.acceptor`,
    learn: `${prefix}.learn`,
    write: `${prefix}.write`,
    read: `${prefix}.read`,
    catchup: `${prefix}.catchup`,
    status: `${prefix}.status`,
    identity: `${prefix}.identity`,
    node: (nodeId) => `${prefix}.node.${assertNodeId(nodeId)}`,
    endpoint: (nodeId, name) => `${prefix}.node.${assertNodeId(nodeId)}.${name}`,
    inspect: (nodeId) => `${prefix}.inspect.${assertNodeId(nodeId)}`,
    inspectWatch: `${prefix}.inspect`,
    inspectAll: `${prefix}.inspect.*`,
  };
}
