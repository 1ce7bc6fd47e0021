/** Test support: the pid of a process that has exited, as a killed vm leaves in its locks and staging folders. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { alive } from "../../lib/pid.ts";

export function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  assert.ok(child.pid, "spawned a process");
  assert.equal(alive(child.pid), false);
  return child.pid;
}
