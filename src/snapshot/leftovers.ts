import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Label } from "../engine/labels.ts";
import type { Services } from "../env/services.ts";
import { alive } from "../lib/pid.ts";

/** The repository staged images are tagged into until they become a snapshot. */
export const STAGING_REPO = "vm-snapshot/staging";

/** The owner label for probe containers this process makes: this host and this pid. */
export function ownerLabel(): Record<string, string> {
  return { [Label.owner]: `${hostname()}/${process.pid}` };
}

/** A short, stable tag-safe name for this host (tags cannot hold every character a hostname may). */
function hostTag(): string {
  return createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
}

/** A staging tag that names this process, so a later vm can tell a killed one's leftovers from live work. */
export function stagingTag(): string {
  return `${process.pid}-${hostTag()}-${randomBytes(4).toString("hex")}`;
}

function deadOwner(host: string, pidText: string | undefined): boolean {
  const pid = Number(pidText);
  return host === hostname() && Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid);
}

/**
 * Removes what a killed `vm snapshot create` left in the engine: probe containers and staged image tags
 * whose owner (a vm on this host) no longer runs. Only the staging tag is removed, so an image that also
 * became a snapshot keeps its snapshot tag. Returns how many things it removed.
 */
export async function cleanLeftovers(services: Services): Promise<number> {
  const { engine } = services;
  let removed = 0;
  const selector = { [Label.managed]: "true", [Label.role]: "snapshot" };
  for (const container of await engine.containers.list(selector)) {
    const owner = container.labels[Label.owner] ?? "";
    const slash = owner.lastIndexOf("/");
    if (slash < 0 || !deadOwner(owner.slice(0, slash), owner.slice(slash + 1))) continue;
    await engine.containers.remove(container.id, { force: true }).catch(() => {});
    removed++;
  }
  for (const image of await engine.images.list(selector)) {
    for (const tag of image.tags) {
      if (!tag.startsWith(`${STAGING_REPO}:`)) continue;
      const [pid, host] = tag.slice(STAGING_REPO.length + 1).split("-");
      if (host !== hostTag() || !deadOwner(hostname(), pid)) continue;
      await engine.images.remove(tag).catch(() => {});
      removed++;
    }
  }
  return removed;
}
