import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { VmError, systemErrorCode } from "../errors.ts";
import { removeStaleTemps, writeFileAtomic } from "../lib/atomic.ts";
import { validateProjectName } from "../lib/names.ts";
import { ownerGone, ownerTag, parseOwner } from "../lib/owner.ts";
import { metadataSchema, type SnapshotMetadata } from "../snapshot-file/metadata.ts";
import { SNAPSHOT_NAME, validateSnapshotName, type SnapshotRef } from "../snapshot-file/names.ts";

const STAGING = ".staging";

/**
 * Snapshots on disk: `<root>/global/<name>/metadata.json` and `<root>/<project>/<name>/metadata.json`,
 * root being $XDG_CONFIG_HOME/vm/snapshots (default ~/.config/vm/snapshots). A snapshot appears by one
 * rename of a complete folder staged beside it, so readers never see half of one.
 */
export class SnapshotStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  static fromEnv(env: NodeJS.ProcessEnv): SnapshotStore {
    const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
    return new SnapshotStore(join(base, "vm", "snapshots"));
  }

  dir(ref: SnapshotRef): string {
    // Names are checked where they come in; this keeps any that was not from naming a path or the global scope.
    validateSnapshotName(ref.name);
    if (ref.scope === "project") validateProjectName(ref.project);
    return join(this.root, ref.scope === "global" ? "global" : ref.project, ref.name);
  }

  async read(ref: SnapshotRef): Promise<SnapshotMetadata | undefined> {
    const file = join(this.dir(ref), "metadata.json");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if (systemErrorCode(error) === "ENOENT") return undefined;
      throw error;
    }
    return parseMetadata(text, file);
  }

  /** Every readable snapshot; unreadable ones are reported through `onBroken` and skipped. */
  async list(onBroken: (file: string, error: Error) => void = () => {}): Promise<SnapshotMetadata[]> {
    const out: SnapshotMetadata[] = [];
    for (const scopeDir of await readdirOrEmpty(this.root)) {
      if (scopeDir.startsWith(".")) continue;
      for (const name of await readdirOrEmpty(join(this.root, scopeDir))) {
        if (!SNAPSHOT_NAME.test(name)) continue;
        const file = join(this.root, scopeDir, name, "metadata.json");
        try {
          out.push(parseMetadata(await readFile(file, "utf8"), file));
        } catch (error) {
          if (systemErrorCode(error) !== "ENOENT") onBroken(file, error as Error);
        }
      }
    }
    return out.sort((a, b) =>
      a.name === b.name ? a.scope.localeCompare(b.scope) : a.name.localeCompare(b.name),
    );
  }

  /** Whether any snapshot other than `except` uses this engine image. */
  async imageShared(engineImageId: string, except: SnapshotRef): Promise<boolean> {
    const others = await this.list();
    return others.some(
      (s) =>
        s.engine_image_id === engineImageId &&
        !(
          s.name === except.name &&
          s.scope === except.scope &&
          (except.scope === "global" || s.project === except.project)
        ),
    );
  }

  /**
   * Writes a snapshot's metadata into place so that a reader, or a crash at any moment, sees the old
   * snapshot or the new one, never none and never a part: a new snapshot's folder is staged whole and
   * renamed into place; an existing one's metadata.json is replaced by a temporary file renamed over it.
   */
  async write(ref: SnapshotRef, metadata: SnapshotMetadata): Promise<void> {
    await this.cleanStaleStaging();
    const text = JSON.stringify(metadata, null, 2) + "\n";
    const target = this.dir(ref);
    await mkdir(join(target, ".."), { recursive: true });
    const staging = await this.stagingDir();
    try {
      const handle = await open(join(staging, "metadata.json"), "wx", 0o644);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await rename(staging, target);
        return;
      } catch (error) {
        // The snapshot exists (ENOTEMPTY, or EEXIST on some systems): replace its metadata instead.
        const code = systemErrorCode(error);
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    await removeStaleTemps(join(target, "metadata.json"));
    await writeFileAtomic(join(target, "metadata.json"), text);
  }

  async remove(ref: SnapshotRef): Promise<void> {
    const target = this.dir(ref);
    const staging = await this.stagingDir();
    try {
      await rename(target, join(staging, "removed"));
    } catch (error) {
      if (systemErrorCode(error) === "ENOENT") return;
      throw error;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** A private folder on the store's filesystem, named after this process so leftovers can be told apart. */
  async stagingDir(): Promise<string> {
    const dir = join(this.root, STAGING, `${ownerTag()}-${randomBytes(6).toString("hex")}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Removes staging folders left by processes that no longer run (killed mid-write). */
  async cleanStaleStaging(): Promise<void> {
    for (const entry of await readdirOrEmpty(join(this.root, STAGING))) {
      const owner = parseOwner(entry);
      if (owner && ownerGone(owner)) {
        await rm(join(this.root, STAGING, entry), { recursive: true, force: true });
      }
    }
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT" || systemErrorCode(error) === "ENOTDIR") return [];
    throw error;
  }
}

function parseMetadata(text: string, file: string): SnapshotMetadata {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new VmError("SNAPSHOT_METADATA_INVALID", `${file} is not valid JSON`, {
      hint: "Delete the snapshot (vm snapshot delete) and create or import it again",
    });
  }
  const result = metadataSchema.safeParse(data);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new VmError(
      "SNAPSHOT_METADATA_INVALID",
      `${file} is not a snapshot vm can read (${first?.path.join(".")}: ${first?.message})`,
      {
        hint: "It may come from a newer vm: upgrade vm, or delete the snapshot and create it again",
      },
    );
  }
  return result.data;
}
