import { readFileSync } from "node:fs";
import { systemErrorCode } from "../errors.ts";

/**
 * Whether a process with this pid runs (EPERM: it runs, as another user). A zombie does not: it has
 * exited and only waits for its parent to collect its status (a killed vm whose parent, a CI runner or a
 * container's init, does not reap), so what it left may be reclaimed.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return systemErrorCode(error) === "EPERM";
  }
  return !zombie(pid);
}

/** Linux's /proc says the process has exited and waits to be reaped; false where there is no /proc. */
function zombie(pid: number): boolean {
  try {
    // "pid (comm) S ...": the state follows the last ")", since comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false;
  }
}
