import {
  type AcceptorContext,
  type AcceptorState,
  acceptorMachine,
  appendMachine,
  catchUpMachine,
  type LeaderEffect,
  learnerMachine,
  type ProtocolRules,
  proposerMachine,
  rulesFor,
} from '@synod/actors';
import {
  createPeerCodec,
  DecodeError,
  groupSubjects,
  type Instance,
  InvalidNameError,
  Membership,
  type PeerMessage,
  type Value,
} from '@synod/protocol';
import type { TimerHandle, TransportMessage } from '@synod/transport';
import { type AnyActorRef, createActor } from 'xstate';
import { LeaderMode, type SubmitResult } from './leader-mode.js';
import { type DropReason, PeerFilter } from './peer-filter.js';
import { unwrapSnapshot, wrapSnapshot } from './snapshot-envelope.js';
import { tell } from './tell.js';
import type { GroupHostOptions, Snapshot } from './types.js';

export type {
  Disk,
  GroupHostOptions,
  HostObserver,
  InspectionSink,
  Snapshot,
  SnapshotHooks,
} from './types.js';

interface Proposal {
  readonly actor: AnyActorRef;
  readonly waiters: ((value: Value) => void)[];
}

const peerCodec = createPeerCodec();

/**
 * Hosts one group's machines on one node and executes their effects: messages go out on the
 * group's subjects, records to the disk, timers to the scheduler. Protocol decisions stay in
 * the machines; this class only routes. Used by the simulator; the node runtime does the
 * same with NATS, the file store and real time.
 */
export class GroupHost {
  readonly nodeId: string;
  readonly #o: GroupHostOptions;
  readonly #subjects;
  readonly #nodeSubject: string;
  readonly #timers = new Map<string, TimerHandle>();
  readonly #proposals = new Map<Instance, Proposal>();
  readonly #ops = new Set<AnyActorRef>();
  readonly #log = new Map<number, Value>();
  /** Register keys whose value this node learned (paxos(k, v) answers at once afterwards). */
  readonly #registers = new Map<string, Value>();
  readonly #readWaiters: { through: number; done: (through: number) => void }[] = [];
  /**
   * Reads still asking acceptors, with the member sets they asked: they ask again when the
   * member sets of the undelivered slots change (see read).
   */
  readonly #readRestarts = new Map<() => void, string>();
  readonly #acceptor: AnyActorRef;
  readonly #learner: AnyActorRef;
  readonly #leaderMode: LeaderMode | undefined;
  #roundFloor = 0;
  /** Leader mode: the founding members and every change delivered so far. */
  #membership: Membership;
  /** The last snapshot served to peers, wrapped with its membership (see #servedSnapshot). */
  #served: { readonly source: Snapshot; readonly wrapped: Snapshot } | undefined;
  /**
   * Read request ids start at a seed-derived base, so answers still in flight from this
   * node's previous life (the same node subject) are not mistaken for answers to new reads.
   */
  #nextRequestId: number;
  #nextSlot = 0;
  /** The first slot #log still holds: those before it were compacted away. */
  #logStart = 0;
  #actorSeq = 0;
  #stopped = false;
  decodeErrors = 0;
  readonly #filter: PeerFilter;
  /** The protocol's rules; a simulator run bends one of them (GroupHostOptions.plant). */
  readonly #rules: ProtocolRules;

  constructor(options: GroupHostOptions) {
    this.#o = options;
    this.#rules = rulesFor(options.plant);
    this.nodeId = options.nodeId;
    this.#subjects = groupSubjects(options.group);
    this.#nextRequestId = (Math.abs(options.seed) % 2 ** 21) * 2 ** 20;
    this.#nodeSubject = this.#subjects.node(options.nodeId);
    this.#membership = new Membership(options.peers, [], options.membershipWindow);
    const initial = options.snapshots?.initial;
    if (initial !== undefined) {
      if (options.mode !== 'leader') throw new Error('snapshots need leader mode');
      this.#nextSlot = initial.throughSlot + 1;
      this.#logStart = this.#nextSlot;
      if (initial.membership !== undefined) this.#membership = Membership.from(initial.membership);
    }
    const recovered = options.disk.durable;
    let highestRound = 0;
    for (const record of recovered) {
      if (record.kind === 'round') this.#roundFloor = Math.max(this.#roundFloor, record.round);
      const round =
        record.kind === 'round' ? record.round : 'ballot' in record ? record.ballot.round : 0;
      highestRound = Math.max(highestRound, round);
    }
    this.#filter = new PeerFilter(
      {
        nodeId: options.nodeId,
        membership: () => this.#membership,
        firstUnknownSlot: () => this.#nextSlot,
        followedLeader: () => this.#leaderMode?.followed(),
        ownAccepted: (slot) => this.acceptorState.acceptedFor(slot),
        leaderMode: options.mode === 'leader',
      },
      highestRound,
    );
    const base = {
      group: options.group,
      nodeId: options.nodeId,
      rules: this.#rules,
    };
    this.#acceptor = this.#start(
      'acceptor',
      createActor(acceptorMachine, {
        input: { ...base, recovered, copyToLearners: options.mode !== 'leader' },
      }),
    );
    this.#learner = this.#start(
      'learner',
      createActor(learnerMachine, {
        input: {
          ...base,
          acceptorCount: options.peers.length,
          nextSlot: this.#nextSlot,
          // A distinguished leader's acceptors send learners no votes: any that arrive are forged.
          learnFromVotes: options.mode !== 'leader',
        },
      }),
    );
    const t = options.transport;
    // This node's own messages reach its machines in-process (see #deliverLocally): the copy
    // the network echoes back is dropped.
    t.subscribe(this.#subjects.acceptor, (m) =>
      this.#receive(m, (message) => {
        if (message.from !== this.nodeId) this.#toAcceptor(message, m.reply);
      }),
    );
    t.subscribe(this.#subjects.learn, (m) =>
      this.#receive(m, (message) => {
        if (message.from !== this.nodeId) this.#toLearner(message);
      }),
    );
    t.subscribe(this.#nodeSubject, (m) => this.#receive(m, (message) => this.#routeReply(message)));
    this.#leaderMode = options.mode === 'leader' ? this.#startLeaderMode() : undefined;
  }

  #startLeaderMode(): LeaderMode {
    const o = this.#o;
    const mode = new LeaderMode({
      nodeId: this.nodeId,
      group: o.group,
      membership: () => this.#membership,
      scheduler: o.scheduler,
      subjects: this.#subjects,
      seed: o.seed,
      rules: this.#rules,
      timing: o.leaderTiming,
      maxInFlight: o.maxInFlight,
      minRound: () => this.#roundFloor + 1,
      firstUnknownSlot: () => this.#nextSlot,
      log: () => this.#log,
      start: (name, actor) => this.#start(name, actor),
      publish: (subject, message) => {
        if (!this.#stopped)
          o.transport.publish(subject, peerCodec.encode(message), { reply: this.#nodeSubject });
      },
      learn: (slot, value) => tell(this.#learner, { type: 'known', instance: slot, value }),
      proposeNoop: (slot, done) => !this.#stopped && this.#propose(slot, new Uint8Array(0), done),
      logStart: () => this.#logStart,
      snapshotChunkBytes: o.snapshotChunkBytes,
      latestSnapshot: () => this.#servedSnapshot(),
      installSnapshot: (snapshot) => this.#install(snapshot),
    });
    o.transport.subscribe(this.#subjects.catchup, (m) =>
      this.#receive(m, (message) => mode.serveCatchUp(message, m.reply)),
    );
    return mode;
  }

  /** Leader mode: puts a value in the log through the leader. Not the leader: says who is. */
  submit(value: Value, done: (result: SubmitResult) => void): void {
    if (this.#leaderMode === undefined)
      throw new Error('submit() needs leader mode; use append() without a leader');
    this.#leaderMode.submit(value, done);
  }

  /** Leader mode: who leads, as far as this node knows. */
  get leader(): string | undefined {
    return this.#leaderMode?.leader;
  }

  /** Leader mode: ballot, commit index and the leader's last heartbeat, as this node sees them. */
  leaderView(): { ballot: string; commitIndex: number; lastHeartbeatMsAgo: number | null } {
    return (
      this.#leaderMode?.view() ?? {
        ballot: '0.-',
        commitIndex: this.deliveredThrough,
        lastHeartbeatMsAgo: null,
      }
    );
  }

  /** Leader mode: the group's members over the log, as far as this node has delivered it. */
  get membership(): Membership {
    return this.#membership;
  }

  /** The membership a snapshot through `slot` must carry (Snapshot.membership). */
  membershipThrough(slot: number): Membership {
    return this.#membership.through(slot);
  }

  /** Slots delivered on this node and not compacted away, in order. */
  get log(): ReadonlyMap<number, Value> {
    return this.#log;
  }

  /** The highest ballot round this node has seen believed (its own included). */
  get highestRound(): number {
    return this.#filter.highestRound;
  }

  /** Peer messages not believed, by reason (see PeerFilter), since this host started. */
  get droppedPeerMessages(): Readonly<Record<DropReason, number>> {
    return this.#filter.dropped;
  }

  /** The acceptor's state, for checkers and for measuring what it holds. */
  get acceptorState(): AcceptorState {
    return (this.#acceptor.getSnapshot().context as AcceptorContext).state;
  }

  /**
   * Forgets every slot at or below `throughSlot`: the delivered values here, and the
   * acceptor's records of them (made durable, then the store is rewritten without them).
   * Only call it once a snapshot that covers `throughSlot` is durable: peers that are behind
   * it can then only catch up from a snapshot.
   */
  compact(throughSlot: number): void {
    if (this.#stopped || throughSlot < this.#logStart) return;
    if (throughSlot >= this.#nextSlot)
      throw new RangeError(
        `cannot compact through slot ${throughSlot}: only slots before ${this.#nextSlot} are delivered`,
      );
    for (let slot = this.#logStart; slot <= throughSlot; slot++) this.#log.delete(slot);
    this.#logStart = throughSlot + 1;
    tell(this.#acceptor, { type: 'compact', throughSlot });
    if (this.#o.disk.rewrite !== undefined) {
      const records = this.acceptorState.liveRecords();
      if (this.#roundFloor > 0) records.push({ kind: 'round', round: this.#roundFloor });
      this.#o.disk.rewrite(records);
    }
  }

  get deliveredThrough(): number {
    return this.#nextSlot - 1;
  }

  /** pg_paxos's append: calls back with the slot the value was chosen in. */
  append(value: Value, done: (slot: number) => void): void {
    const actor = createActor(appendMachine, {
      input: { value, firstUnknownSlot: this.#nextSlot },
    });
    this.#startOp(actor, (output) => done((output as { slot: number }).slot));
  }

  /**
   * pg_paxos's strong read: calls back once this node has applied every write acknowledged
   * before the call. Returns a cancel function: a read given up on (a timeout) stops asking.
   */
  read(done: (through: number) => void): () => void {
    let cancelled = false;
    let cancelRound = (): void => undefined;
    // A write acknowledged under members this node has not yet learned of was accepted by a
    // majority of those members: the first change it did not know of was chosen under members
    // it did know, so catching up brings it here, and the read asks again. A round still
    // asking when the member sets of the undelivered slots change starts over too: members it
    // asked may no longer speak for the group (their answers are dropped), and slots
    // delivered since need no answer.
    const restart = (): void => {
      cancelRound();
      round();
    };
    const round = (): void => {
      const membership = this.#membership;
      this.#readRestarts.set(restart, this.#quorumsKey());
      cancelRound = this.#readRound((through) => {
        this.#readRestarts.delete(restart);
        if (cancelled) return;
        if (this.#membership !== membership) round();
        else done(through);
      });
    };
    round();
    return () => {
      cancelled = true;
      this.#readRestarts.delete(restart);
      cancelRound();
    };
  }

  #readRound(done: (through: number) => void): () => void {
    const leaderMode = this.#leaderMode !== undefined;
    const actor = createActor(catchUpMachine, {
      input: {
        group: this.#o.group,
        nodeId: this.nodeId,
        acceptorCount: this.#o.peers.length,
        ...(leaderMode ? { quorums: this.#membership.configsFrom(this.#nextSlot) } : {}),
        deliveredThrough: this.deliveredThrough,
        requestId: this.#nextRequestId++,
      },
    });
    let waiter: { through: number; done: (through: number) => void } | undefined;
    this.#startOp(actor, (output) => {
      const through = (output as { through: number }).through;
      if (this.deliveredThrough >= through) done(through);
      else {
        waiter = { through, done };
        this.#readWaiters.push(waiter);
      }
    });
    return () => {
      this.#ops.delete(actor);
      actor.stop();
      const index = waiter === undefined ? -1 : this.#readWaiters.indexOf(waiter);
      if (index >= 0) this.#readWaiters.splice(index, 1);
    };
  }

  /**
   * Whether the group's other nodes take this node's proposals for `instance` (PeerFilter's
   * view of who speaks for the group): a node that is no member must not start paxos(k, v).
   */
  maySpeakFor(instance: number | string): boolean {
    return this.#filter.speaks(this.nodeId, instance);
  }

  /** Single-decree paxos(key, value): calls back with the value chosen for the key. */
  paxos(key: Instance, value: Value, done: (value: Value) => void): void {
    this.#propose(key, value, done);
  }

  /** Stops everything at once, as a crash would: no effect of this host runs afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
    for (const { actor } of this.#proposals.values()) actor.stop();
    for (const op of this.#ops) op.stop();
    this.#leaderMode?.stop();
    this.#acceptor.stop();
    this.#learner.stop();
    void this.#o.transport.close();
  }

  /** A peer's snapshot: the state machine jumps to its slot, and delivery goes on after it. */
  #install(wrapped: Snapshot): void {
    if (this.#stopped || wrapped.throughSlot < this.#nextSlot) return;
    let snapshot: Snapshot;
    let membership: Membership | undefined;
    try {
      snapshot = unwrapSnapshot(wrapped);
      if (snapshot.membership !== undefined) membership = Membership.from(snapshot.membership);
    } catch (error) {
      // A damaged snapshot is dropped like any malformed message: the transfer starts over.
      const damaged =
        error instanceof DecodeError ||
        error instanceof InvalidNameError ||
        error instanceof SyntaxError ||
        error instanceof RangeError;
      if (!damaged) throw error;
      this.decodeErrors++;
      return;
    }
    this.#o.snapshots?.install(snapshot);
    for (const slot of this.#log.keys()) if (slot <= snapshot.throughSlot) this.#log.delete(slot);
    this.#nextSlot = snapshot.throughSlot + 1;
    this.#setMembership(membership ?? this.#membership);
    this.#logStart = Math.max(this.#logStart, this.#nextSlot);
    // Proposals for slots the snapshot covers are moot: those slots are chosen.
    for (const [instance, { actor }] of this.#proposals) {
      if (typeof instance === 'number' && instance <= snapshot.throughSlot) {
        this.#proposals.delete(instance);
        actor.stop();
      }
    }
    tell(this.#learner, { type: 'skip', nextSlot: this.#nextSlot });
    this.#leaderMode?.skipped(snapshot.throughSlot);
    this.#releaseReads();
  }

  /**
   * The owner's latest snapshot as peers receive it: with the membership through its slot
   * inside the bytes, so the transfer messages need not change. Wrapped once per snapshot.
   */
  #servedSnapshot(): Snapshot | undefined {
    const source = this.#o.snapshots?.latest();
    if (source === undefined) return undefined;
    if (this.#served?.source !== source) {
      const membership = source.membership ?? this.membershipThrough(source.throughSlot).toRecord();
      this.#served = { source, wrapped: wrapSnapshot({ ...source, membership }) };
    }
    return this.#served.wrapped;
  }

  #start(name: string, actor: AnyActorRef): AnyActorRef {
    const key = `${name}#${this.#actorSeq++}`;
    this.#o.inspection?.started(key, actor);
    actor.on('*', (effect: LeaderEffect) => this.#execute(key, actor, effect));
    actor.subscribe({ error: (error) => this.#fail(error) });
    actor.start();
    return actor;
  }

  #startOp(actor: AnyActorRef, done: (output: unknown) => void): void {
    this.#ops.add(actor);
    actor.subscribe({
      complete: () => {
        this.#ops.delete(actor);
        // An op stopped early (a cancelled read) completes without an output.
        const output: unknown = actor.getSnapshot().output;
        if (!this.#stopped && output !== undefined) done(output);
      },
    });
    this.#start('op', actor);
  }

  #fail(error: unknown): void {
    this.#o.observer?.failed?.(this.nodeId, error);
  }

  #receive(m: TransportMessage, deliver: (message: PeerMessage) => void): void {
    if (this.#stopped) return;
    let message: PeerMessage;
    try {
      message = peerCodec.decode(m.data);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.decodeErrors++;
      return;
    }
    // The network's echo of this node's own messages is dropped (they arrive locally).
    if (message.from === this.nodeId) {
      deliver(message);
      return;
    }
    const dropped = this.#rules.peerVerdict(() => this.#filter.check(message));
    if (dropped !== undefined) {
      this.#o.observer?.dropped?.(this.nodeId, message, dropped);
      // A decide this node cannot vouch for still says the slot is chosen: fetch it from logs.
      if (dropped === 'unverified-decide' && message.type === 'decide')
        this.#leaderMode?.chosenElsewhere(message.instance);
      // A sender this node does not know as a member may be one it has not heard of yet:
      // this node may be behind the change that added it, and would stay deaf to it.
      else if (dropped === 'not-a-member') this.#leaderMode?.probe();
      return;
    }
    this.#o.observer?.received?.(this.nodeId, message, false);
    deliver(message);
  }

  #toAcceptor(message: PeerMessage, replyTo: string | undefined): void {
    // The leader's accepts say it is alive as well as its heartbeats do, and under a burst
    // of large writes they arrive first: a follower must not call an election then.
    if (message.type === 'accept') this.#leaderMode?.acceptSeen(message);
    tell(this.#acceptor, {
      type: 'message',
      message,
      ...(replyTo === undefined ? {} : { replyTo }),
    });
  }

  #toLearner(message: PeerMessage): void {
    if (message.type === 'heartbeat') this.#leaderMode?.heartbeat(message);
    else tell(this.#learner, { type: 'message', message });
  }

  /**
   * A message of this node to its own acceptor, its own learner, or its own node subject goes
   * straight to the machine, on the next turn (never inside the sender's step): no socket
   * write and read, no codec, and one network hop less on the leader's own acknowledgement.
   */
  #deliverLocally(to: 'acceptors' | 'learners' | 'self', message: PeerMessage): void {
    this.#o.scheduler.setTimer(0, () => {
      if (this.#stopped) return;
      this.#o.observer?.received?.(this.nodeId, message, true);
      if (to === 'acceptors') this.#toAcceptor(message, this.#nodeSubject);
      else if (to === 'learners') this.#toLearner(message);
      else this.#routeReply(message);
    });
  }

  #routeReply(message: PeerMessage): void {
    if (message.type === 'promise' && message.compactedThrough !== undefined)
      this.#leaderMode?.behind(message.compactedThrough);
    // A refused acceptance may mean the acceptor compacted the slot away (it is chosen, and
    // no ack for it will ever come): learn the chosen slots from the peers.
    if (
      message.type === 'accepted' &&
      !message.ok &&
      message.value === undefined &&
      typeof message.instance === 'number'
    )
      this.#leaderMode?.behind(message.instance);
    if (
      message.type === 'promise' ||
      (message.type === 'accepted' && message.value === undefined)
    ) {
      // Leader-mode phase 1 answers carry no instance; phase 2 answers may be for either role.
      if (
        this.#leaderMode !== undefined &&
        (message.type === 'accepted' || message.instance === undefined)
      )
        tell(this.#leaderMode.actor, { type: 'message', message });
      if (message.type === 'promise' && message.instance === undefined) return;
      const instance = message.type === 'promise' ? message.instance! : message.instance;
      const proposal = this.#proposals.get(instance);
      if (proposal !== undefined) tell(proposal.actor, { type: 'message', message });
    } else if (message.type === 'catchupResponse') {
      this.#leaderMode?.caughtUp(message);
    } else if (message.type === 'highestAcceptedAnswer') {
      for (const op of this.#ops) tell(op, { type: 'message', message });
    }
  }

  #propose(instance: Instance, value: Value, done: (value: Value) => void): void {
    const known =
      typeof instance === 'number' ? this.#log.get(instance) : this.#registers.get(instance);
    if (known !== undefined) {
      this.#o.scheduler.setTimer(0, () => !this.#stopped && done(known));
      return;
    }
    const running = this.#proposals.get(instance);
    if (running !== undefined) {
      running.waiters.push(done);
      return;
    }
    this.#o.observer?.proposed?.(this.nodeId, instance, value);
    const actor = createActor(proposerMachine, {
      input: {
        group: this.#o.group,
        nodeId: this.nodeId,
        instance,
        value,
        acceptorCount: this.#o.peers.length,
        ...(this.#leaderMode === undefined ? {} : { members: this.#membersFor(instance) }),
        minRound: this.#roundFloor + 1,
        seed: this.#o.seed * 7919 + this.#actorSeq,
        ...(this.#o.timing === undefined ? {} : { timing: this.#o.timing }),
        rules: this.#rules,
      },
    });
    const proposal: Proposal = { actor, waiters: [done] };
    this.#proposals.set(instance, proposal);
    actor.subscribe({
      complete: () => {
        if (this.#proposals.get(instance) === proposal) this.#proposals.delete(instance);
        // A proposer stopped by a snapshot install (or the host) completes without an outcome.
        const output = actor.getSnapshot().output as { value: Value } | undefined;
        if (this.#stopped || output === undefined) return;
        const chosen = output.value;
        for (const waiter of proposal.waiters) waiter(chosen);
      },
    });
    this.#start(`proposer:${String(instance)}`, actor);
  }

  /**
   * Who decides `instance` in leader mode: the members governing a log slot (a no-op
   * proposal is only started for slots within the membership window of delivery, whose members
   * are known), and the founding members for paxos(key, value) registers, which no change
   * of membership moves.
   */
  #membersFor(instance: Instance): readonly string[] {
    if (typeof instance !== 'number') return this.#membership.genesis;
    if (instance >= this.#nextSlot + this.#membership.window)
      throw new RangeError(`slot ${instance} is too far ahead to know its members`);
    return this.#membership.membersAt(instance);
  }

  #execute(key: string, actor: AnyActorRef, effect: LeaderEffect): void {
    if (this.#stopped) return;
    const o = this.#o;
    switch (effect.type) {
      case 'send': {
        if (actor === this.#acceptor) o.observer?.acceptorAnswered?.(this.nodeId, effect.message);
        else if (effect.message.type === 'prepare' || effect.message.type === 'prepareLog')
          o.observer?.sentPrepare?.(this.nodeId, `${this.#o.seed}/${key}`, effect.message.ballot);
        else if (effect.message.type === 'accept') {
          const m = effect.message;
          o.observer?.sentAccept?.(this.nodeId, m.instance, m.ballot, m.value);
        }
        const to = effect.to;
        if (to.kind === 'reply' && to.to === this.#nodeSubject) {
          this.#deliverLocally('self', effect.message);
          break;
        }
        const bytes = peerCodec.encode(effect.message);
        if (to.kind === 'acceptors') {
          this.#deliverLocally('acceptors', effect.message);
          o.transport.publish(this.#subjects.acceptor, bytes, { reply: this.#nodeSubject });
        } else if (to.kind === 'learners') {
          this.#deliverLocally('learners', effect.message);
          o.transport.publish(this.#subjects.learn, bytes);
        } else o.transport.publish(to.to, bytes);
        break;
      }
      case 'persist':
        for (const record of effect.records)
          if (record.kind === 'round' && record.round > this.#roundFloor)
            this.#raiseFloor(record.round);
        o.disk.write(
          effect.records,
          () => !this.#stopped && tell(actor, { type: 'persisted', id: effect.id }),
        );
        break;
      case 'setTimer': {
        const name = `${key}:${effect.timer}`;
        this.#timers.get(name)?.cancel();
        this.#timers.set(
          name,
          o.scheduler.setTimer(effect.delayMs, () => {
            this.#timers.delete(name);
            if (this.#stopped) return;
            o.observer?.timerFired?.(this.nodeId, key, effect.timer);
            tell(actor, { type: 'timer', timer: effect.timer });
          }),
        );
        break;
      }
      case 'cancelTimer': {
        const name = `${key}:${effect.timer}`;
        this.#timers.get(name)?.cancel();
        this.#timers.delete(name);
        break;
      }
      case 'chosen':
        o.observer?.chosen?.(this.nodeId, effect.instance, effect.value, effect.ballot);
        tell(this.#learner, { type: 'known', instance: effect.instance, value: effect.value });
        if (typeof effect.instance === 'number')
          this.#leaderMode?.chosen(effect.instance, effect.value);
        break;
      case 'learned': {
        o.observer?.learned?.(this.nodeId, effect.instance, effect.value);
        if (typeof effect.instance === 'string') this.#registers.set(effect.instance, effect.value);
        const proposal = this.#proposals.get(effect.instance);
        if (proposal !== undefined) tell(proposal.actor, { type: 'known', value: effect.value });
        break;
      }
      case 'deliver': {
        this.#log.set(effect.slot, effect.value);
        this.#nextSlot = effect.slot + 1;
        if (this.#leaderMode !== undefined)
          this.#setMembership(this.#membership.after(effect.slot, effect.value));
        o.observer?.delivered?.(this.nodeId, effect.slot, effect.value);
        this.#leaderMode?.delivered(effect.slot, effect.value);
        this.#releaseReads();
        break;
      }
      case 'leadership':
        this.#leaderMode?.leadership(effect.leader);
        break;
      case 'refused':
        this.#leaderMode?.refused(effect.values, effect.leader);
        break;
      case 'propose':
        // With a leader, a read's missing slots come from peers first (a no-op proposal of
        // our own would depose the leader); the leader mode falls back to it if need be.
        if (this.#leaderMode !== undefined) {
          this.#leaderMode.awaitSlot(effect.instance, (value) =>
            tell(actor, { type: 'proposalDone', instance: effect.instance, value }),
          );
          break;
        }
        this.#propose(effect.instance, effect.value, (value) =>
          tell(actor, { type: 'proposalDone', instance: effect.instance, value }),
        );
        break;
    }
  }

  /**
   * Every machine that reserves rounds learns of a round reserved here at once, before it can
   * reserve again: the leader and a no-op proposer of one node must never share a ballot.
   */
  #raiseFloor(round: number): void {
    this.#roundFloor = round;
    this.#filter.sawRound(round);
    this.#rules.shareRound(() => {
      const event = { type: 'roundFloor', round } as const;
      if (this.#leaderMode !== undefined) tell(this.#leaderMode.actor, event);
      for (const { actor } of this.#proposals.values()) tell(actor, event);
    });
  }

  #setMembership(membership: Membership): void {
    this.#membership = membership;
    if (this.#readRestarts.size === 0) return;
    const now = this.#quorumsKey();
    for (const [restart, asked] of [...this.#readRestarts]) if (asked !== now) restart();
  }

  /** The member sets a read asks now: those of the undelivered slots. */
  #quorumsKey(): string {
    return this.#membership
      .configsFrom(this.#nextSlot)
      .map((members) => members.join(','))
      .join('|');
  }

  #releaseReads(): void {
    for (let i = this.#readWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#readWaiters[i]!;
      if (waiter.through <= this.deliveredThrough) {
        this.#readWaiters.splice(i, 1);
        waiter.done(waiter.through);
      }
    }
  }
}
