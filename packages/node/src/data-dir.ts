import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@synod/log';
import { groupSubjects } from '@synod/protocol';
import type { Transport } from '@synod/transport';
import { Admission } from './admission.js';
import { DataDirError, replaceHint } from './data-dir-errors.js';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import { HeldTransport } from './held-transport.js';
import { type Identity, newIncarnation, readIdentity, writeIdentity } from './identity-file.js';
import { IdentityResponder } from './identity-responder.js';
import { IdentityStore } from './identity-store.js';

export interface DataDirOptions {
  readonly dir: string;
  readonly group: string;
  readonly nodeId: string;
  /** The founders (--peers). */
  readonly peers: readonly string[];
  readonly join: boolean;
  /** The node's connection: the runtime gets it back held while the node may not vote. */
  readonly transport: Transport;
  readonly logger?: Logger | undefined;
  /**
   * The directory's lock, when the caller took it already (lockDataDir): the CLI does, before
   * it starts the embedded PostgreSQL inside the directory. Released by close() either way.
   */
  readonly lock?: DataDirLock | undefined;
}

/** What the data directory needs of the runtime once it runs. */
export interface DataDirOwner {
  /** The members in the runtime's log (the latest change it delivered). */
  members(): readonly string[];
  /** Admission was refused (or failed) after start() returned: the runtime must stop. */
  refused(error: Error): void;
}

/**
 * A node's data directory, held by one process: its lock, its identity (group, node,
 * incarnation; see identity-file) and whether the node may vote yet.
 *
 * - An identity that says `voting` (the normal restart) goes straight on: nothing is asked.
 * - No identity but acceptor state (a directory from before identity files) is adopted.
 * - Otherwise the node has no acceptor state: a new node, or one whose disk was lost. It
 *   writes a `waiting` identity with a new incarnation and asks the group to admit it
 *   (admission-rules has the rules; Admission asks). Until then `transport` is held: the
 *   runtime runs, but nothing it says leaves and nothing reaches it.
 * - Another group's or node's directory, an identity that says `voting` with its acceptor
 *   log gone, or a malformed identity file: refused with DataDirError.
 */
export class DataDir {
  readonly transport: Transport;
  readonly #lock: DataDirLock;
  readonly #identity: IdentityStore;
  readonly #responder: IdentityResponder;
  readonly #admission: Admission;
  readonly #held: HeldTransport | undefined;
  #closed = false;

  private constructor(options: DataDirOptions, lock: DataDirLock, identity: Identity) {
    this.#lock = lock;
    const founders = [...new Set(options.peers)].sort();
    this.#identity = new IdentityStore(options.dir, identity, founders);
    this.#responder = new IdentityResponder({
      transport: options.transport,
      group: options.group,
      node: options.nodeId,
      founders,
      identity: this.#identity,
      logger: options.logger,
      asked: () => {
        if (!this.voting) this.#admission.nudge();
      },
    });
    this.#admission = new Admission({
      transport: options.transport,
      asker: {
        group: options.group,
        node: options.nodeId,
        dir: options.dir,
        join: options.join,
        founders,
      },
      identity: this.#identity,
      logger: options.logger,
    });
    this.#held =
      identity.state === 'voting'
        ? undefined
        : new HeldTransport(options.transport, peerSubjects(options.group));
    this.transport = this.#held ?? options.transport;
  }

  /** Locks the directory and reads (or creates) its identity. The directory must exist. */
  static async open(options: DataDirOptions): Promise<DataDir> {
    const lock = options.lock ?? (await lockDataDir(options.dir));
    if (lock.tookOverFrom !== undefined)
      options.logger?.warn(
        { lock: lock.path, previous: lock.tookOverFrom },
        'took over the lock of a node process that is gone',
      );
    try {
      return new DataDir(options, lock, await identityOf(options));
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  get identity(): Identity {
    return this.#identity.current;
  }

  /** Whether the node votes (false while it waits to be admitted). */
  get voting(): boolean {
    return this.#held === undefined || !this.#held.held;
  }

  /**
   * For a node that waits: one round of asking, so that in the common cases (a lost disk
   * among running peers, founders that all run) start() can answer at once. Throws the
   * refusal; resolves whether the node votes now.
   */
  async firstRound(): Promise<boolean> {
    if (this.voting) return true;
    const decision = await this.#admission.round();
    if (decision.kind === 'refused') throw decision.error;
    if (decision.kind === 'admitted') this.#held?.release();
    return this.voting;
  }

  /**
   * The runtime runs: answer peers with its members once it votes, and a node that still
   * waits keeps asking in the background. A voting node tells the group its incarnation.
   */
  attach(owner: DataDirOwner): void {
    if (this.voting) {
      this.#responder.voting(owner.members);
      void this.#admission.announce();
      return;
    }
    void this.#admission.untilDecided().then(
      (decision) => {
        if (decision === undefined || this.#closed) return;
        if (decision.kind === 'refused') {
          owner.refused(decision.error);
          return;
        }
        this.#responder.voting(owner.members);
        this.#held?.release();
      },
      (error: unknown) => owner.refused(error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** Stops answering and asking, and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#admission.stop();
    this.#responder.stop();
    await this.#identity.close();
    await this.#lock.release();
  }
}

/** The identity the directory has, checked, or the one it gets now. */
async function identityOf(o: DataDirOptions): Promise<Identity> {
  const found = await readIdentity(o.dir, o.group, o.nodeId);
  if (found !== undefined && (found.group !== o.group || found.node !== o.nodeId))
    throw new DataDirError(
      'FOREIGN',
      `data directory ${o.dir} belongs to node ${found.node} of group ${found.group} (its identity file), not to node ${o.nodeId} of group ${o.group}: give each node its own --data directory`,
    );
  const log = join(o.dir, `${o.group}.acceptor.log`);
  const state = (await exists(log)) || (await exists(join(o.dir, `${o.group}.snapshot`)));
  if (found?.state === 'voting') {
    if (!(await exists(log)))
      throw new DataDirError(
        'LOG_MISSING',
        `node ${o.nodeId} of group ${o.group} voted, but its acceptor log ${log} is gone: it must not vote without what it promised; if the data is really lost, delete ${o.dir} and ${replaceHint(o.group, o.nodeId)}`,
      );
    return found;
  }
  if (found !== undefined) return found; // still waiting to be admitted: same incarnation
  const other = (await readdir(o.dir)).find(
    (name) => name.endsWith('.acceptor.log') && name !== `${o.group}.acceptor.log`,
  );
  if (other !== undefined)
    throw new DataDirError(
      'FOREIGN',
      `data directory ${o.dir} holds another group's acceptor log (${other}), not group ${o.group}'s: give each node of each group its own --data directory`,
    );
  const identity: Identity = {
    format: 1,
    group: o.group,
    node: o.nodeId,
    incarnation: newIncarnation(),
    // Acceptor state written before identity files existed: the node keeps voting with it.
    state: state ? 'voting' : 'waiting',
    createdAt: new Date().toISOString(),
    known: {},
  };
  await writeIdentity(o.dir, identity);
  o.logger?.info(
    { incarnation: identity.incarnation, state: identity.state },
    state
      ? 'data directory has acceptor state but no identity file (an older synod): adopted'
      : 'data directory has no acceptor state: a new incarnation of this node',
  );
  return identity;
}

/**
 * The subjects the group's machines talk on (GroupHost): the acceptors', the learners', catch-up
 * and each node's own subject. Clients use `.write`, `.read`, `.status` and a node's
 * `.node.<id>.write` and `.read`.
 */
function peerSubjects(group: string): (subject: string) => boolean {
  const s = groupSubjects(group);
  const node = new RegExp(`^${s.node('x').slice(0, -1).replaceAll('.', '\\.')}[^.]+$`);
  return (subject) =>
    subject === s.acceptor || subject === s.learn || subject === s.catchup || node.test(subject);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}
