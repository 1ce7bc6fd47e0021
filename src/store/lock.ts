import { link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { VmError, systemErrorCode } from "../errors.ts";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { elsewhere, ownerGone, ownerTag, parseOwner } from "../lib/owner.ts";
import { describeRef, type SnapshotRef } from "../snapshot-file/names.ts";

export interface SnapshotLock {
  release(): Promise<void>;
}

/**
 * One writer per snapshot name: a lock file in the store holding its owner (lib/owner.ts) and hostname.
 * It is written under a name of its own and hard-linked into place, so it appears whole or not at all: a
 * second vm never reads an empty lock and takes it for a stale one. A lock whose owner no longer runs (a
 * killed vm on this host) is removed by the one vm that holds the reclaim guard (`.reclaim`, hard-linked
 * the same way), after it checked the lock is still the stale one it read; then every vm tries again and
 * one wins. A live owner, or one
 * on another machine sharing this config home, means another vm is creating or importing that name, and
 * this one reports the conflict.
 */
export async function lockSnapshot(root: string, ref: SnapshotRef, action: string): Promise<SnapshotLock> {
  const dir = join(root, ".locks");
  await mkdir(dir, { recursive: true });
  const file = join(
    dir,
    ref.scope === "global" ? `global--${ref.name}.lock` : `project--${ref.project}--${ref.name}.lock`,
  );
  const tag = ownerTag();
  const mine = `${file}.${tag.replace(/[^A-Za-z0-9_-]/g, "_")}-${randomBytes(4).toString("hex")}`;
  await writeFile(`${mine}.tmp`, `${tag} ${hostname()}\n`, { mode: 0o644 });
  const guard = `${file}.reclaim`;
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await link(`${mine}.tmp`, file);
        return { release: () => rm(file, { force: true }) };
      } catch (error) {
        if (systemErrorCode(error) !== "EEXIST") throw error;
      }
      const seen = await readFile(file, "utf8").catch(() => undefined);
      if (seen === undefined) continue; // released meanwhile: try again
      const busy = await heldBy(file, ref, action);
      if (busy) throw busy;
      // Stale. Only the one vm holding the guard may remove it, and only if it is still the lock judged
      // stale: a lock is never moved or removed under a live owner (two winners, or a winner whose lock
      // vanishes, were what renaming it aside allowed when several vms reclaimed at once).
      try {
        await link(`${mine}.tmp`, guard);
      } catch (error) {
        if (systemErrorCode(error) !== "EEXIST") throw error;
        await dropStaleGuard(guard);
        await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
        continue;
      }
      try {
        const now = await readFile(file, "utf8").catch(() => undefined);
        if (now === seen && !(await heldBy(file, ref, action))) await rm(file, { force: true });
      } finally {
        await rm(guard, { force: true });
      }
    }
  } finally {
    await rm(`${mine}.tmp`, { force: true });
  }
  throw new VmError("SNAPSHOT_BUSY", `Could not take the lock for snapshot '${describeRef(ref)}'`, {
    hint: "Another vm keeps taking it; wait for it to finish, then run the command again",
  });
}

/** A reclaimer holds the guard for a moment; one older than this was left by a killed vm. */
const GUARD_STALE_MS = 10_000;

async function dropStaleGuard(guard: string): Promise<void> {
  const modified = await stat(guard).then(
    (info) => info.mtimeMs,
    () => Date.now(),
  );
  if (Date.now() - modified >= GUARD_STALE_MS) await rm(guard, { force: true });
}

/** A lock older vm wrote in two steps may be empty for a moment; that young, it counts as held. */
const UNREADABLE_GRACE_MS = 10_000;

/** The conflict to report when the lock at `file` is held, or undefined when it is stale (or gone). */
async function heldBy(file: string, ref: SnapshotRef, action: string): Promise<VmError | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  const owner = parseOwner(text);
  if (!owner) {
    const modified = await stat(file).then(
      (info) => info.mtimeMs,
      () => 0,
    );
    if (Date.now() - modified >= UNREADABLE_GRACE_MS) return undefined;
    return new VmError("SNAPSHOT_BUSY", `Snapshot '${describeRef(ref)}' is being ${action} by another vm`, {
      hint: "Wait for it to finish, then run the command again (with --force to replace what it made)",
    });
  }
  if (ownerGone(owner)) return undefined;
  const host = text.trim().split(/\s+/)[1];
  const remote = elsewhere(owner);
  return new VmError(
    "SNAPSHOT_BUSY",
    `Snapshot '${describeRef(ref)}' is being ${action} by another vm (pid ${owner.pid}${remote ? ` on ${host ?? "another host"}` : ""})`,
    {
      hint: remote
        ? `Wait for it to finish; if no vm runs there any more, remove ${file} and run the command again`
        : "Wait for it to finish, then run the command again (with --force to replace what it made)",
    },
  );
}
