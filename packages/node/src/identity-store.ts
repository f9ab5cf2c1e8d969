import { type Identity, pruneRegistry, writeIdentity } from './identity-file.js';

/**
 * A data directory's identity, in memory and on disk: changes are written one at a time, in
 * order (each atomically), and `current` is what was last written, so nobody acts on a change
 * that a crash could still undo.
 */
export class IdentityStore {
  #current: Identity;
  #writing: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** `founders`' entries are never pruned from the registry (pruneRegistry). */
  constructor(
    readonly dir: string,
    initial: Identity,
    readonly founders: readonly string[],
  ) {
    this.#current = initial;
  }

  get current(): Identity {
    return this.#current;
  }

  /**
   * Applies `change` to the identity as it is once earlier changes are written; `change`
   * returns undefined for no change. Resolves with the identity then in effect, durable.
   */
  update(change: (identity: Identity) => Identity | undefined): Promise<Identity> {
    const next = this.#writing.then(async () => {
      // Once closed (the lock is about to be released), the directory is no longer ours.
      if (this.#closed) return this.#current;
      const proposed = change(this.#current);
      if (proposed === undefined) return this.#current;
      const changed = { ...proposed, known: pruneRegistry(proposed.known, this.founders) };
      await writeIdentity(this.dir, changed);
      this.#current = changed;
      return changed;
    });
    // One failed write must not stop later ones from being tried (each reports its own).
    this.#writing = next.catch(() => undefined);
    return next;
  }

  /** Lets the writes under way finish; later changes are not written. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
  }
}
