import type { Logger } from '@synod/log';

/**
 * What a command has started (a connection, a database, a server), stopped in the reverse
 * order however the command ends: after a failure halfway through start-up too, so that
 * nothing is left running and nothing keeps the process alive.
 */
export class Cleanup {
  readonly #steps: { readonly what: string; readonly stop: () => unknown }[] = [];

  add(what: string, stop: () => unknown): void {
    this.#steps.push({ what, stop });
  }

  /** Runs every step, last added first; a step that fails is logged and the rest still run. */
  async run(logger: Logger | undefined): Promise<void> {
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step.stop();
      } catch (error) {
        logger?.warn({ err: error }, `stopping ${step.what} failed`);
      }
    }
  }
}
