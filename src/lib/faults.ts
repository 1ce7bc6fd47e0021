import { VmError } from "../errors.ts";
import { INTERRUPT_EXIT } from "./interrupt.ts";

/**
 * Test hook: VM_TEST_FAULTS="point,point" makes vm fail at those named points, so tests can prove what
 * a failure at that moment leaves behind (a paused container unpaused, no half-written snapshot).
 */
export function checkFault(env: NodeJS.ProcessEnv, point: string): void {
  if (env.VM_TEST_FAULTS?.split(",").includes(point)) {
    throw new VmError("FAULT_INJECTED", `Failure injected at '${point}' (VM_TEST_FAULTS)`);
  }
}

/**
 * Test hook: VM_TEST_PAUSE="point,point" makes vm stop at those named points: it says so on stderr
 * ("vm-test: paused at <point>") and waits until a signal arrives (at most a minute), then goes on as a
 * vm that was busy there would. A test can so interrupt vm in a window a random delay hits only by luck.
 */
export async function pausePoint(env: NodeJS.ProcessEnv, point: string): Promise<void> {
  if (!env.VM_TEST_PAUSE?.split(",").includes(point)) return;
  process.stderr.write(`vm-test: paused at ${point}\n`);
  const signals = Object.keys(INTERRUPT_EXIT);
  let resume = () => {};
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    resume = () => {
      clearTimeout(timer);
      resolve();
    };
    for (const signal of signals) process.once(signal, resume);
  });
  for (const signal of signals) process.off(signal, resume);
}
