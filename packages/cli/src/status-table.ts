import type { MetricsSnapshot } from '@synod/inspector';

/** What `synod status` and `synod demo` show of each node (the fields of its status JSON). */
export interface NodeRow {
  readonly node: string;
  readonly role: string;
  readonly leader: string | null;
  readonly ballot?: string;
  readonly commitIndex?: number;
  readonly appliedThrough: number;
  readonly lastHeartbeatMsAgo?: number | null;
  /** The members as far as the node has delivered the log (older nodes do not say). */
  readonly members?: readonly string[];
  /** A node started with --metrics-port: a summary of its metrics. */
  readonly metrics?: MetricsSnapshot;
  /** Why the node applies nothing (its database fails every retry), and since when. */
  readonly applyFailing?: { readonly since: string; readonly message: string } | null;
  /** What the node's last verify write showed (consistency-check.ts in @synod/node). */
  readonly consistency?: {
    readonly slot: number;
    readonly verdict: string;
    readonly agreeing: number;
    readonly members: number;
  } | null;
}

/** One line per node, sorted by name, under a header. */
export function statusTable(nodes: readonly NodeRow[]): string {
  const sorted = [...nodes].sort((a, b) => (a.node < b.node ? -1 : 1));
  const width = Math.max(4, ...sorted.map((n) => n.node.length));
  const row = (cells: readonly (string | number)[]): string =>
    cells
      .map((cell, i) => String(cell).padEnd(i === 0 ? width : 10))
      .join(' ')
      .trimEnd();
  return [
    row(['node', 'role', 'ballot', 'leader', 'commit', 'applied', 'heartbeat', 'members']),
    ...sorted.map((n) =>
      row([
        n.node,
        n.role,
        n.ballot ?? '-',
        n.leader ?? '-',
        n.commitIndex ?? '-',
        n.appliedThrough,
        n.lastHeartbeatMsAgo === null || n.lastHeartbeatMsAgo === undefined
          ? '-'
          : `${n.lastHeartbeatMsAgo} ms ago`,
        n.members?.join(',') ?? '-',
      ]),
    ),
    // Under the table, so its columns stay as they were: what keeps a node from applying.
    ...sorted.flatMap((n) =>
      n.applyFailing === null || n.applyFailing === undefined
        ? []
        : [`${n.node}: applies nothing since ${n.applyFailing.since}: ${n.applyFailing.message}`],
    ),
    ...sorted.flatMap((n) => {
      const c = n.consistency;
      if (c === null || c === undefined || c.verdict === 'agreed' || c.verdict === 'pending')
        return [];
      return [
        c.verdict === 'differs'
          ? `${n.node}: its replicated state differed from the group's at verified slot ${c.slot}: it installs a peer's state`
          : `${n.node}: at verified slot ${c.slot}, ${c.agreeing} of ${c.members} members have its digest and no majority has another`,
      ];
    }),
  ].join('\n');
}

/** The metrics of the nodes that serve them, a line each; empty when none does. */
export function metricsTable(nodes: readonly NodeRow[]): string {
  const measured = [...nodes]
    .filter((n) => n.metrics !== undefined && n.metrics.port !== null)
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  if (measured.length === 0) return '';
  const width = Math.max(4, ...measured.map((n) => n.node.length));
  const row = (cells: readonly (string | number)[]): string =>
    cells
      .map((cell, i) => String(cell).padEnd(i === 0 ? width : 14))
      .join(' ')
      .trimEnd();
  return [
    row([
      'node',
      'commits',
      'commit ms',
      'fsyncs',
      'fsync ms',
      'leader chg',
      'reconnects',
      'metrics',
    ]),
    ...measured.map((n) => {
      const m = n.metrics!;
      return row([
        n.node,
        m.commits,
        m.commitLatencyMeanMs,
        m.fsyncs,
        m.fsyncLatencyMeanMs,
        m.leaderChanges,
        m.natsReconnects,
        `127.0.0.1:${m.port}/metrics`,
      ]);
    }),
  ].join('\n');
}
