/** The signals that interrupt vm, and the exit code (128 + signal) each leaves with. */
export const INTERRUPT_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/**
 * Runs `cleanup` if the process is interrupted (SIGINT, SIGTERM, SIGHUP) while `work` runs, then exits
 * with the conventional 128+signal code. Used where an interruption would otherwise leave engine state
 * behind, such as a paused container.
 */
export async function guardInterrupts<T>(cleanup: () => Promise<void>, work: () => Promise<T>): Promise<T> {
  const codes: Record<string, number> = INTERRUPT_EXIT;
  let cleaning: Promise<void> | undefined;
  const handler = (signal: NodeJS.Signals) => {
    cleaning ??= cleanup()
      .catch(() => {})
      .finally(() => process.exit(codes[signal] ?? 1));
  };
  for (const signal of Object.keys(codes)) process.on(signal, handler);
  try {
    const result = await work();
    // Once a signal has arrived the cleanup decides how vm ends: neither a result nor an error the
    // interruption caused (a file closed under a write) may be reported meanwhile.
    if (cleaning) await new Promise<never>(() => {});
    return result;
  } catch (error) {
    if (cleaning) await new Promise<never>(() => {});
    throw error;
  } finally {
    for (const signal of Object.keys(codes)) process.off(signal, handler);
  }
}
