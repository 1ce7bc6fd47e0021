import { guardInterrupts } from "./interrupt.ts";

type Step = () => unknown;

/**
 * A change that ends whole or not at all (an import, an export). Each step that makes something says how
 * to undo it as it goes; one rollback undoes them, newest first, and is the same whether the work failed
 * or the user pressed Ctrl-C. The last step, `commit`, is the point of no return: an interruption that
 * arrives during it waits for it, so what it makes (a tag and a rename) is either whole or undone.
 */
export class Transaction {
  readonly #stops: Step[] = [];
  readonly #undos: Step[] = [];
  readonly #finals: Step[] = [];
  #rollback: Promise<void> | undefined;
  #committing: Promise<unknown> | undefined;
  #rolledBack = false;

  /** What halts work in flight (reading a file, a load): run first on rollback, before any undo. */
  stop(step: Step): void {
    this.#stops.push(step);
  }

  /**
   * How to undo what the step just made; undos run newest first. A step made while the transaction is
   * being rolled back (work still in flight when Ctrl-C came) is undone too.
   */
  undo(step: Step): void {
    this.#undos.push(step);
    if (this.#rolledBack) void settle(step);
  }

  /** What runs at the end however it ends (releasing a lock), after any rollback. */
  finally(step: Step): void {
    this.#finals.push(step);
  }

  /** The point of no return. If it fails, the whole transaction is rolled back. */
  async commit<T>(work: () => Promise<T>): Promise<T> {
    // Interrupted before the point of no return: what the work made is being undone, so it must not be
    // registered now (the process exits once the rollback is done; nobody sees this error).
    if (this.#rollback) throw new Error("the transaction was rolled back before its commit");
    const committing = work();
    this.#committing = committing;
    try {
      return await committing;
    } catch (error) {
      await this.rollback();
      throw error;
    }
  }

  /** Undoes every step, once however often it is asked for; a failing undo does not stop the others. */
  rollback(): Promise<void> {
    this.#rollback ??= (async () => {
      for (const step of this.#stops) await settle(step);
      // Newest first, and steps registered meanwhile as well.
      for (let step = this.#undos.pop(); step; step = this.#undos.pop()) await settle(step);
      this.#rolledBack = true;
    })();
    return this.#rollback;
  }

  /** What an interruption does: let a commit in progress finish, else roll back. */
  async interrupted(): Promise<void> {
    if (this.#committing) await this.#committing.catch(() => {});
    else await this.rollback();
    await this.end();
  }

  /** Runs the final steps (once each). */
  async end(): Promise<void> {
    for (const step of this.#finals.splice(0)) await settle(step);
  }
}

/**
 * Runs `body` as a transaction: a failure rolls it back and is rethrown; SIGINT, SIGTERM and SIGHUP roll
 * it back (or let its commit finish) and exit 128+signal; the final steps run in every case.
 */
export async function transaction<T>(body: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = new Transaction();
  try {
    return await guardInterrupts(
      () => tx.interrupted(),
      async () => {
        try {
          return await body(tx);
        } catch (error) {
          await tx.rollback();
          throw error;
        }
      },
    );
  } finally {
    await tx.end();
  }
}

/** Runs a clean-up step on the way out of a failure: its own failure must not hide the one reported. */
async function settle(step: Step): Promise<void> {
  try {
    await step();
  } catch {
    // Best effort: what is reported is why the transaction failed.
  }
}
