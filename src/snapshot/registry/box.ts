import { createHash } from "node:crypto";
import type { RemoteBoxes, Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import { formatRef, parseRegistryRef } from "../../registry/reference.ts";
import { SNAPSHOT_NAME } from "../../snapshot-file/names.ts";
import { pullSnapshot } from "./pull.ts";
import { layerSummaryText } from "./layers.ts";

/**
 * `vm.box: "@registry/repository:tag"`: the first use pulls it (verified, registered under a name made
 * from the reference); later uses find it in the store by the reference it was pulled from, without
 * asking the registry again.
 */
export const registryBoxes: RemoteBoxes = {
  async resolve(ref: string, services: Services): Promise<{ name: string }> {
    const shown = formatRef(parseRegistryRef(ref));
    const known = (await services.snapshots.list()).find((s) => s.imported?.registry?.ref === shown);
    if (known && (await services.engine.images.inspect(known.engine_image_id))) return { name: known.name };
    const name = boxName(shown);
    const taken = await services.snapshots.read({ scope: "global", name });
    if (taken && taken.imported?.registry?.ref !== shown)
      throw new VmError("SNAPSHOT_EXISTS", `Snapshot '${name}' exists and was not pulled from ${shown}`, {
        hint: `Delete it (vm snapshot delete @${name}) or pull the reference under that name: vm snapshot pull ${shown} --name ${name} --force`,
      });
    services.log(`Snapshot ${shown} is not here yet; pulling it\n`);
    const result = await pullSnapshot(services, {
      source: shown,
      name,
      force: taken !== undefined,
      yes: false,
      confirm: undefined,
      requireSignature: false,
      trustedKeys: [],
      cwd: process.cwd(),
      onProgress: () => {},
      onWarning: services.log,
    });
    services.log(`Pulled ${shown} as @${result.name} (${layerSummaryText(result.layers, "pulled")})\n`);
    return { name: result.name };
  },
};

/** The store name of a registry box: the reference made to fit a snapshot name (with a hash when cut). */
export function boxName(shown: string): string {
  const slug = shown
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "");
  if (slug.length <= 128 && SNAPSHOT_NAME.test(slug)) return slug;
  const hash = createHash("sha256").update(shown).digest("hex").slice(0, 12);
  return `${slug.slice(0, 115)}-${hash}`;
}
