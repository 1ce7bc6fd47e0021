import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { VmError, systemErrorCode } from "../errors.ts";
import { hostname } from "node:os";
import { elsewhere, ownerGone, ownerTag, parseOwner } from "../lib/owner.ts";
import { describeRef, type SnapshotRef } from "../snapshot-file/names.ts";

export interface SnapshotLock {
  release(): Promise<void>;
}

/**
 * One writer per snapshot name: a lock file created exclusively (O_EXCL) in the store, holding its owner
 * (lib/owner.ts) and hostname. A lock whose owner no longer runs (a killed vm on this host) is taken over;
 * a live owner, or one on another machine sharing this config home, means another vm is creating or
 * importing that name, and this one reports the conflict.
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
      await handle.writeFile(`${ownerTag()} ${hostname()}\n`);
      await handle.close();
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if (systemErrorCode(error) !== "EEXIST") throw error;
    }
    const text = await readFile(file, "utf8").catch(() => "");
    const owner = parseOwner(text);
    if (owner && !ownerGone(owner)) {
      const host = text.trim().split(/\s+/)[1];
      const remote = elsewhere(owner);
      throw new VmError(
        "SNAPSHOT_BUSY",
        `Snapshot '${describeRef(ref)}' is being ${action} by another vm (pid ${owner.pid}${remote ? ` on ${host ?? "another host"}` : ""})`,
        {
          hint: remote
            ? `Wait for it to finish; if no vm runs there any more, remove ${file} and run the command again`
            : "Wait for it to finish, then run the command again (with --force to replace what it made)",
        },
      );
    }
    // Stale: its owner died (or it was left half-written). Remove it and try again.
    await rm(file, { force: true });
  }
  throw new VmError("SNAPSHOT_BUSY", `Could not take the lock for snapshot '${describeRef(ref)}'`);
}
