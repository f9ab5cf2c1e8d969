// The client path under the simulator's clock and randomness: three nodes, each with its own
// ClientRequests, on one seeded MemoryNetwork (drops, duplicates, delays, reordering,
// partitions that come and go) and one VirtualScheduler; a seeded oracle says who leads
// (sometimes nobody, sometimes flapping), as each node's host stand-in and leadershipChanged
// tell it; each node's batcher stand-in takes writes and answers them late, fails them, or
// never answers (a leader that dies with the write). Clients send writes with distinct
// (clientId, seq) to the group's subject or to a node's own subject at random times. Per seed:
//  1. every request gets exactly one answer (none if the node it reached took it itself and
//     its batcher died with it);
//  2. no answer after ANSWER_BOUND_MS, and no NO_QUORUM before requestTimeoutMs;
//  3. an ok answer comes from a take by the leader of that moment, of the write as sent (and
//     every hop carries the client's bytes unchanged);
//  4. no node takes a write while it does not lead;
//  5. the hop header counts the real hops, which never exceed MAX_HOPS;
// and the public write subject reaches the leader alone while one is known.
// A failure names its seed; `SEED=<n> npx vitest run test/client-path-sim.test.ts` replays it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { isDeepStrictEqual } from 'node:util';
import {
  type ClientResponse,
  type ClientWrite,
  createClientCodec,
  groupSubjects,
} from '@synod/protocol';
import {
  createRng,
  type FaultOptions,
  MemoryNetwork,
  type MemoryTransport,
  type Rng,
  type Scheduler,
  type Transport,
  type TransportMessage,
  VirtualScheduler,
} from '@synod/transport';
import { describe, expect, it } from 'vitest';
import { ClientRequests } from '../src/client-requests.js';
import {
  FORWARD_TIMEOUT_MS,
  HOPS_HEADER as HOPS,
  MAX_HOPS,
  MIN_FORWARD_MS,
  NO_LEADER_POLL_MS,
  RETRY_PAUSE_MS,
} from '../src/leader-route.js';
import { resolveRuntimeOptions } from '../src/runtime-options.js';

/** requestTimeoutMs: room for a forward to time out twice and go again before the deadline. */
const TIMEOUT_MS = 2 * FORWARD_TIMEOUT_MS + 500;
// The bounds, from the code. A request that arrives at t0 has the deadline D = t0 + TIMEOUT_MS.
// `route` runs at t0, and again only from a timer set while now < D: after NO_LEADER_POLL_MS
// (no leader known, or MAX_HOPS reached) or after RETRY_PAUSE_MS (a forward failed). So the
// last route starts before D + 50: that is the latest a node takes the write itself
// (TAKE_BOUND_MS). A forward waits max(100, min(1000, D - now)): 100 ms once D - now < 100,
// so a forward started before D + 50 fails, or has its answer relayed, before D + 150. A
// failure at or after D is answered NO_QUORUM at once; before D it leads to another route. So
// every answer the node relays or makes itself comes before t0 + ANSWER_BOUND_MS. NO_QUORUM of
// the node's own comes only at or after D (both branches check now >= D); its only earlier
// failures are BAD_REQUEST and BUSY (maxWriteBytes, maxPendingBytes), which this workload does
// not provoke. A write the node takes itself (before D + 50) goes to its batcher with what is
// left of the client's time, max(1, D - now): the batcher answers by D + 51 at the latest.
const ANSWER_BOUND_MS = TIMEOUT_MS + RETRY_PAUSE_MS + MIN_FORWARD_MS;
/** The latest a route, and so a take by the node the client sent to, can start. */
const TAKE_BOUND_MS = TIMEOUT_MS + Math.max(RETRY_PAUSE_MS, NO_LEADER_POLL_MS);

const GROUP = 'g';
const NODES = ['a', 'b', 'c'] as const;
const CLIENTS = ['client1', 'client2', 'client3'] as const;
/** Client inboxes start so (MemoryNetwork names them `_INBOX.<nodeId>-<n>`). */
const CLIENT_INBOX = '_INBOX.client';
const REQUESTS_PER_SEED = 30;
/** Clients send in [0, SEND_WINDOW_MS); leadership and partitions change until HORIZON_MS. */
const SEND_WINDOW_MS = 5_000;
const HORIZON_MS = SEND_WINDOW_MS + 2 * TIMEOUT_MS + 1_000;
/** A client waits longer than any answer may take, so it sees every answer a node sends. */
const CLIENT_WAIT_MS = 3 * TIMEOUT_MS + 1_000;
const DEFAULT_SEEDS = 200;
const SEEDS = process.env.SEED === undefined ? DEFAULT_SEEDS : 1;
const FIRST_SEED = Number(process.env.SEED ?? 1);

const subjects = groupSubjects(GROUP);
const codec = createClientCodec();
const key = (clientId: string, seq: number): string => `${clientId}/${seq}`;

/** A client request or forwarded request as one node received it. */
interface Delivery {
  readonly node: string;
  readonly at: number;
  readonly reply: string | undefined;
  /** 0 from a client, else 1 + that of the delivery whose route forwarded it (NaN: unknown). */
  readonly depth: number;
}

/** A write a node's batcher took, and what the stand-in did with it. */
interface Take {
  readonly id: number;
  readonly node: string;
  readonly at: number;
  readonly leader: string | undefined;
  readonly write: ClientWrite;
  readonly bytes: number;
  /** The delivery whose route took it (found through AsyncLocalStorage). */
  readonly via: Delivery | undefined;
  readonly fate: 'ok' | 'not-leader' | 'no-quorum' | 'never';
  answeredAt?: number;
}

interface Answer {
  readonly node: string;
  readonly at: number;
  readonly response: ClientResponse;
}

interface Request {
  readonly clientId: string;
  readonly seq: number;
  readonly write: ClientWrite;
  readonly bytes: Uint8Array;
  readonly subject: string;
  readonly sendAt: number;
  roots: Delivery[];
  answers: Answer[];
  /** What the client's request() settled with, and when. */
  client?: { readonly at: number; readonly response?: ClientResponse; readonly error?: string };
  events: string[];
}

interface SeedResult {
  readonly violations: string[];
  readonly stats: Record<string, number>;
  /** What happened to each request: for the replay check. */
  readonly trace: string[];
}

/** The delivery whose handling is running: ClientRequests' timers and promises inherit it. */
const context = new AsyncLocalStorage<Delivery | undefined>();

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)]!;
}

interface Leadership {
  readonly changes: readonly { readonly at: number; readonly leader: string | undefined }[];
  at(at: number): string | undefined;
}

/**
 * Who leads when: seeded segments, some of them leaderless, some short (leadership flaps; in
 * one seed of four, mostly short: a forward then often finds that the leader moved on).
 */
function leadership(rng: Rng): Leadership {
  const flaps = rng.chance(0.25) ? 0.8 : 0.35;
  const changes: { at: number; leader: string | undefined }[] = [];
  for (let at = 0; at < HORIZON_MS; ) {
    changes.push({ at, leader: rng.chance(0.2) ? undefined : pick(rng, NODES) });
    at += rng.chance(flaps) ? rng.int(5, 80) : rng.int(100, 1_500);
  }
  return {
    changes,
    at: (at) => {
      let i = changes.length - 1;
      while (changes[i]!.at > at) i--;
      return changes[i]!.leader;
    },
  };
}

/**
 * Runs one seed to the end and checks it.
 */
async function runSeed(seed: number): Promise<SeedResult> {
  const rng = createRng(seed);
  const scheduler = new VirtualScheduler();
  const faults: FaultOptions = {
    dropRate: rng.next() * 0.15,
    duplicateRate: rng.next() * 0.1,
    minDelayMs: 0,
    maxDelayMs: rng.int(1, 60),
    reorderRate: 0.1,
    reorderDelayMs: 150,
  };
  const network = new MemoryNetwork({ seed, scheduler, faults });
  const oracle = leadership(rng.fork());
  const leaderAt = oracle.at;
  const batcherRng = rng.fork();
  const violations: string[] = [];
  const stats: Record<string, number> = {
    requests: 0,
    ok: 0,
    noQuorum: 0,
    notLeader: 0,
    lostWithLeader: 0,
    forwards: 0,
    reforwards: 0,
    maxHops: 0,
    lastHops: 0,
    takes: 0,
    rootTakes: 0,
    steps: 0,
  };
  const requests = new Map<string, Request>();
  const byReply = new Map<string, Request>();
  const takes: Take[] = [];
  const now = (): number => scheduler.now();
  const note = (request: Request | undefined, event: string): void =>
    void request?.events.push(`${now().toFixed(1)} ${event}`);

  // Partitions of the nodes, healed and made again at random times.
  let sets: string[][] | undefined;
  const splits = [
    [['a'], ['b', 'c']],
    [['b'], ['a', 'c']],
    [['c'], ['a', 'b']],
    [['a'], ['b'], ['c']],
  ];
  for (let at = rng.int(0, 1_000); at < HORIZON_MS; at += rng.int(100, 1_500)) {
    const split = rng.chance(0.5) ? pick(rng, splits) : undefined;
    scheduler.setTimer(at, () => {
      sets = split;
      if (split === undefined) network.heal();
      else network.partition(...split);
    });
  }

  /**
   * Sends what a client sends, or a node sends a client, over a perfect link (no loss, no
   * copy, no delay, no partition): the faults are between the nodes, so that every request
   * reaches a node once and every answer a node sends is the one the client gets. The fault
   * model draws nothing from its generator for a perfect link, so the seed's faults stay.
   */
  const reliably = (send: () => void): void => {
    const saved = network.faults.options;
    network.configureFaults({
      dropRate: 0,
      duplicateRate: 0,
      reorderRate: 0,
      minDelayMs: 0,
      maxDelayMs: 0,
    });
    network.heal();
    try {
      send();
    } finally {
      network.configureFaults(saved);
      if (sets !== undefined) network.partition(...sets);
    }
  };

  const requestOf = (data: Uint8Array, headers?: Readonly<Record<string, string>>) => {
    const write = codec.decodeWrite(data, headers?.['content-type']);
    return requests.get(key(write.clientId, write.seq));
  };

  /** Which delivery's route sent the forward that waits for an answer on this inbox. */
  const forwardedFrom = new Map<string, Delivery | undefined>();
  /** Deliveries whose route forwarded them once already. */
  const forwardsOf = new Set<Delivery>();

  /** Node `node`'s connection, as ClientRequests uses it, with every delivery and answer seen. */
  function observed(node: string, inner: MemoryTransport): Transport {
    const publish = inner.publish.bind(inner);
    // On the instance, so that request() (which publishes through `this`) comes here too.
    inner.publish = (subject, data, options) => {
      if (subject.startsWith(CLIENT_INBOX)) {
        const request = byReply.get(subject);
        const response = codec.decodeResponse(data);
        if (request === undefined) violations.push(`${node} answered an unknown inbox ${subject}`);
        else {
          request.answers.push({ node, at: now(), response });
          note(request, `${node} answers ${JSON.stringify(response)}`);
        }
        reliably(() => publish(subject, data, options));
        return;
      }
      if (options?.reply !== undefined && subject.endsWith('.write')) {
        const parent = context.getStore();
        forwardedFrom.set(options.reply, parent);
        if (parent !== undefined && forwardsOf.has(parent)) stats.reforwards!++;
        if (parent !== undefined) forwardsOf.add(parent);
        const to = subject.split('.')[3];
        note(requestOf(data), `${node} forwards it to ${to}, hops ${options.headers?.[HOPS]}`);
      }
      publish(subject, data, options);
    };
    const onDelivery = (m: TransportMessage): Delivery => {
      const request = m.subject.endsWith('.write') ? requestOf(m.data, m.headers) : undefined;
      const fromClient = m.reply?.startsWith(CLIENT_INBOX) === true;
      const parent = fromClient || m.reply === undefined ? undefined : forwardedFrom.get(m.reply);
      const delivery: Delivery = {
        node,
        at: now(),
        reply: m.reply,
        depth: fromClient ? 0 : parent === undefined ? Number.NaN : parent.depth + 1,
      };
      if (request === undefined) {
        violations.push(`${node} got a write no client sent on ${m.subject}`);
        return delivery;
      }
      const name = key(request.clientId, request.seq);
      // Forwarding does not change a write that needed no rewrite: the same bytes, every hop.
      if (!Buffer.from(m.data).equals(Buffer.from(request.bytes)))
        violations.push(`${name}: ${node} got other bytes than the client sent`);
      const hops = m.headers?.[HOPS];
      if (fromClient) {
        request.roots.push(delivery);
        byReply.set(m.reply!, request);
        note(request, `${node} gets it from the client on ${m.subject}`);
        if (hops !== undefined) violations.push(`${name}: a hop header from the client`);
        // The public write subject is the leader's alone while one is known (leadershipChanged).
        const leader = leaderAt(now());
        if (m.subject === subjects.write && leader !== undefined && leader !== node)
          violations.push(`${name}: ${node} got it on ${m.subject} while ${leader} leads`);
        return delivery;
      }
      stats.forwards!++;
      stats.maxHops = Math.max(stats.maxHops!, delivery.depth);
      if (delivery.depth === MAX_HOPS) stats.lastHops!++;
      note(request, `${node} gets it forwarded, hops ${hops} (hop ${delivery.depth})`);
      // The hop header counts the hops this request made, which never exceed MAX_HOPS.
      if (!(delivery.depth <= MAX_HOPS && hops === String(delivery.depth)))
        violations.push(
          `${name}: ${node} got it on hop ${delivery.depth} with hops ${hops} (MAX_HOPS ${MAX_HOPS})\n    ${request.events.join('\n    ')}`,
        );
      return delivery;
    };
    return {
      kind: inner.kind,
      get closed() {
        return inner.closed;
      },
      publish: (subject, data, options) => inner.publish(subject, data, options),
      subscribe: (subject, handler, options) =>
        inner.subscribe(subject, (m) => context.run(onDelivery(m), () => handler(m)), options),
      request: (subject, data, options) => inner.request(subject, data, options),
      gather: (subject, data, options) => inner.gather(subject, data, options),
      flush: () => inner.flush(),
      drain: () => inner.drain(),
      close: () => inner.close(),
      stats: () => inner.stats(),
    };
  }

  /** The virtual clock, with the running delivery carried into every timer set on it. */
  const clock: Scheduler = {
    now,
    setTimer(delayMs, task) {
      const delivery = context.getStore();
      return scheduler.setTimer(delayMs, () => context.run(delivery, task));
    },
  };

  const servers: ClientRequests[] = [];
  for (const node of NODES) {
    const server = new ClientRequests(
      resolveRuntimeOptions({
        group: GROUP,
        nodeId: node,
        peers: NODES,
        transport: observed(node, network.connect(node)),
        dataDir: 'unused',
        requestTimeoutMs: TIMEOUT_MS,
      }),
      {
        host: {
          get leader() {
            return leaderAt(now());
          },
          maySpeakFor: () => true,
          paxos: () => undefined,
          read: () => () => undefined,
          leaderRead: () => () => undefined,
        },
        batcher: {
          write(write, bytes, reply, leftMs = TIMEOUT_MS) {
            const request = requests.get(key(write.clientId, write.seq));
            const roll = batcherRng.next();
            const take: Take = {
              id: takes.length,
              node,
              at: now(),
              leader: leaderAt(now()),
              write,
              bytes,
              via: context.getStore(),
              fate:
                roll < 0.6 ? 'ok' : roll < 0.7 ? 'not-leader' : roll < 0.82 ? 'no-quorum' : 'never',
            };
            takes.push(take);
            note(
              request,
              `${node} takes it (take ${take.id}, ${take.fate}; leader ${take.leader})`,
            );
            // No write is taken by a node that does not lead at that moment.
            if (take.leader !== node)
              violations.push(
                `${key(write.clientId, write.seq)}: ${node} took it at ${now()} while ${take.leader} leads`,
              );
            // As the Batcher does: whatever comes first, its outcome or NO_QUORUM once what was
            // left of the client's time (leftMs) has passed since it took the write.
            const noQuorum: ClientResponse = {
              ok: false,
              error: { code: 'NO_QUORUM', message: 'not committed in time' },
            };
            const respond = (delayMs: number, response: ClientResponse): void =>
              void scheduler.setTimer(Math.min(delayMs, leftMs), () => {
                take.answeredAt = now();
                reply(delayMs < leftMs ? response : noQuorum);
              });
            if (take.fate === 'ok')
              respond(
                batcherRng.chance(0.1) ? batcherRng.int(300, TIMEOUT_MS) : batcherRng.int(0, 300),
                {
                  ok: true,
                  slot: take.id,
                  result: `${node}:${write.clientId}:${write.seq}`,
                },
              );
            else if (take.fate === 'not-leader')
              respond(batcherRng.int(0, 50), {
                ok: false,
                error: { code: 'NOT_LEADER', message: 'leadership changed' },
              });
            else if (take.fate === 'no-quorum') respond(leftMs, noQuorum);
          },
          read: () => undefined,
        },
        memberChanges: { change: () => undefined },
        queue: undefined,
        scheduler: clock,
        readState: () => null,
        appliedThrough: () => -1,
        stopped: () => false,
      },
    );
    servers.push(server);
  }
  // The runtime tells its ClientRequests who leads as its host learns it (leadershipChanged):
  // the public write subject follows the leader. The oracle is shared, so every node learns a
  // change at once; these timers precede the clients' (same instant: the change comes first).
  const announce = (leader: string | undefined): void => {
    for (const server of servers) server.leadershipChanged(leader);
  };
  announce(leaderAt(0));
  for (const change of oracle.changes) scheduler.setTimer(change.at, () => announce(change.leader));

  // The workload: distinct (clientId, seq), random times, random formats and targets.
  const clients = new Map(CLIENTS.map((id) => [id, network.connect(id)]));
  const seqs = new Map<string, number>();
  for (let i = 0; i < REQUESTS_PER_SEED; i++) {
    const clientId = pick(rng, CLIENTS);
    const seq = (seqs.get(clientId) ?? 0) + 1;
    seqs.set(clientId, seq);
    const write: ClientWrite = {
      clientId,
      seq,
      command: { op: 'put', key: `k${rng.int(0, 9)}`, value: `v${seed}.${i}` },
    };
    const request: Request = {
      clientId,
      seq,
      write,
      bytes: codec.encodeWrite(write, rng.chance(0.5) ? 'json' : 'msgpack'),
      subject: rng.chance(0.4) ? subjects.write : subjects.endpoint(pick(rng, NODES), 'write'),
      sendAt: rng.int(0, SEND_WINDOW_MS - 1),
      roots: [],
      answers: [],
      events: [],
    };
    requests.set(key(clientId, seq), request);
    scheduler.setTimer(request.sendAt, () => {
      note(request, `${clientId} sends it on ${request.subject}`);
      let sent: Promise<TransportMessage> | undefined;
      reliably(() => {
        sent = clients
          .get(clientId)!
          .request(request.subject, request.bytes, { timeoutMs: CLIENT_WAIT_MS });
      });
      sent!.then(
        (m) => {
          request.client = { at: now(), response: codec.decodeResponse(m.data) };
        },
        (error: unknown) => {
          request.client = { at: now(), error: String(error) };
        },
      );
    });
  }

  // Runs virtual time to the end, letting promise callbacks run after every step.
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  await settle();
  while (scheduler.step()) {
    stats.steps!++;
    await settle();
  }

  for (const request of requests.values()) {
    stats.requests!++;
    const name = key(request.clientId, request.seq);
    const fail = (what: string): void =>
      void violations.push(`${name}: ${what}\n    ${request.events.join('\n    ')}`);
    // The client's link is perfect: it reaches exactly one node.
    if (request.roots.length !== 1) {
      fail(`reached ${request.roots.length} nodes from the client`);
      continue;
    }
    const root = request.roots[0]!;
    const deadline = root.at + TIMEOUT_MS;
    // The take made by the route of the client's own delivery: its answer is the client's.
    const rootTake = takes.find((take) => take.via === root);
    if (rootTake !== undefined) stats.rootTakes!++;
    // 1. Exactly one answer, unless the node took the write itself and its batcher died with it.
    const expected = rootTake?.fate === 'never' ? 0 : 1;
    if (expected === 0) stats.lostWithLeader!++;
    if (request.answers.length !== expected)
      fail(`${request.answers.length} answers, expected ${expected}`);
    const answer = request.answers[0];
    if (expected === 0 && request.client?.error === undefined)
      fail('the client got an answer nobody sent');
    if (answer === undefined) continue;
    if (
      request.client?.response === undefined ||
      request.client.at !== answer.at ||
      !isDeepStrictEqual(request.client.response, answer.response)
    )
      fail(`the client got ${JSON.stringify(request.client)}, not the answer sent`);
    if (answer.node !== root.node) fail(`answered by ${answer.node}, not ${root.node}`);
    const response = answer.response;
    if (response.ok) stats.ok!++;
    else if (response.error.code === 'NO_QUORUM') stats.noQuorum!++;
    else if (response.error.code === 'NOT_LEADER') stats.notLeader!++;
    else fail(`an unexpected failure ${JSON.stringify(response)}`);
    // 2. No answer after the bound; NO_QUORUM not before the deadline. A write the node took
    // itself is answered when its batcher answers, and taken before TAKE_BOUND_MS.
    if (rootTake !== undefined) {
      if (!(rootTake.at < root.at + TAKE_BOUND_MS))
        fail(`taken at ${rootTake.at}, arrived at ${root.at}: later than ${TAKE_BOUND_MS} ms`);
      if (answer.at !== rootTake.answeredAt)
        fail(`answered at ${answer.at}, its batcher at ${rootTake.answeredAt}`);
    }
    if (!(answer.at < root.at + ANSWER_BOUND_MS))
      fail(`answered at ${answer.at}, arrived at ${root.at}: later than ${ANSWER_BOUND_MS} ms`);
    if (!response.ok && response.error.code === 'NO_QUORUM' && answer.at < deadline)
      fail(`NO_QUORUM at ${answer.at}, before the deadline ${deadline}`);
    // 3. An ok write was taken by the leader of that moment, as the client sent it.
    if (response.ok) {
      const take = takes[response.slot ?? -1];
      if (take === undefined) fail(`ok from no take (slot ${response.slot})`);
      else {
        if (take.fate !== 'ok') fail(`ok from take ${take.id}, which was ${take.fate}`);
        if (take.leader !== take.node)
          fail(`ok from take ${take.id} by ${take.node}, while ${take.leader} led`);
        if (!isDeepStrictEqual(take.write, request.write) || take.bytes !== request.bytes.length)
          fail(`take ${take.id} took ${JSON.stringify(take.write)} (${take.bytes} bytes)`);
        if (response.result !== `${take.node}:${request.clientId}:${request.seq}`)
          fail(`ok with result ${JSON.stringify(response.result)}`);
      }
    }
  }
  for (const take of takes) {
    stats.takes!++;
    if (take.via === undefined) violations.push(`take ${take.id}: no delivery took it (harness)`);
  }
  return { violations, stats, trace: [...requests.values()].flatMap((r) => r.events) };
}

describe('the client path, simulated', () => {
  it(`keeps its promises under faults, leader changes and partitions (${SEEDS} seeds)`, async () => {
    const totals: Record<string, number> = {};
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
      const { violations, stats } = await runSeed(seed);
      expect(
        violations,
        `seed ${seed} (replay: SEED=${seed} npx vitest run test/client-path-sim.test.ts)`,
      ).toEqual([]);
      for (const [name, value] of Object.entries(stats))
        totals[name] =
          name === 'maxHops' ? Math.max(totals[name] ?? 0, value) : (totals[name] ?? 0) + value;
    }
    if (process.env.SEED !== undefined || process.env.SIM_STATS !== undefined) console.log(totals);
    if (SEEDS > 1) {
      // The seeds reach every path: forwarding, retries, lost writes, every answer kind.
      expect(totals.maxHops).toBe(MAX_HOPS);
      for (const name of [
        'ok',
        'noQuorum',
        'notLeader',
        'lostWithLeader',
        'rootTakes',
        'reforwards',
        'lastHops',
      ])
        expect(totals[name], name).toBeGreaterThan(0);
    }
  }, 60_000);

  it('replays a seed exactly', async () => {
    const first = await runSeed(FIRST_SEED);
    const second = await runSeed(FIRST_SEED);
    expect(second.trace).toEqual(first.trace);
    expect(second.stats).toEqual(first.stats);
  });
});
