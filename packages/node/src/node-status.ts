import type { DropReason } from '@synod/host';
import { groupSubjects } from '@synod/protocol';
import type { ConsistencyVerdict } from './consistency-check.js';
import type { NodeRuntimeOptions } from './runtime-options.js';

/** What `synod status` shows for a node. */
export type NodeStatus = {
  node: string;
  group: string;
  role: string;
  leader: string | null;
  /** The leader's ballot, as round.node. */
  ballot: string;
  /** The highest slot known chosen. */
  commitIndex: number;
  /** The highest slot this node's acceptor has accepted a value for. */
  acceptedThrough: number;
  appliedThrough: number;
  /** Milliseconds since the leader's last heartbeat (0 on the leader, null: none heard). */
  lastHeartbeatMsAgo: number | null;
  machine: string;
  stateDigest: string;
  pid: number;
  /** fsyncs of this group's acceptor store since the node started. */
  fsyncs: number;
  phase1Answers: number;
  phase2Answers: number;
  snapshotThrough: number;
  compactedThrough: number;
  snapshotsInstalled: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Buffers outside the JS heap (log values live there). */
  arrayBuffersBytes: number;
  /** The group's members once every change this node has delivered is in effect. */
  members: readonly string[];
  /** Peer messages this node did not believe since it started, by reason. */
  droppedPeerMessages: Readonly<Record<DropReason, number>>;
  /** Why this node applies nothing (its machine fails every retry), and since when; null: it applies. */
  applyFailing: { readonly since: string; readonly message: string } | null;
  /** What the last verify write showed: this node's state against the members' (null: none yet). */
  consistency: ConsistencyVerdict | null;
};

/** The node whose status is asked for. */
export interface StatusSource {
  status(): NodeStatus;
  stopped(): boolean;
}

/**
 * Answers status requests on `synod.<group>.status`. Every node answers (no queue group):
 * `synod status` gathers them all.
 */
export function serveStatus(
  options: Pick<
    NodeRuntimeOptions,
    'transport' | 'group' | 'logger' | 'asyncMachine' | 'statusExtra'
  >,
  node: StatusSource,
): void {
  const t = options.transport;
  const machine = options.asyncMachine;
  t.subscribe(groupSubjects(options.group).status, (m) => {
    // A stopped node is gone, even while its connection drains: it must not look alive.
    if (m.reply === undefined || node.stopped()) return;
    // Benchmarks measure live memory: a process started with --expose-gc collects first
    // when asked (`{"gc":true}`); otherwise the field is ignored.
    const body = new TextDecoder().decode(m.data);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined && body.includes('"gc":true')) gc();
    const reply = m.reply;
    const status = node.status();
    // A database's digest reads every replicated row: only when asked ({"digest":true}),
    // not for every client that looks for the leader.
    const digest =
      machine === undefined || !body.includes('"digest":true')
        ? Promise.resolve(status.stateDigest)
        : machine.digest();
    digest.then(
      (stateDigest) => {
        const extra = options.statusExtra?.() ?? {};
        if (!t.closed)
          t.publish(
            reply,
            new TextEncoder().encode(JSON.stringify({ ...status, ...extra, stateDigest })),
          );
      },
      (error: unknown) => options.logger?.warn({ err: error }, 'status: no state digest'),
    );
  });
}
