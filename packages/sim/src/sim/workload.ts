import type { Value } from '@synod/protocol';
import type { Rng, TimerHandle } from '@synod/transport';
import type { SimCluster, SimNode } from './cluster.js';
import { encodeWrite, hex } from './kv.js';
import { type KvOperation, pick, type SimWorld } from './world.js';

/** Leader mode: how long a client waits for one node's answer before trying another. */
const SUBMIT_ATTEMPT_MS = 1_000;

interface Client {
  readonly name: string;
  /** Bumped when an operation's outcome is unknown: its next ones are another process's. */
  process: number;
  seq: number;
  opsLeft: number;
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

/**
 * The simulated clients: each runs operations one at a time against a random live node and
 * records them in the history; once all are done and the network has healed, every live node
 * does a final read.
 */
export class Workload {
  readonly history: KvOperation[] = [];
  readonly #pending = new Set<PendingOp>();
  #clientsLeft: number;
  #finalReadsLeft = -1;
  #finishedAt: number | undefined;
  #bursts = 0;
  #burstsOpen = 0;
  #probes = 0;
  /** Reads a leader served without a log slot, and those it could not confirm (then read as pg_paxos does). */
  readonly leaderReads = { served: 0, refused: 0, stalenessProbes: 0 };
  /** Seed 001's paxos(k, v) on a few shared keys: everyone who asks must get the same value. */
  readonly #registerAnswers = new Map<string, Set<string>>();

  constructor(
    private readonly world: SimWorld,
    private readonly cluster: SimCluster,
    private readonly clientRng: Rng,
    private readonly healed: () => boolean,
  ) {
    this.#clientsLeft = world.scenario.clients;
  }

  /** When the final reads completed, if they did. */
  get finishedAt(): number | undefined {
    return this.#finishedAt;
  }

  get finalReadsDone(): boolean {
    return this.#finalReadsLeft === 0;
  }

  start(): void {
    const { scenario, scheduler } = this.world;
    for (let c = 0; c < scenario.clients; c++) {
      const client = { name: `c${c}`, process: 0, seq: 0, opsLeft: scenario.opsPerClient };
      scheduler.setTimer(this.clientRng.next() * 10, () => this.#runClient(client));
    }
  }

  /** The operations in flight at a node that crashed may or may not have taken effect: they stay open. */
  crashed(node: SimNode): void {
    for (const entry of [...this.#pending])
      if (entry.node === node && !entry.survivesCrash) entry.finish();
  }

  /**
   * Gives up on an operation after opTimeoutMs while faults go on (it stays open in the
   * history). Once the network has healed, an operation pending on a live node must finish
   * within livenessBoundMs of the heal (or of its call, if later): if not, that is a
   * liveness violation.
   */
  #armDeadline(
    call: number,
    stillPending: () => boolean,
    describe: () => string,
    giveUp: () => void,
    crashedUnder: () => boolean = () => false,
  ): TimerHandle {
    const { scenario, scheduler, checker, healAt } = this.world;
    let handle: TimerHandle;
    const check = (): void => {
      if (!stillPending()) return;
      if (this.healed() && !crashedUnder()) {
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
  }

  #runClient(client: Client): void {
    const { scenario, scheduler, checker, founders } = this.world;
    const clientRng = this.clientRng;
    const pending = this.#pending;
    if (client.opsLeft === 0) {
      if (--this.#clientsLeft === 0) this.#whenClientsDone();
      return;
    }
    const live = this.cluster.up();
    if (live.length === 0) {
      scheduler.setTimer(10, () => this.#runClient(client));
      return;
    }
    let node = pick(clientRng, live);
    const key = `k${clientRng.int(0, scenario.keys - 1)}`;
    const roll = clientRng.next();
    // A client reads where it last heard the leader is, as a linearizable read is routed: to
    // any node that believes it leads, a deposed one cut off from the group included.
    if (scenario.leaderReads && roll >= 0.2 && roll < 0.5 && clientRng.chance(0.7)) {
      const leaders = live.filter((n) => n.host?.leader === n.id);
      if (leaders.length > 0) node = pick(clientRng, leaders);
    }
    const host = node.host!;
    if (roll < 0.2) {
      // Only a node the others take proposals from runs paxos(k, v) (a founding member always
      // may); another one would pass it on, as the node runtime does.
      const proposer = node.host!.maySpeakFor('register-0')
        ? node
        : this.cluster.nodes.get(founders[0]!)!;
      if (proposer.host === undefined) {
        scheduler.setTimer(10, () => this.#runClient(client));
        return;
      }
      this.#runPaxos(client, proposer);
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
    this.history.push(op);
    client.opsLeft--;
    const next = (): void => {
      scheduler.setTimer(clientRng.next() * 5, () => this.#runClient(client));
    };
    const entry: PendingOp = {
      op,
      node,
      survivesCrash: kind !== 'get' && scenario.mode === 'leader',
      incarnation: node.incarnation,
      finish: () => undefined,
      timer: this.#armDeadline(
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
      this.#read(node, () => done(node.kv.get(key)));
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
        host.append(bytes, (slot) =>
          this.cluster.whenApplied(node, slot, () => acknowledged(slot)),
        );
      else {
        checker.submitted(bytes);
        this.submitWithRetries(node, bytes, () => pending.has(entry), acknowledged);
      }
    }
  }

  /**
   * Leader mode: a client sends its write to a node; one that does not lead answers with the
   * leader it knows, and the client tries there (or elsewhere) with the same (client, seq),
   * until it is applied at the node that answered, or the client gives up. The state machine applies it once.
   */
  submitWithRetries(
    first: SimNode,
    bytes: Value,
    stillWanted: () => boolean,
    applied: (slot: number) => void,
    /** The nodes this client can reach (default: all). */
    reaches: (node: SimNode) => boolean = () => true,
  ): void {
    const { scenario, scheduler } = this.world;
    const clientRng = this.clientRng;
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
        else this.cluster.whenApplied(node, result.slot, answer);
      });
    };
    const retry = (leader: string | undefined): void => {
      scheduler.setTimer(5 + clientRng.next() * 10, () => {
        const hinted = leader === undefined ? undefined : this.cluster.nodes.get(leader);
        const live = this.cluster.up().filter(reaches);
        if (hinted?.host !== undefined && reaches(hinted)) attempt(hinted);
        else if (live.length > 0) attempt(pick(clientRng, live));
        else retry(undefined);
      });
    };
    attempt(first);
  }

  /**
   * With a membership change, a burst of writes from clients of their own: the leader then has
   * slots in flight past the change, where a leader that ignores the membership window goes wrong.
   */
  burst(node: SimNode, writes: number): void {
    const { scheduler, checker } = this.world;
    for (let i = 0; i < writes; i++) {
      const clientId = `burst${this.#bursts++}`;
      const key = `b${i}`;
      const op: KvOperation = {
        clientId,
        input: { op: 'put', key, value: clientId },
        call: scheduler.now(),
        output: undefined,
        return: Number.POSITIVE_INFINITY,
      };
      this.history.push(op);
      const bytes = encodeWrite({ client: clientId, seq: 0, op: 'put', key, value: clientId });
      checker.submitted(bytes);
      let open = true;
      this.#burstsOpen++;
      const timer = this.#armDeadline(
        op.call,
        () => open,
        () => `burst put ${key} by ${clientId}`,
        () => {
          open = false;
          this.#burstsOpen--;
        },
      );
      this.submitWithRetries(
        node,
        bytes,
        () => open,
        (slot) => {
          if (!open) return;
          open = false;
          this.#burstsOpen--;
          timer.cancel();
          checker.acknowledged(slot, bytes);
          op.return = scheduler.now();
        },
      );
    }
  }

  /**
   * A read as a client's linearizable read runs: a node that believes it leads serves it
   * without a log slot (ReadIndex) once a majority confirms it still leads; any other node,
   * or a leader that cannot confirm, reads as pg_paxos does (a majority's highest accepted
   * slot). `readHere` runs once the node has applied what the read must see.
   */
  #read(node: SimNode, readHere: () => void): void {
    const host = node.host!;
    if (this.world.scenario.leaderReads && host.leader === node.id)
      host.leaderRead((outcome) => {
        if ('readIndex' in outcome) {
          this.leaderReads.served++;
          this.cluster.whenApplied(node, outcome.readIndex, readHere);
        } else {
          this.leaderReads.refused++;
          host.read(readHere);
        }
      });
    else host.read(readHere);
  }

  /**
   * A client that knew the old leader asks the new one the moment it leads: a read at takeover.
   * The writes the old leader acknowledged may still sit in slots the new leader's phase 1
   * found but has not delivered; a leader that served the read from its state then (without
   * waiting to be settled, leader-reads.ts) would miss them.
   */
  readAtTakeover(node: SimNode, rng: Rng): void {
    const { scenario, scheduler } = this.world;
    if (!scenario.leaderReads || this.healed() || !rng.chance(0.5)) return;
    if (node.host === undefined) return;
    this.#probeRead(node, `takeover${this.#probes++}`, `k${rng.int(0, scenario.keys - 1)}`);
  }

  /** A read of `key` from `node` by a client of its own, recorded for the checker. */
  #probeRead(node: SimNode, clientId: string, key: string): void {
    const { scheduler } = this.world;
    const host = node.host;
    if (host === undefined) return;
    const get: KvOperation = {
      clientId,
      input: { op: 'get', key },
      call: scheduler.now(),
      output: undefined,
      return: Number.POSITIVE_INFINITY,
    };
    this.history.push(get);
    this.leaderReads.stalenessProbes++;
    this.#read(node, () => {
      if (node.host !== host) return; // crashed under the read: its outcome is unknown
      get.output = node.kv.get(key);
      get.return = scheduler.now();
    });
  }

  /**
   * The leader `cutOff` was just cut off from the others (Nemesis.maybeIsolateLeader): a
   * client of its own writes through `other` until a new leader acknowledges the write, then
   * reads the key where it last knew the leader to be. A leader that still served reads on
   * its own word would miss the write.
   */
  probeStaleRead(cutOff: SimNode, other: SimNode): void {
    const { scheduler, checker } = this.world;
    const clientId = `probe${this.#probes++}`;
    const key = 'k0';
    const put: KvOperation = {
      clientId,
      input: { op: 'put', key, value: `${clientId}:0;` },
      call: scheduler.now(),
      output: undefined,
      return: Number.POSITIVE_INFINITY,
    };
    this.history.push(put);
    const bytes = encodeWrite({
      client: clientId,
      seq: 0,
      op: 'put',
      key,
      value: `${clientId}:0;`,
    });
    checker.submitted(bytes);
    let open = true;
    // Given up at the heal: the read that follows only means something while cutOff is cut off.
    scheduler.setTimer(Math.max(0, this.world.healAt - scheduler.now()), () => {
      open = false;
    });
    this.submitWithRetries(
      other,
      bytes,
      () => open,
      (slot) => {
        if (!open) return;
        open = false;
        checker.acknowledged(slot, bytes);
        put.return = scheduler.now();
        // The client reads a moment later: the read begins strictly after the write returned.
        scheduler.setTimer(1, () => {
          if (!this.healed()) this.#probeRead(cutOff, `${clientId}.read`, key);
        });
      },
      // The client is on the others' side: the leader cut off is out of its reach.
      (node) => node !== cutOff,
    );
  }

  #runPaxos(client: Client, node: SimNode): void {
    const { scheduler, checker } = this.world;
    const clientRng = this.clientRng;
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
    const next = (): void =>
      void scheduler.setTimer(clientRng.next() * 5, () => this.#runClient(client));
    // A crash of the node under the call leaves its outcome unknown: not a liveness failure.
    // Nor does a node that turned out to be no member (its view was behind when it started):
    // the others ignore its proposals, and a client of the node runtime gets NO_QUORUM.
    const timer = this.#armDeadline(
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
      const answers = this.#registerAnswers.get(key) ?? new Set<string>();
      answers.add(hex(chosen));
      this.#registerAnswers.set(key, answers);
      if (answers.size > 1)
        checker.violate(`agreement: paxos(${key}) answered two different values`);
      next();
    });
  }

  #whenClientsDone(): void {
    const { scheduler, checker, healAt } = this.world;
    const finalize = (): void => {
      // The final reads must cover every acknowledged write: the bursts' too.
      if (this.#burstsOpen > 0) {
        scheduler.setTimer(10, finalize);
        return;
      }
      const live = this.cluster.up();
      this.#finalReadsLeft = live.length;
      for (const node of live) {
        node.host!.read(() => {
          if (--this.#finalReadsLeft === 0) {
            checker.checkDurability(new Map(this.cluster.up().map((n) => [n.id, n.kv])));
            this.#finishedAt = scheduler.now();
          }
        });
      }
    };
    if (this.healed()) finalize();
    else scheduler.setTimer(healAt - scheduler.now(), finalize);
  }
}
