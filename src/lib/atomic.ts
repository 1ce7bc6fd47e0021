import { randomBytes } from "node:crypto";
import { link, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { VmError, systemErrorCode } from "../errors.ts";
import { ownerGone, ownerTag, parseOwner } from "./owner.ts";

/** A temporary name beside `target`, so the final rename stays on one filesystem and is atomic. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.vm-tmp-${ownerTag()}-${randomBytes(4).toString("hex")}`);
}

/**
 * Writes a file so that readers see the old content or the whole new content, never a part: a temp file
 * beside it, fsync, then rename. With `exclusive`, an existing target is never replaced (link(2) fails
 * when the name is taken, which rename(2) would silently overwrite).
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  options: { exclusive?: boolean } = {},
): Promise<void> {
  const temp = tempPathFor(target);
  const handle = await open(temp, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.exclusive) {
      await link(temp, target);
      await unlink(temp);
    } else {
      await rename(temp, target);
    }
  } catch (error) {
    await unlink(temp).catch(() => {});
    if (systemErrorCode(error) === "EEXIST") {
      throw new VmError("FILE_EXISTS", `${target} already exists`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** Scratch files (a stream spooled to learn its size, an S3 part waiting for its header) start so. */
const SPOOL_PREFIX = ".vm-spool-";

/** A path for a private scratch file in `dir`, named by its owner so a later vm can reclaim it. */
export function spoolPathIn(dir: string): string {
  return join(dir, `${SPOOL_PREFIX}${ownerTag()}-${randomBytes(4).toString("hex")}`);
}

/**
 * Removes the scratch files in `dir` that a vm no longer running left there (killed mid-export, a spooled
 * image can be gigabytes), and nothing else: not a live vm's, not another machine's.
 */
export function removeStaleSpools(dir: string): Promise<void> {
  return removeOrphans(dir, SPOOL_PREFIX);
}

/** Temporary files beside `target` left by a vm that was killed (SIGKILL leaves no chance to clean up). */
export function removeStaleTemps(target: string): Promise<void> {
  return removeOrphans(dirname(target), `.${basename(target)}.vm-tmp-`);
}

/** Removes the files in `dir` named `<prefix><owner tag>...` whose owner no longer runs on this host. */
async function removeOrphans(dir: string, prefix: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const owner = parseOwner(entry.slice(prefix.length));
    if (owner && ownerGone(owner)) await unlink(join(dir, entry)).catch(() => {});
  }
}
