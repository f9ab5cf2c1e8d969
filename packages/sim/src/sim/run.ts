import { AcceptorState } from '@synod/actors';
import { GroupHost } from '@synod/host';
import {
  encodeMembership,
  formatBallot,
  isMembershipValue,
  type Membership,
  type Value,
} from '@synod/protocol';
import {
  createRng,
  MemoryNetwork,
  type Rng,
  type TimerHandle,
  VirtualScheduler,
} from '@synod/transport';
import { checkOperations } from '../linearizability/check.js';
import { kvModel } from '../linearizability/kv-model.js';
import { SafetyChecker } from './checker.js';
import { SimDisk } from './disk.js';
import { encodeWrite, KvStore } from './kv.js';
import { Rogue } from './rogue.js';
import { chooseScenario, type Scenario, type ScenarioOptions } from './scenario.js';
import { at, describeMessage, describeValue, type TraceSink } from './trace.js';

const GROUP = 'sim';

/** One client operation as the history records it; `return` is Infinity if it never returned. */
export interface KvOperation {
  readonly clientId: string;
  readonly input: {
    readonly op: 'get' | 'put' | 'append';
    readonly key: string;
    readonly value?: string;
  };
  readonly call: number;
  output: string | undefined;
  return: number;
}

export interface SeedResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly violations: readonly string[];
  readonly steps: number;
  readonly simTimeMs: number;
  readonly history: readonly KvOperation[];
  readonly acknowledged: number;
  /** 'unknown' when the check ran out of time: a violation too (undecided is not a pass). */
  readonly linearizability: 'linearizable' | 'not-linearizable' | 'unknown';
  /** Compactions done and peer snapshots installed (leader mode with compaction). */
  readonly compactions: number;
  readonly snapshotsInstalled: number;
  /** Membership changes in the log, as the node that delivered most of them knows them. */
  readonly membershipChanges: number;
  /** What those changes were like: what the simulator claims to cover. */
  readonly membershipShapes: MembershipShapes;
  /** Peer messages the nodes did not believe, by reason, over all their lives (PeerFilter). */
  readonly droppedPeerMessages: Readonly<Record<string, number>>;
}

interface PendingOp {
  readonly op: KvOperation;
  readonly node: SimNode;
  /** A leader-mode write moves between nodes by itself: a crash of its first node does not end it. */
  readonly survivesCrash: boolean;
  readonly incarnation: number;
  readonly timer: TimerHandle;
  finish: () => void;
}

interface SimNode {
  readonly id: string;
  readonly disk: SimDisk;
  host: GroupHost | undefined;
  kv: KvStore;
  incarnation: number;
  /** Writes chosen here that wait to be applied here before their client is answered. */
  applyWaiters: { readonly slot: number; readonly fire: () => void }[];
}

const STEP_BUDGET = 2_000_000;
/**
 * The linearizability search's budget, in steps rather than time so that a seed's verdict is
 * the same on any machine (about 8 s of search here). Pruning makes real histories need far less.
 */
const LINEARIZABILITY_MAX_STEPS = 20_000_000;
/** Leader mode: how long a client waits for one node's answer before trying another. */
const SUBMIT_ATTEMPT_MS = 1_000;

export interface RunOptions extends ScenarioOptions {
  /**
   * Hears every delivered and dropped message, timer, crash, restart, partition, membership
   * change, chosen and delivered value and violation, with its simulated time.
   */
  readonly trace?: TraceSink;
  /** End the run at the first violation (tests that only need to know a bug is caught). */
  readonly stopAtFirstViolation?: boolean;
}

/** Runs one seed: a workload under faults, then a healed phase that must make progress. */
export function runSeed(seed: number, options: RunOptions = {}): SeedResult {
  const rng = createRng(seed);
  const scenario = chooseScenario(seed, rng.fork(), options);
  const scheduler = new VirtualScheduler();
  const sink = options.trace;
  const trace =
    sink === undefined ? undefined : (what: string): void => sink(`${at(scheduler.now())} ${what}`);
  const network = new MemoryNetwork({
    seed: rng.int(0, 2 ** 31),
    scheduler,
    faults: scenario.faults,
    ...(trace === undefined
      ? {}
      : {
          trace: (e) => {
            // Deliveries are traced decoded, by the host that receives them.
            if (e.kind !== 'deliver') trace(`${e.to} ${e.kind} ${e.subject} from ${e.from}`);
          },
        }),
  });
  const checker = new SafetyChecker(
    () => scheduler.now(),
    trace && ((message) => trace(`VIOLATION ${message}`)),
  );
  trace?.(`scenario ${JSON.stringify(scenario)}`);
  const peers = Array.from({ length: scenario.nodes }, (_, i) => `n${i + 1}`);
  const founders = peers.slice(0, scenario.membership?.founders ?? peers.length);
  const nodes = new Map<string, SimNode>();
  const faultRng = rng.fork();
  const clientRng = rng.fork();
  let healed = false;
  let compactions = 0;
  let snapshotsInstalled = 0;
  const healAt = scenario.faultPhaseMs;

  /** Runs `fire` once `node` (its current life) has applied `slot`. */
  const whenApplied = (node: SimNode, slot: number, fire: () => void): void => {
    if ((node.host?.deliveredThrough ?? -1) >= slot) fire();
    else node.applyWaiters.push({ slot, fire });
  };

  /** Answers the writes waiting at `node` whose slots are now applied there. */
  const releaseApplied = (node: SimNode, through: number): void => {
    if (node.applyWaiters.length === 0) return;
    const ready = node.applyWaiters.filter((w) => w.slot <= through);
    node.applyWaiters = node.applyWaiters.filter((w) => w.slot > through);
    for (const waiter of ready) waiter.fire();
  };

  const start = (node: SimNode): void => {
    node.incarnation++;
    node.applyWaiters = [];
    trace?.(`${node.id} starts (life ${node.incarnation})`);
    const saved = node.disk.snapshot;
    node.kv = saved === undefined ? new KvStore() : KvStore.restore(saved.bytes);
    checker.restarted(node.id, saved?.throughSlot ?? -1, node.kv);
    if (node.incarnation > 1)
      checker.recoveredAcceptor(node.id, AcceptorState.recover(node.disk.durable));
    const compaction = scenario.compaction;
    let snapshotThrough = saved?.throughSlot ?? -1;
    const incarnation = node.incarnation;
    /** Snapshot every `every` slots; once it is durable, compact all but the last `retain` slots. */
    const maybeSnapshot = (slot: number): void => {
      if (compaction === undefined || slot - snapshotThrough < compaction.every) return;
      snapshotThrough = slot;
      const membership = node.host?.membershipThrough(slot).toRecord();
      const snapshot = { throughSlot: slot, bytes: node.kv.snapshot() };
      node.disk.saveSnapshot({ ...snapshot, ...(membership && { membership }) }, () => {
        const through = slot - compaction.retain;
        if (node.incarnation !== incarnation || through < 0 || node.host === undefined) return;
        node.host.compact(through);
        compactions++;
      });
    };
    node.host = new GroupHost({
      group: GROUP,
      nodeId: node.id,
      peers: founders,
      ...(scenario.membership === undefined
        ? {}
        : { membershipWindow: scenario.membership.window }),
      transport: network.connect(node.id),
      scheduler,
      disk: node.disk,
      seed: seed * 31 + node.incarnation * 1_000_003 + peers.indexOf(node.id),
      mode: scenario.mode,
      ...(scenario.plant === undefined ? {} : { plant: scenario.plant }),
      ...(scenario.mode === 'leader'
        ? {
            snapshots: {
              initial: saved,
              latest: () => node.disk.snapshot,
              install: (snapshot) => {
                snapshotsInstalled++;
                node.kv = KvStore.restore(snapshot.bytes);
                checker.installedSnapshot(node.id, snapshot.throughSlot, node.kv);
                snapshotThrough = snapshot.throughSlot;
                releaseApplied(node, snapshot.throughSlot);
                node.disk.saveSnapshot(snapshot, () => undefined);
              },
            },
            snapshotChunkBytes: compaction?.chunkBytes ?? 256 * 1024,
          }
        : {}),
      observer: {
        proposed: (n, i, v) => {
          trace?.(`${n} proposes ${String(i)} ${describeValue(v)}`);
          checker.proposed(n, i, v);
        },
        chosen: (n, i, v, b) => {
          trace?.(`${n} CHOSE ${String(i)} at ${formatBallot(b)} ${describeValue(v)}`);
          checker.chosen(n, i, v);
          if (typeof i === 'number') maybeDieAtGap(node, i);
        },
        learned: (n, i, v) => {
          trace?.(`${n} learned ${String(i)} ${describeValue(v)}`);
          checker.learned(n, i, v);
        },
        delivered: (n, s, v) => {
          trace?.(`${n} delivers ${s} ${describeValue(v)}`);
          checker.delivered(n, s, v, node.kv.apply(v, s));
          releaseApplied(node, s);
          maybeSnapshot(s);
          // (A compare-and-set change whose members were replaced meanwhile holds nowhere.)
          if (
            isMembershipValue(v) &&
            node.host?.leader === n &&
            node.host.membership.changes.at(-1)?.slot === s
          )
            leaderDeliveredChange(n);
        },
        failed: (n, e) => checker.failed(n, e),
        ...(trace === undefined
          ? {}
          : {
              received: (n, m, local) =>
                trace(`${n} <- ${m.from}${local ? ' (local)' : ''} ${describeMessage(m)}`),
              timerFired: (n, machine, timer) => trace(`${n} timer ${machine} ${timer}`),
            }),
        acceptorAnswered: (n, m) => checker.acceptorAnswered(n, m),
        sentAccept: (n, i, b, v) => {
          checker.sentAccept(n, i, b, v);
          if (typeof i === 'number') maybeLoseAccept(n);
        },
        sentPrepare: (n, machine, b) => checker.sentPrepare(n, machine, b),
      },
    });
  };
  for (const id of peers) {
    const node: SimNode = {
      id,
      disk: new SimDisk(scheduler, rng.fork(), scenario.fsyncMs),
      host: undefined,
      kv: new KvStore(),
      incarnation: 0,
      applyWaiters: [],
    };
    nodes.set(id, node);
    start(node);
  }
  const history: KvOperation[] = [];
  const pending = new Set<PendingOp>();
  const up = (): SimNode[] => [...nodes.values()].filter((n) => n.host !== undefined);
  const down = (): SimNode[] => [...nodes.values()].filter((n) => n.host === undefined);
  /** Hosts of earlier lives, for what they counted. */
  const gone: GroupHost[] = [];
  const crash = (node: SimNode): void => {
    trace?.(`${node.id} CRASHES`);
    if (node.host !== undefined) gone.push(node.host);
    node.host?.stop();
    node.host = undefined;
    node.disk.crash();
    // The operations in flight there may or may not have taken effect: they stay open.
    for (const entry of [...pending])
      if (entry.node === node && !entry.survivesCrash) entry.finish();
  };

  /** Until when a partition a nemesis aimed holds (random partitions and heals wait). */
  let aimedPartitionUntil = 0;
  const aimedPartition = (sides: readonly (readonly string[])[], forMs: number): void => {
    network.partition(...sides);
    aimedPartitionUntil = scheduler.now() + forMs;
    scheduler.setTimer(forMs, () => {
      if (healed) return;
      trace?.('network heals');
      network.heal();
    });
  };

  // Faults: crashes, restarts and partitions at random times until the heal.
  const scheduleFault = (): void => {
    const delay = faultRng.next() * 2 * scenario.faultEveryMs;
    scheduler.setTimer(delay, () => {
      if (healed) return;
      const roll = faultRng.next();
      const live = up();
      const dead = down();
      if (roll < 0.3 && live.length > 0) {
        // Like a nemesis that knows where it hurts, prefer a node with writes in flight: a
        // crash there tests that nothing was acknowledged before it was durable.
        const exposed = live.filter((n) => n.disk.hasUnsyncedWrites);
        const victim = pick(faultRng, exposed.length > 0 && faultRng.chance(0.8) ? exposed : live);
        crash(victim);
        // Half the crashes are reboots (a supervisor restarts the process at once): the node
        // is back while messages of its last life are still in flight.
        if (faultRng.chance(0.5))
          scheduler.setTimer(
            faultRng.next() * 5,
            () => !healed && victim.host === undefined && start(victim),
          );
      } else if (roll < 0.55 && dead.length > 0) start(pick(faultRng, dead));
      // A partition a nemesis made on purpose holds for its time: random ones wait.
      else if (scheduler.now() < aimedPartitionUntil) {
        // nothing
      } else if (roll < 0.75) {
        const sides = split(faultRng, peers);
        trace?.(`partition [${sides[0]!.join(',')}] | [${sides[1]!.join(',')}]`);
        network.partition(...sides);
      } else if (roll < 0.9) {
        trace?.('network heals');
        network.heal();
      }
      scheduleFault();
    });
  };
  scheduleFault();
  scheduler.setTimer(healAt, () => {
    trace?.('HEAL: faults end');
    healed = true;
    network.heal();
    network.configureFaults({
      dropRate: 0,
      duplicateRate: 0,
      reorderRate: 0,
      minDelayMs: 0.1,
      maxDelayMs: 1,
    });
    for (const node of down()) start(node);
  });

  /**
   * The leader just delivered a membership change: sometimes it is cut off together with the
   * new members, for long enough that the old members left behind elect a leader of their
   * own. The first leader goes on deciding the new members' slots with them; the second must
   * ask those members before it decides the same slots.
   */
  const leaderDeliveredChange = (leader: string): void => {
    if (scenario.membership?.cutOff !== true || healed || !splitRng.chance(0.75)) return;
    const membership = nodes.get(leader)?.host?.membership;
    if (membership === undefined) return;
    const now = membership.latest;
    const before = membership.changes.at(-2)?.members ?? membership.genesis;
    // The leader with the members the change brought in, apart from the ones it kept: when
    // those are a majority of the new members and the rest a majority of the old ones, both
    // sides can decide.
    const side = [...new Set([...now.filter((id) => !before.includes(id)), leader])];
    const apart = peers.filter((id) => !side.includes(id));
    if (apart.length === 0 || side.length === 1) return;
    trace?.(`nemesis: the leader ${leader} and the new members [${side.join(',')}] are cut off`);
    aimedPartition([side, apart], 300 + splitRng.next() * 700);
  };

  // Clients: each runs operations one at a time against a random live node.
  let clientsLeft = scenario.clients;
  let finalReadsLeft = -1;
  let finishedAt: number | undefined;

  /**
   * Gives up on an operation after opTimeoutMs while faults go on (it stays open in the
   * history). Once the network has healed, an operation pending on a live node must finish
   * within livenessBoundMs of the heal (or of its call, if later): if not, that is a
   * liveness violation.
   */
  const armDeadline = (
    call: number,
    stillPending: () => boolean,
    describe: () => string,
    giveUp: () => void,
    crashedUnder: () => boolean = () => false,
  ): TimerHandle => {
    let handle: TimerHandle;
    const check = (): void => {
      if (!stillPending()) return;
      if (healed && !crashedUnder()) {
        const due = Math.max(call, healAt) + scenario.livenessBoundMs;
        if (scheduler.now() < due) {
          handle = scheduler.setTimer(due - scheduler.now(), check);
          return;
        }
        checker.violate(
          `liveness: ${describe()} did not finish within ${scenario.livenessBoundMs} ms of the heal`,
        );
      }
      giveUp();
    };
    handle = scheduler.setTimer(scenario.opTimeoutMs, check);
    return { cancel: () => handle.cancel() };
  };

  const runClient = (client: {
    name: string;
    process: number;
    seq: number;
    opsLeft: number;
  }): void => {
    if (client.opsLeft === 0) {
      if (--clientsLeft === 0) whenClientsDone();
      return;
    }
    const live = up();
    if (live.length === 0) {
      scheduler.setTimer(10, () => runClient(client));
      return;
    }
    const node = pick(clientRng, live);
    const host = node.host!;
    const key = `k${clientRng.int(0, scenario.keys - 1)}`;
    const roll = clientRng.next();
    if (roll < 0.2) {
      // Only a node the others take proposals from runs paxos(k, v) (a founding member always
      // may); another one would pass it on, as the node runtime does.
      const proposer = node.host!.maySpeakFor('register-0') ? node : nodes.get(founders[0]!)!;
      if (proposer.host === undefined) {
        scheduler.setTimer(10, () => runClient(client));
        return;
      }
      runPaxos(client, proposer);
      return;
    }
    const kind = roll < 0.5 ? 'get' : roll < 0.75 ? 'put' : 'append';
    const process = `${client.name}.${client.process}`;
    const value = `${process}:${client.seq++};`;
    const op: KvOperation = {
      clientId: process,
      input: kind === 'get' ? { op: 'get', key } : { op: kind, key, value },
      call: scheduler.now(),
      output: undefined,
      return: Number.POSITIVE_INFINITY,
    };
    history.push(op);
    client.opsLeft--;
    const next = (): void => {
      scheduler.setTimer(clientRng.next() * 5, () => runClient(client));
    };
    const entry: PendingOp = {
      op,
      node,
      survivesCrash: kind !== 'get' && scenario.mode === 'leader',
      incarnation: node.incarnation,
      finish: () => undefined,
      timer: armDeadline(
        op.call,
        () => pending.has(entry),
        () => `${kind} ${key} by ${process} on ${node.id}`,
        () => {
          pending.delete(entry);
          client.process++;
          next();
        },
      ),
    };
    const done = (output: string | undefined): void => {
      const crashedUnder = node.incarnation !== entry.incarnation || node.host !== host;
      if (!pending.has(entry) || (crashedUnder && !entry.survivesCrash)) return;
      pending.delete(entry);
      entry.timer.cancel();
      op.output = output;
      op.return = scheduler.now();
      next();
    };
    entry.finish = () => {
      // The node crashed under the operation: it may or may not have taken effect.
      pending.delete(entry);
      entry.timer.cancel();
      client.process++;
      next();
    };
    pending.add(entry);
    if (kind === 'get') {
      host.read(() => done(node.kv.get(key)));
    } else {
      const bytes: Value = encodeWrite({
        client: client.name,
        seq: client.seq,
        op: kind,
        key,
        value,
      });
      const acknowledged = (slot: number): void => {
        if (pending.has(entry)) checker.acknowledged(slot, bytes);
        done(undefined);
      };
      if (scenario.mode === 'leaderless')
        // Answered once applied here, as in leader mode below.
        host.append(bytes, (slot) => whenApplied(node, slot, () => acknowledged(slot)));
      else {
        checker.submitted(bytes);
        submitWithRetries(node, bytes, () => pending.has(entry), acknowledged);
      }
    }
  };

  /**
   * Leader mode: a client sends its write to a node; one that does not lead answers with the
   * leader it knows, and the client tries there (or elsewhere) with the same (client, seq),
   * until it is applied at the node that answered, or the client gives up. The state machine applies it once.
   */
  const submitWithRetries = (
    first: SimNode,
    bytes: Value,
    stillWanted: () => boolean,
    applied: (slot: number) => void,
  ): void => {
    const attempt = (node: SimNode): void => {
      if (!stillWanted()) return;
      const host = node.host;
      if (host === undefined) {
        retry(undefined);
        return;
      }
      // A node that crashes under the attempt never answers: try elsewhere after a while
      // (safe: the same (client, seq) is applied once).
      let answered = false;
      const timeout = scheduler.setTimer(SUBMIT_ATTEMPT_MS, () => {
        if (answered) return;
        answered = true;
        retry(undefined);
      });
      host.submit(bytes, (result) => {
        if (answered) return;
        if (!result.ok) {
          answered = true;
          timeout.cancel();
          retry(result.leader);
          return;
        }
        // As the node runtime does, the client hears of its write once the node has applied
        // it. Chosen is not enough: a slot below it may still be open, and a later write of
        // the same client could be chosen there, ahead of the acknowledged one.
        const answer = (): void => {
          if (answered) return;
          answered = true;
          timeout.cancel();
          applied(result.slot);
        };
        if (scenario.plant === 'ack-when-chosen') answer();
        else whenApplied(node, result.slot, answer);
      });
    };
    const retry = (leader: string | undefined): void => {
      scheduler.setTimer(5 + clientRng.next() * 10, () => {
        const hinted = leader === undefined ? undefined : nodes.get(leader);
        const live = up();
        if (hinted?.host !== undefined) attempt(hinted);
        else if (live.length > 0) attempt(pick(clientRng, live));
        else retry(undefined);
      });
    };
    attempt(first);
  };

  // An operator changes the members now and then during the faults, to any set of the nodes,
  // and retries until the change is in the log.
  const membershipRng = rng.fork();
  // Their own streams, so the other choices of a seed stay what they were before they existed.
  const splitRng = rng.fork();
  const backToBackRng = rng.fork();
  const rogueRng = rng.fork();

  // A leader that chose a slot above an open one dies now and then, before it resends the
  // lower slot's accepts (see Scenario.leaderDiesAtGap).
  // Forked after the others, so the seeds without this nemesis run as before it existed.
  const gapRng = rng.fork();
  let gapDeaths = 0;
  /** Sometimes the accepts a leader is sending now are lost to every other node. */
  const maybeLoseAccept = (leader: string): void => {
    if (!scenario.leaderDiesAtGap || healed || scheduler.now() < aimedPartitionUntil) return;
    if (!gapRng.chance(0.1)) return;
    trace?.(`nemesis: the accepts ${leader} sends now are lost`);
    aimedPartition([[leader], peers.filter((id) => id !== leader)], 0.05);
  };
  const maybeDieAtGap = (node: SimNode, slot: number): void => {
    const host = node.host;
    if (!scenario.leaderDiesAtGap || healed || gapDeaths >= 3 || host === undefined) return;
    if (host.leader !== node.id || host.deliveredThrough >= slot - 1 || !gapRng.chance(0.5)) return;
    gapDeaths++;
    scheduler.setTimer(0, () => {
      if (node.host !== host) return;
      trace?.(`nemesis: the leader ${node.id} dies with slots open below ${slot}`);
      crash(node);
      scheduler.setTimer(
        20 + gapRng.next() * 100,
        () => !healed && node.host === undefined && start(node),
      );
    });
  };

  if (scenario.rogue) {
    const rogue = new Rogue(
      network,
      rogueRng,
      {
        group: GROUP,
        members: peers,
        leaderMode: scenario.mode === 'leader',
        deliveredThrough: () => Math.max(-1, ...up().map((n) => n.host!.deliveredThrough)),
        highestRound: () => Math.max(0, ...up().map((n) => n.host!.highestRound)),
      },
      trace,
    );
    rogue.run(scheduler, { min: 2, max: 30 }, healAt + 500);
  }
  for (let i = 0; i < (scenario.membership?.changes ?? 0); i++) {
    scheduler.setTimer(membershipRng.next() * scenario.faultPhaseMs, () => {
      // Half the changes replace most of the current members: quorums of the old and the new
      // members then rarely meet, which is where a leader that asks the wrong ones goes wrong.
      const current = up()[0]?.host?.membership.latest ?? founders;
      const replace = membershipRng.chance(0.5);
      const members = peers.filter((id) =>
        membershipRng.chance(replace ? (current.includes(id) ? 0.3 : 0.9) : 0.6),
      );
      if (members.length === 0) members.push(pick(membershipRng, peers));
      // A quarter of them compare and set, from members that may be stale by the time it is chosen.
      const value = encodeMembership(members, membershipRng.chance(0.25) ? current : undefined);
      checker.submitted(value);
      const live = up();
      const first = live.length > 0 ? pick(membershipRng, live) : nodes.get(peers[0]!)!;
      trace?.(`operator submits ${describeValue(value)} to ${first.id}`);
      submitWithRetries(
        first,
        value,
        () => true,
        () => undefined,
      );
      // Sometimes a second change right behind it: the leader puts them in adjacent slots, the
      // second decided by members the first has not yet brought in.
      if (scenario.membership?.backToBack === true && backToBackRng.chance(0.5)) {
        const second = peers.filter(() => backToBackRng.chance(0.5));
        if (second.length === 0) second.push(pick(backToBackRng, peers));
        const next = encodeMembership(second);
        checker.submitted(next);
        trace?.(`operator submits ${describeValue(next)} to ${first.id} right after`);
        submitWithRetries(
          first,
          next,
          () => true,
          () => undefined,
        );
      }
      burst(first, membershipRng.int(2, 8));
      // Like a nemesis that knows where it hurts: often the leader dies right after, so the
      // next one runs phase 1 across the change, with slots in flight on both sides of it.
      scheduler.setTimer(membershipRng.next() * 20, () => {
        const leader = up().find((n) => n.host?.leader === n.id);
        if (healed || leader === undefined || !membershipRng.chance(0.5)) return;
        trace?.(`nemesis: the leader ${leader.id} dies after a membership change`);
        crash(leader);
        scheduler.setTimer(
          membershipRng.next() * 50,
          () => !healed && leader.host === undefined && start(leader),
        );
      });
      // Or the new members are cut off from the rest for a while: each side may then elect a
      // leader of its own, one from before the change and one from after it, and only phase 1
      // at the new members keeps the old side's leader from deciding their slots blind.
      if (scenario.membership?.cutOff === true && splitRng.chance(0.75)) {
        const apart = peers.filter((id) => !members.includes(id));
        scheduler.setTimer(splitRng.next() * 100, () => {
          if (healed || apart.length === 0) return;
          trace?.(`nemesis: the new members [${members.join(',')}] are cut off`);
          aimedPartition([members, apart], 50 + splitRng.next() * 300);
        });
      }
    });
  }

  // With the change, a burst of writes from clients of their own: the leader then has slots in
  // flight past the change, where a leader that ignores the membership window goes wrong.
  let bursts = 0;
  let burstsOpen = 0;
  const burst = (node: SimNode, writes: number): void => {
    for (let i = 0; i < writes; i++) {
      const clientId = `burst${bursts++}`;
      const key = `b${i}`;
      const op: KvOperation = {
        clientId,
        input: { op: 'put', key, value: clientId },
        call: scheduler.now(),
        output: undefined,
        return: Number.POSITIVE_INFINITY,
      };
      history.push(op);
      const bytes = encodeWrite({ client: clientId, seq: 0, op: 'put', key, value: clientId });
      checker.submitted(bytes);
      let open = true;
      burstsOpen++;
      const timer = armDeadline(
        op.call,
        () => open,
        () => `burst put ${key} by ${clientId}`,
        () => {
          open = false;
          burstsOpen--;
        },
      );
      submitWithRetries(
        node,
        bytes,
        () => open,
        (slot) => {
          if (!open) return;
          open = false;
          burstsOpen--;
          timer.cancel();
          checker.acknowledged(slot, bytes);
          op.return = scheduler.now();
        },
      );
    }
  };

  // Seed 001's paxos(k, v) on a few shared keys: everyone who asks must get the same value.
  const registerAnswers = new Map<string, Set<string>>();
  const runPaxos = (
    client: { name: string; process: number; seq: number; opsLeft: number },
    node: SimNode,
  ): void => {
    client.opsLeft--;
    const key = `register-${clientRng.int(0, 1)}`;
    const value = encodeWrite({
      client: client.name,
      seq: client.seq++,
      op: 'put',
      key,
      value: 'paxos',
    });
    const incarnation = node.incarnation;
    let answered = false;
    const next = (): void => void scheduler.setTimer(clientRng.next() * 5, () => runClient(client));
    // A crash of the node under the call leaves its outcome unknown: not a liveness failure.
    // Nor does a node that turned out to be no member (its view was behind when it started):
    // the others ignore its proposals, and a client of the node runtime gets NO_QUORUM.
    const timer = armDeadline(
      scheduler.now(),
      () => !answered,
      () => `paxos(${key}) on ${node.id}`,
      () => {
        answered = true;
        next();
      },
      () =>
        node.incarnation !== incarnation || node.host === undefined || !node.host.maySpeakFor(key),
    );
    node.host!.paxos(key, value, (chosen) => {
      if (answered || node.incarnation !== incarnation) return;
      answered = true;
      timer.cancel();
      const answers = registerAnswers.get(key) ?? new Set<string>();
      answers.add(Buffer.from(chosen).toString('hex'));
      registerAnswers.set(key, answers);
      if (answers.size > 1)
        checker.violate(`agreement: paxos(${key}) answered two different values`);
      next();
    });
  };

  const whenClientsDone = (): void => {
    const finalize = (): void => {
      // The final reads must cover every acknowledged write: the bursts' too.
      if (burstsOpen > 0) {
        scheduler.setTimer(10, finalize);
        return;
      }
      const live = up();
      finalReadsLeft = live.length;
      for (const node of live) {
        node.host!.read(() => {
          if (--finalReadsLeft === 0) {
            checker.checkDurability(new Map(up().map((n) => [n.id, n.kv])));
            finishedAt = scheduler.now();
          }
        });
      }
    };
    if (healed) finalize();
    else scheduler.setTimer(healAt - scheduler.now(), finalize);
  };

  for (let c = 0; c < scenario.clients; c++) {
    const client = { name: `c${c}`, process: 0, seq: 0, opsLeft: scenario.opsPerClient };
    scheduler.setTimer(clientRng.next() * 10, () => runClient(client));
  }

  // Without a leader the run ends when nothing is left to do. A leader's heartbeats never
  // stop, so in leader mode the run ends a simulated second after the final reads, long
  // enough for a straggling message to show a violation.
  let steps = 0;
  const settled = (): boolean =>
    finishedAt !== undefined && scenario.mode === 'leader' && scheduler.now() > finishedAt + 1_000;
  const stopEarly = (): boolean =>
    options.stopAtFirstViolation === true && checker.violations.length > 0;
  while (steps < STEP_BUDGET && !settled() && !stopEarly() && scheduler.step()) steps++;
  if (stopEarly()) {
    // The violation is the answer: what was still running says nothing more.
  } else if (steps >= STEP_BUDGET)
    checker.violate(`liveness: the run did not settle within ${STEP_BUDGET} steps`);
  else if (finalReadsLeft !== 0)
    checker.violate('liveness: the final reads did not complete after the heal');
  const known = up()
    .map((n) => n.host!.membership)
    .reduce<Membership | undefined>(
      (most, m) => (most === undefined || m.changes.length > most.changes.length ? m : most),
      undefined,
    );
  const membershipChanges = known?.changes.length ?? 0;
  const droppedPeerMessages: Record<string, number> = {};
  for (const host of [...up().map((n) => n.host!), ...gone])
    for (const [reason, count] of Object.entries(host.droppedPeerMessages))
      droppedPeerMessages[reason] = (droppedPeerMessages[reason] ?? 0) + count;
  for (const node of up()) node.host!.stop();

  // The clients' history must be linearizable (split by key, Porcupine-style).
  const linearizability = stopEarly()
    ? { verdict: 'unknown' as const }
    : checkOperations(kvModel, history, { maxSteps: LINEARIZABILITY_MAX_STEPS });
  if (linearizability.verdict === 'not-linearizable') {
    checker.violate(
      `linearizability: the history of key partition ${linearizability.partition} (${linearizability.operations} operations) is not linearizable`,
    );
  } else if (linearizability.verdict === 'unknown' && !stopEarly()) {
    // A history nobody could decide is not a pass: it may hide the violation the run is for.
    checker.violate(
      `linearizability: undecided within ${LINEARIZABILITY_MAX_STEPS} search steps (${history.length} operations)`,
    );
  }

  return {
    seed,
    scenario,
    violations: checker.violations,
    steps,
    simTimeMs: scheduler.now(),
    history,
    acknowledged: checker.acknowledgedCount,
    linearizability: linearizability.verdict,
    compactions,
    snapshotsInstalled,
    membershipChanges,
    membershipShapes: membershipShapes(known),
    droppedPeerMessages,
  };
}

/** Kinds of membership change chosen in one run (counts), as the README promises to cover. */
export interface MembershipShapes {
  /** Changes to an even number of members (where a majority is more than half plus a half). */
  readonly even: number;
  readonly odd: number;
  /** Changes chosen within the window of the one before: the earlier is not in force yet. */
  readonly withinWindow: number;
  /** Changes in the slot right after another. */
  readonly adjacent: number;
}

function membershipShapes(membership: Membership | undefined): MembershipShapes {
  const changes = membership?.changes ?? [];
  let even = 0;
  let withinWindow = 0;
  let adjacent = 0;
  changes.forEach((change, i) => {
    if (change.members.length % 2 === 0) even++;
    const gap = i === 0 ? Number.POSITIVE_INFINITY : change.slot - changes[i - 1]!.slot;
    if (gap < membership!.window) withinWindow++;
    if (gap === 1) adjacent++;
  });
  return { even, odd: changes.length - even, withinWindow, adjacent };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)]!;
}

/** A random split of the nodes into two sides. */
function split(rng: Rng, peers: readonly string[]): string[][] {
  const a: string[] = [];
  const b: string[] = [];
  for (const id of peers) (rng.chance(0.5) ? a : b).push(id);
  return [a, b];
}
