import { randomBytes } from "node:crypto";
import { Label } from "../engine/labels.ts";
import type { Services } from "../env/services.ts";
import { ownerGone, ownerTag, parseOwner } from "../lib/owner.ts";

/** The repository staged images are tagged into until they become a snapshot. */
export const STAGING_REPO = "vm-snapshot/staging";

/** The owner label for probe containers this process makes. */
export function ownerLabel(): Record<string, string> {
  return { [Label.owner]: ownerTag() };
}

/** A staging tag that names this process, so a later vm can tell a killed one's leftovers from live work. */
export function stagingTag(): string {
  return `${ownerTag()}-${randomBytes(4).toString("hex")}`;
}

/**
 * Removes what a killed `vm snapshot create` left in the engine: probe containers and staged image tags
 * whose owner (a vm on this host, see lib/owner.ts) no longer runs. Only the staging tag is removed, so an
 * image that also became a snapshot keeps its snapshot tag. Returns how many things it removed.
 */
export async function cleanLeftovers(services: Services): Promise<number> {
  const { engine } = services;
  let removed = 0;
  const selector = { [Label.managed]: "true", [Label.role]: "snapshot" };
  for (const container of await engine.containers.list(selector)) {
    const owner = parseOwner(container.labels[Label.owner] ?? "");
    if (!owner || !ownerGone(owner)) continue;
    await engine.containers.remove(container.id, { force: true }).catch(() => {});
    removed++;
  }
  for (const image of await engine.images.list(selector)) {
    for (const tag of image.tags) {
      if (!tag.startsWith(`${STAGING_REPO}:`)) continue;
      const owner = parseOwner(tag.slice(STAGING_REPO.length + 1));
      if (!owner || !ownerGone(owner)) continue;
      await engine.images.remove(tag).catch(() => {});
      removed++;
    }
  }
  return removed;
}
