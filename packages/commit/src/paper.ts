import type { CommitProtocol } from './types.js';

/** The paper's counts for the failure-free case, without co-location (Gray and Lamport, Table 1). */
export const PAPER: Readonly<
  Record<
    CommitProtocol,
    {
      messages: (n: number, f: number) => number;
      /** With the coordinator and acceptors on the RMs' nodes, messages within a node not counted. */
      colocatedMessages: (n: number, f: number) => number;
      delays: number;
      writes: (n: number, f: number) => number;
    }
  >
> = {
  '2pc': {
    messages: (n) => 3 * n - 1,
    colocatedMessages: (n) => 3 * n - 3,
    delays: 4,
    writes: (n) => n + 1,
  },
  'paxos-commit': {
    messages: (n, f) => n * f + 3 * n + f + 1,
    colocatedMessages: (n, f) => n * (f + 3) - 3,
    delays: 5,
    writes: (n, f) => n + f + 1,
  },
  'faster-paxos-commit': {
    messages: (n, f) => n * (2 * f + 3),
    colocatedMessages: (n, f) => (n - 1) * (2 * f + 3),
    delays: 4,
    writes: (n, f) => n + f + 1,
  },
};
