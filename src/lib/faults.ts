import { VmError } from "../errors.ts";

/**
 * Test hook: VM_TEST_FAULTS="point,point" makes vm fail at those named points, so tests can prove what
 * a failure at that moment leaves behind (a paused container unpaused, no half-written snapshot).
 */
export function checkFault(env: NodeJS.ProcessEnv, point: string): void {
  if (env.VM_TEST_FAULTS?.split(",").includes(point)) {
    throw new VmError("FAULT_INJECTED", `Failure injected at '${point}' (VM_TEST_FAULTS)`);
  }
}
