import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Engine } from "../../engine/engine.ts";
import { writeFileAtomic } from "../../lib/atomic.ts";
import { ownerGone, ownerTag, parseOwner } from "../../lib/owner.ts";

/**
 * An engine name a push or pull gives for a while: the registry name an image is tagged with so the
 * engine can push it, or the pinned `repo@digest` a pull leaves. `restore` is the image the name pointed
 * at before (given back), else the name is removed when it still points at `image` (any image for "").
 */
export interface PendingName {
  name: string;
  image: string;
  restore?: string;
}

/**
 * Names a push or pull must take back, written down before the engine makes them, so that a vm killed
 * with SIGKILL (no undo runs) has them taken back by the next push or pull on this machine: a record
 * whose owner no longer runs is undone and removed. `<store>/.pending/<owner>-<random>.json`.
 */
export class PendingNames {
  private readonly file: string;
  private readonly names: PendingName[] = [];

  private constructor(file: string) {
    this.file = file;
  }

  /** Undoes what dead vms left, then starts this one's record. */
  static async open(root: string, engine: Engine): Promise<PendingNames> {
    const dir = join(root, ".pending");
    await mkdir(dir, { recursive: true });
    for (const entry of await readdir(dir)) {
      const owner = parseOwner(entry.replace(/\.json$/, "").replace(/-[0-9a-f]{12}$/, ""));
      if (!entry.endsWith(".json") || !owner || !ownerGone(owner)) continue;
      const text = await readFile(join(dir, entry), "utf8").catch(() => "[]");
      let names: PendingName[] = [];
      try {
        names = JSON.parse(text) as PendingName[];
      } catch {
        // Half-written: nothing was made after it, since it is written before the engine is asked.
      }
      for (const pending of names) await undo(engine, pending);
      await rm(join(dir, entry), { force: true });
    }
    return new PendingNames(join(dir, `${ownerTag()}-${randomBytes(6).toString("hex")}.json`));
  }

  async add(pending: PendingName): Promise<void> {
    this.names.push(pending);
    await writeFileAtomic(this.file, JSON.stringify(this.names));
  }

  /** Takes every name back now (a failure or an interruption) and removes the record. */
  async undo(engine: Engine): Promise<void> {
    for (const pending of this.names.splice(0).reverse()) await undo(engine, pending);
    await rm(this.file, { force: true });
  }

  /** The names were dealt with: forget them. */
  async close(): Promise<void> {
    this.names.length = 0;
    await rm(this.file, { force: true });
  }
}

async function undo(engine: Engine, pending: PendingName): Promise<void> {
  const now = await engine.images.inspect(pending.name).catch(() => undefined);
  if (pending.restore) {
    if (now?.id !== pending.restore) {
      const colon = pending.name.lastIndexOf(":");
      await engine.images
        .tag(pending.restore, pending.name.slice(0, colon), pending.name.slice(colon + 1))
        .catch(() => undefined);
    }
    return;
  }
  if (now && (pending.image === "" || now.id === pending.image))
    await engine.images.remove(pending.name).catch(() => undefined);
}
