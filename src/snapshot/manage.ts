import { isConflict, isNotFound } from "../engine/errors.ts";
import { removeUntaggedAncestors } from "../engine/image-chain.ts";
import type { Services } from "../env/services.ts";
import { VmError } from "../errors.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import { describeRef, type SnapshotRef } from "../snapshot-file/names.ts";
import { removeVolumeQuietly, snapshotVolumeName } from "../store/volumes.ts";
import type { SnapshotStore } from "../store/store.ts";

export interface ListFilter {
  glob?: string;
  type?: "base" | "project";
  project?: string;
}

/** `*` and `?` wildcards over the whole name. */
export function globToRegex(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export async function listSnapshots(
  store: SnapshotStore,
  filter: ListFilter,
  onBroken: (file: string, error: Error) => void,
): Promise<SnapshotMetadata[]> {
  const all = await store.list(onBroken);
  const pattern = filter.glob ? globToRegex(filter.glob) : undefined;
  return all.filter((s) => {
    if (pattern && !pattern.test(s.name)) return false;
    if (filter.type === "base" && s.scope !== "global") return false;
    if (filter.type === "project" && s.scope !== "project") return false;
    if (filter.project !== undefined && s.project !== filter.project) return false;
    return true;
  });
}

export interface DeleteResult {
  imageRemoved: boolean;
  users: string[];
}

/**
 * Removes a snapshot's metadata and its engine image. A container still using the image stops it,
 * unless `force`: then the snapshot goes and the image stays until those containers are gone.
 */
export async function deleteSnapshot(
  services: Services,
  ref: SnapshotRef,
  metadata: SnapshotMetadata,
  force: boolean,
): Promise<DeleteResult> {
  const { engine } = services;
  const users = (await engine.containers.list({}))
    .filter((c) => c.imageId === metadata.engine_image_id)
    .map((c) => c.name);
  if (users.length > 0 && !force) {
    throw new VmError(
      "SNAPSHOT_IN_USE",
      `Snapshot '${describeRef(ref)}' is used by container${users.length > 1 ? "s" : ""} ${users.join(", ")}`,
      {
        hint: "Remove those environments first (vm destroy in their projects), or use --force to delete the snapshot and keep the image until they are gone",
      },
    );
  }
  const shared = await services.snapshots.imageShared(metadata.engine_image_id, ref);
  await services.snapshots.remove(ref);
  if (ref.scope === "global") {
    for (const volume of metadata.volumes ?? [])
      await removeVolumeQuietly(engine, snapshotVolumeName(ref.name, volume));
  }
  let imageRemoved = false;
  try {
    // The parent is read first: on the containerd store the untag below already removes the image record.
    const parent = (await engine.images.inspect(metadata.engine_image_id))?.parent;
    const tagged = await engine.images.inspect(metadata.image_tag);
    if (tagged?.id === metadata.engine_image_id) await engine.images.remove(metadata.image_tag);
    if (users.length === 0 && !shared) {
      await engine.images.remove(metadata.engine_image_id).catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
      imageRemoved = true;
      // What the snapshot was built on and nothing else keeps: its build steps, or the box image a
      // `vm destroy` untagged because this snapshot still needed it.
      if (parent) await removeUntaggedAncestors(engine, parent);
    }
  } catch (error) {
    if (!isNotFound(error) && !isConflict(error)) throw error;
    imageRemoved = isNotFound(error);
  }
  return { imageRemoved, users };
}
