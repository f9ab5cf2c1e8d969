import {
  type AcceptorState,
  acceptorMachine,
  appendMachine,
  type Effect,
  type LeaderEffect,
  learnerMachine,
  type ProtocolRules,
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
import { type ActorRefFrom, createActor } from 'xstate';
import { LeaderMode, type LeaderReadOutcome } from './leader-mode.js';
import { type HostLimits, resolveHostLimits } from './limits.js';
import { type DropReason, PeerFilter } from './peer-filter.js';
import { Proposals } from './proposals.js';
import { unwrapSnapshot, wrapSnapshot } from './snapshot-envelope.js';
import { StrongReads } from './strong-reads.js';
import type { SubmitResult } from './submits.js';
import { type Feedback, type HostedActor, tell } from './tell.js';
import type { GroupHostOptions, Snapshot } from './types.js';

export type {
  Disk,
  GroupHostOptions,
  HostObserver,
  InspectionSink,
  Snapshot,
  SnapshotHooks,
} from './types.js';

const peerCodec = createPeerCodec();

/**
 * Hosts one group's machines on one node and executes their effects: messages go out on the
 * group's subjects, records to the disk, timers to the scheduler. Protocol decisions stay in
 * the machines. The parts with state of their own live beside it: single-decree proposals
 * (proposals.ts), strong reads (strong-reads.ts), the distinguished leader with its submits
 * and catch-up (leader-mode.ts), and the check of who may speak (peer-filter.ts). The
 * simulator and the node runtime both run this class, over their own transports, disks and
 * clocks.
 *
 * Over 400 lines because it is the one place that sees every machine of the node: routing
 * peer messages in, executing effects out, and compaction and snapshot installs, which must
 * move the log, the learner, the proposals and the reads together.
 */
export class GroupHost {
  readonly nodeId: string;
  readonly #o: GroupHostOptions;
  readonly #subjects;
  readonly #nodeSubject: string;
  readonly #timers = new Map<string, TimerHandle>();
  readonly #proposals: Proposals;
  /** Appends and reads running: stopped with the host. */
  readonly #ops = new Set<HostedActor<Effect>>();
  readonly #log = new Map<number, Value>();
  readonly #acceptor: ActorRefFrom<typeof acceptorMachine>;
  readonly #learner: ActorRefFrom<typeof learnerMachine>;
  readonly #leaderMode: LeaderMode | undefined;
  #roundFloor = 0;
  /** Leader mode: the founding members and every change delivered so far. */
  #membership: Membership;
  /** The last snapshot served to peers, wrapped with its membership (see #servedSnapshot). */
  #served: { readonly source: Snapshot; readonly wrapped: Snapshot } | undefined;
  #firstUnknownSlot = 0;
  /** The first slot #log still holds: those before it were compacted away. */
  #logStart = 0;
  #actorSeq = 0;
  #stopped = false;
  decodeErrors = 0;
  readonly #filter: PeerFilter;
  /** The protocol's rules; a simulator run bends one of them (GroupHostOptions.plant). */
  readonly #rules: ProtocolRules;
  readonly #limits: HostLimits;
  readonly #reads: StrongReads;

  constructor(options: GroupHostOptions) {
    this.#o = options;
    this.#rules = rulesFor(options.plant);
    this.#limits = resolveHostLimits(options.limits);
    this.nodeId = options.nodeId;
    this.#subjects = groupSubjects(options.group);
    this.#nodeSubject = this.#subjects.node(options.nodeId);
    this.#membership = new Membership(options.founders, [], options.membershipWindow);
    this.#proposals = new Proposals({
      group: options.group,
      nodeId: options.nodeId,
      acceptorCount: options.founders.length,
      scheduler: options.scheduler,
      timing: options.timing,
      rules: this.#rules,
      maxKnownRegisters: this.#limits.maxKnownRegisters,
      delivered: (slot) => this.#log.get(slot),
      membersFor: (instance) =>
        options.mode === 'leader' ? this.#membersFor(instance) : undefined,
      minRound: () => this.#roundFloor + 1,
      nextSeed: () => options.seed * 7919 + this.#actorSeq,
      stopped: () => this.#stopped,
      proposed: (instance, value) => options.observer?.proposed?.(this.nodeId, instance, value),
      start: (name, actor, feedback) => this.#start(name, actor, feedback),
    });
    this.#reads = new StrongReads({
      group: options.group,
      nodeId: options.nodeId,
      acceptorCount: options.founders.length,
      leaderMode: options.mode === 'leader',
      seed: options.seed,
      membership: () => this.#membership,
      firstUnknownSlot: () => this.#firstUnknownSlot,
      startOp: (actor, feedback, completed) => this.#startOp(actor, feedback, completed),
      stopOp: (actor) => {
        this.#ops.delete(actor);
        actor.stop();
      },
    });
    const initial = options.snapshots?.initial;
    if (initial !== undefined) {
      if (options.mode !== 'leader') throw new Error('snapshots need leader mode');
      this.#firstUnknownSlot = initial.throughSlot + 1;
      this.#logStart = this.#firstUnknownSlot;
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
        firstUnknownSlot: () => this.#firstUnknownSlot,
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
    const acceptor = createActor(acceptorMachine, {
      input: { ...base, recovered, copyToLearners: options.mode !== 'leader' },
    });
    this.#acceptor = acceptor;
    this.#start('acceptor', acceptor, (event) => {
      if (event.type === 'persisted') tell(acceptor, event);
    });
    this.#learner = createActor(learnerMachine, {
      input: {
        ...base,
        acceptorCount: options.founders.length,
        nextSlot: this.#firstUnknownSlot,
        // A distinguished leader's acceptors send learners no votes: any that arrive are forged.
        learnFromVotes: options.mode !== 'leader',
      },
    });
    // The learner asks the host for nothing it answers: no persists, timers or proposals.
    this.#start('learner', this.#learner, () => undefined);
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
      firstUnknownSlot: () => this.#firstUnknownSlot,
      log: () => this.#log,
      start: (name, actor, feedback) => this.#start(name, actor, feedback),
      publish: (subject, message) => {
        if (!this.#stopped)
          o.transport.publish(subject, peerCodec.encode(message), { reply: this.#nodeSubject });
      },
      learn: (slot, value) => tell(this.#learner, { type: 'known', instance: slot, value }),
      proposeNoop: (slot, done) =>
        !this.#stopped && this.#proposals.propose(slot, new Uint8Array(0), done),
      logStart: () => this.#logStart,
      limits: this.#limits,
      latestSnapshot: () => this.#servedSnapshot(),
      installSnapshot: (snapshot) => this.#install(snapshot),
    });
    o.transport.subscribe(this.#subjects.catchup, (m) =>
      this.#receive(m, (message) =>
        mode.serveCatchUp(message, m.reply, this.#filter.speaks(message.from)),
      ),
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

  /**
   * What this host holds for clients and reads now, each bounded by its HostLimits entry:
   * values waiting for a slot, reads waiting for slots, registers whose value it keeps.
   */
  held(): {
    waitingSubmits: number;
    slotWaiters: number;
    leaderReads: number;
    knownRegisters: number;
  } {
    return {
      waitingSubmits: this.#leaderMode?.waitingSubmits ?? 0,
      slotWaiters: this.#leaderMode?.slotWaiters ?? 0,
      leaderReads: this.#leaderMode?.leaderReads ?? 0,
      knownRegisters: this.#proposals.knownRegisters,
    };
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
    return this.#acceptor.getSnapshot().context.state;
  }

  /**
   * Forgets every slot at or below `throughSlot`: the delivered values here, and the
   * acceptor's records of them (made durable, then the store is rewritten without them).
   * Only call it once a snapshot that covers `throughSlot` is durable: peers that are behind
   * it can then only catch up from a snapshot.
   */
  compact(throughSlot: number): void {
    if (this.#stopped || throughSlot < this.#logStart) return;
    if (throughSlot >= this.#firstUnknownSlot)
      throw new RangeError(
        `cannot compact through slot ${throughSlot}: only slots before ${this.#firstUnknownSlot} are delivered`,
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
    return this.#firstUnknownSlot - 1;
  }

  /** pg_paxos's append: calls back with the slot the value was chosen in. */
  append(value: Value, done: (slot: number) => void): void {
    const actor = createActor(appendMachine, {
      input: { value, firstUnknownSlot: this.#firstUnknownSlot },
    });
    this.#startOp(
      actor,
      (event) => {
        if (event.type === 'proposalDone') tell(actor, event);
      },
      () => {
        const output = actor.getSnapshot().output;
        if (output !== undefined) done(output.slot);
      },
    );
  }

  /**
   * pg_paxos's strong read: calls back once this node has applied every write acknowledged
   * before the call. Returns a cancel function: a read given up on (a timeout) stops asking.
   */
  read(done: (through: number) => void): () => void {
    return this.#reads.read(done);
  }

  /**
   * A linearizable read on the leader without a log slot (ReadIndex): `done` gets the slot
   * to serve it at, once this node has applied through it, or why this node cannot serve it.
   * Returns a function that gives the read up.
   */
  leaderRead(done: (outcome: LeaderReadOutcome) => void): () => void {
    const mode = this.#leaderMode;
    if (mode !== undefined) return mode.read(done);
    this.#o.scheduler.setTimer(0, () => done({ refused: 'not-leader' }));
    return () => undefined;
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
    this.#proposals.propose(key, value, done);
  }

  /** Stops everything at once, as a crash would: no effect of this host runs afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
    this.#proposals.stop();
    for (const op of this.#ops) op.stop();
    this.#leaderMode?.stop();
    this.#acceptor.stop();
    this.#learner.stop();
    void this.#o.transport.close();
  }

  /** A peer's snapshot: the state machine jumps to its slot, and delivery goes on after it. */
  #install(wrapped: Snapshot): void {
    if (this.#stopped || wrapped.throughSlot < this.#firstUnknownSlot) return;
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
    this.#firstUnknownSlot = snapshot.throughSlot + 1;
    this.#setMembership(membership ?? this.#membership);
    this.#logStart = Math.max(this.#logStart, this.#firstUnknownSlot);
    // Proposals for slots the snapshot covers are moot: those slots are chosen.
    this.#proposals.settledThrough(snapshot.throughSlot);
    tell(this.#learner, { type: 'skip', nextSlot: this.#firstUnknownSlot });
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

  /** Starts an actor whose effects this host executes; `feedback` answers them. */
  #start<Emitted extends LeaderEffect>(
    name: string,
    actor: HostedActor<Emitted>,
    feedback: Feedback,
  ): void {
    const key = `${name}#${this.#actorSeq++}`;
    this.#o.inspection?.started(key, actor);
    actor.on('*', (effect) => this.#execute(key, name === 'acceptor', feedback, effect));
    actor.subscribe({ error: (error) => this.#fail(error) });
    actor.start();
  }

  /**
   * Starts an append or a read. `completed` runs when it ends, unless the host stopped: an op
   * stopped early (a cancelled read) ends without an output.
   */
  #startOp(actor: HostedActor<Effect>, feedback: Feedback, completed: () => void): void {
    this.#ops.add(actor);
    actor.subscribe({
      complete: () => {
        this.#ops.delete(actor);
        if (!this.#stopped) completed();
      },
    });
    this.#start('op', actor, feedback);
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
      this.#proposals.answered(instance, message);
    } else if (message.type === 'catchupResponse') {
      this.#leaderMode?.caughtUp(message);
    } else if (message.type === 'highestAcceptedAnswer') {
      this.#reads.answered(message);
    } else if (message.type === 'readIndexAnswer' && this.#leaderMode !== undefined) {
      tell(this.#leaderMode.actor, { type: 'message', message });
    }
  }

  /**
   * Who decides `instance` in leader mode: the members governing a log slot (a no-op
   * proposal is only started for slots within the membership window of delivery, whose members
   * are known), and the founding members for paxos(key, value) registers, which no change
   * of membership moves.
   */
  #membersFor(instance: Instance): readonly string[] {
    if (typeof instance !== 'number') return this.#membership.genesis;
    if (instance >= this.#firstUnknownSlot + this.#membership.window)
      throw new RangeError(`slot ${instance} is too far ahead to know its members`);
    return this.#membership.membersAt(instance);
  }

  #execute(key: string, fromAcceptor: boolean, feedback: Feedback, effect: LeaderEffect): void {
    if (this.#stopped) return;
    const o = this.#o;
    switch (effect.type) {
      case 'send': {
        if (fromAcceptor) o.observer?.acceptorAnswered?.(this.nodeId, effect.message);
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
          () => !this.#stopped && feedback({ type: 'persisted', id: effect.id }),
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
            feedback({ type: 'timer', timer: effect.timer });
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
        this.#proposals.learned(effect.instance, effect.value);
        break;
      }
      case 'deliver': {
        this.#log.set(effect.slot, effect.value);
        this.#firstUnknownSlot = effect.slot + 1;
        if (this.#leaderMode !== undefined)
          this.#setMembership(this.#membership.after(effect.slot, effect.value));
        o.observer?.delivered?.(this.nodeId, effect.slot, effect.value);
        this.#leaderMode?.delivered(effect.slot, effect.value);
        this.#releaseReads();
        break;
      }
      case 'leadership':
        this.#leaderMode?.leadership(effect.leader);
        o.observer?.leadership?.(this.nodeId, effect.leader);
        break;
      case 'refused':
        this.#leaderMode?.refused(effect.values, effect.leader);
        break;
      case 'leadershipChecked':
        this.#leaderMode?.leadershipChecked(effect);
        break;
      case 'propose':
        // With a leader, a read's missing slots come from peers first (a no-op proposal of
        // our own would depose the leader); the leader mode falls back to it if need be.
        if (this.#leaderMode !== undefined) {
          this.#leaderMode.awaitSlot(effect.instance, (value) =>
            feedback({ type: 'proposalDone', instance: effect.instance, value }),
          );
          break;
        }
        this.#proposals.propose(effect.instance, effect.value, (value) =>
          feedback({ type: 'proposalDone', instance: effect.instance, value }),
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
      if (this.#leaderMode !== undefined)
        tell(this.#leaderMode.actor, { type: 'roundFloor', round });
      this.#proposals.roundReserved(round);
    });
  }

  #setMembership(membership: Membership): void {
    this.#membership = membership;
    this.#reads.membershipChanged();
  }

  #releaseReads(): void {
    this.#reads.delivered(this.deliveredThrough);
  }
}
