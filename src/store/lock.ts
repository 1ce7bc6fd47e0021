import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ExitCode, VmError, systemErrorCode } from "../errors.ts";
import { alive } from "../lib/pid.ts";
import { describeRef, type SnapshotRef } from "../snapshot-file/names.ts";

export interface SnapshotLock {
  release(): Promise<void>;
}

/**
 * One writer per snapshot name: a lock file created exclusively (O_EXCL) in the store, holding the
 * owner's pid. A lock whose owner no longer runs (a killed vm) is taken over; a live owner means another
 * vm is creating or importing that name right now, and this one reports the conflict.
 */
export async function lockSnapshot(root: string, ref: SnapshotRef, action: string): Promise<SnapshotLock> {
  const dir = join(root, ".locks");
  await mkdir(dir, { recursive: true });
  const file = join(
    dir,
    ref.scope === "global" ? `global--${ref.name}.lock` : `project--${ref.project}--${ref.name}.lock`,
  );
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx", 0o644);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if (systemErrorCode(error) !== "EEXIST") throw error;
    }
    const owner = Number.parseInt(await readFile(file, "utf8").catch(() => ""), 10);
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
      throw new VmError(
        "SNAPSHOT_BUSY",
        `Snapshot '${describeRef(ref)}' is being ${action} by another vm (pid ${owner})`,
        {
          hint: "Wait for it to finish, then run the command again (with --force to replace what it made)",
          exitCode: ExitCode.conflict,
        },
      );
    }
    // Stale: its owner died (or it was left half-written). Remove it and try again.
    await rm(file, { force: true });
  }
  throw new VmError("SNAPSHOT_BUSY", `Could not take the lock for snapshot '${describeRef(ref)}'`, {
    exitCode: ExitCode.conflict,
  });
}
