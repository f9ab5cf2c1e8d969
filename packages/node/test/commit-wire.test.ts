import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeVote, rmBallot } from '@synod/commit';
import { createPackr, DecodeError } from '@synod/protocol';
import { type NatsServer, startNatsServer, waitFor } from '@synod/testkit';
import { connectNats, type Transport } from '@synod/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommitNode } from '../src/commit-node.js';
import { commitSubjects, decodeCommit, encodeCommit } from '../src/commit-wire.js';
import type { TxnMeta } from '../src/kv-transactions.js';

const meta: TxnMeta = {
  txid: 'north.7',
  coordinator: 'north',
  number: 7,
  rms: ['north', 'south'],
  acceptors: ['a', 'b', 'c'],
  protocol: 'paxos-commit',
};

const rmAccept = (rm: string, from = rm, ballot = rmBallot(rm)) =>
  ({
    type: 'accept',
    group: meta.txid,
    from,
    ballot,
    instance: `${meta.txid}/${rm}`,
    value: encodeVote('prepared'),
  }) as const;

describe('commit messages on the wire', () => {
  it('round-trips a request to prepare with its writes, and an instance message', () => {
    const writes = [{ op: 'put', key: 'k', value: 'v' }] as const;
    const request = { type: 'voteRequest', txid: meta.txid, from: 'a' } as const;
    expect(decodeCommit(encodeCommit({ meta, node: 'a', message: request, writes }))).toEqual({
      meta,
      node: 'a',
      message: request,
      writes,
    });
    // The machines know the instance's messages by the transaction's id in `group`.
    const accept = rmAccept('south');
    const decoded = decodeCommit(encodeCommit({ meta, node: 'b', message: accept })).message;
    expect({ ...decoded, value: Uint8Array.from((decoded as typeof accept).value) }).toEqual(
      accept,
    );
  });

  it('refuses what is not a commit message of the transaction it names, with DecodeError', () => {
    const packr = createPackr();
    const valid = {
      v: 1,
      meta,
      node: 'a',
      m: { type: 'outcomeQuery', txid: meta.txid, from: 'a' },
    };
    const bad: [string, unknown][] = [
      ['version', { ...valid, v: 2 }],
      ['txid not its number', { ...valid, meta: { ...meta, txid: 'north.8' } }],
      ['bad node', { ...valid, node: 'a.b' }],
      ['acceptors', { ...valid, meta: { ...meta, acceptors: [] } }],
      ['protocol', { ...valid, meta: { ...meta, protocol: '3pc' } }],
      ['another txid', { ...valid, m: { ...valid.m, txid: 'north.9' } }],
      ['unknown type', { ...valid, m: { ...valid.m, type: 'commitNow' } }],
      [
        'bad outcome',
        { ...valid, m: { type: 'outcome', txid: meta.txid, from: 'a', outcome: 'maybe' } },
      ],
    ];
    for (const [what, doc] of bad)
      expect(() => decodeCommit(packr.pack(doc)), what).toThrow(DecodeError);
    expect(() => decodeCommit(Uint8Array.of(0xc1))).toThrow(DecodeError);
    // An instance of another transaction, or of a group that is not one of its RMs.
    for (const instance of ['north.8/south', `${meta.txid}/east`]) {
      const bytes = encodeCommit({ meta, node: 'a', message: { ...rmAccept('south'), instance } });
      expect(() => decodeCommit(bytes), instance).toThrow(DecodeError);
    }
  });
});

describe("a node's commit acceptor believes only the transaction's own proposers", () => {
  let server: NatsServer;
  let transport: Transport;
  let dir: string;
  let node: CommitNode;

  beforeAll(async () => {
    server = await startNatsServer();
    transport = await connectNats({ servers: [server.url], name: 'commit-acceptor-test' });
    dir = await mkdtemp(join(tmpdir(), 'synod-commit-'));
    // Node b serves north as a follower: only its acceptor answers here.
    node = await CommitNode.start({
      nodeId: 'b',
      transport,
      dataDir: dir,
      groups: [
        {
          group: 'north',
          leader: 'a',
          members: () => ['a', 'b', 'c'],
          leaderRound: () => undefined,
          logInternal: () => Promise.reject(new Error('not the leader')),
          readState: () => [],
          onLeadership: () => undefined,
        },
      ],
    });
    await transport.flush();
  });
  afterAll(async () => {
    await node?.stop();
    await transport?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Sends `accept` from `sender` and collects what node b's acceptor answers it. */
  async function answers(sender: string, accept: ReturnType<typeof rmAccept>) {
    const seen: string[] = [];
    const sub = transport.subscribe(commitSubjects('north').node(sender), (m) => {
      const { message } = decodeCommit(m.data);
      if (message.type === 'accepted') seen.push(`${message.from} ${message.ok}`);
    });
    await transport.flush();
    transport.publish(
      commitSubjects('north').acceptor,
      encodeCommit({ meta, node: sender, message: accept }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    sub.unsubscribe();
    return seen;
  }

  it("accepts an RM's vote at its own ballot 0, made durable first", async () => {
    expect(await answers('a', rmAccept('south'))).toEqual(['b true']);
    await waitFor(
      'the acceptance logged',
      async () => (node.counts.logged.acceptor ?? 0) >= 1,
      2_000,
    );
  });

  it("ignores ballot 0 of another RM, and a coordinator's round from no acceptor of the transaction", async () => {
    expect(await answers('a', rmAccept('north', 'north', rmBallot('south')))).toEqual([]);
    const round = { round: 5, nodeId: 'z' };
    expect(await answers('z', { ...rmAccept('north', 'z', round) })).toEqual([]);
    // The same round from an acceptor of the transaction, its own ballot, is answered.
    expect(await answers('c', { ...rmAccept('north', 'c', { round: 5, nodeId: 'c' }) })).toEqual([
      'b true',
    ]);
  });
});
