import type { Engine } from "../engine/engine.ts";
import { ExitCode, VmError } from "../errors.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import { describeRef, validateSnapshotName, type SnapshotRef } from "./names.ts";
import type { SnapshotStore } from "./store.ts";

export function snapshotNotFound(input: string): VmError {
  const shown = input.startsWith("@") ? input : `@${input}`;
  return new VmError(
    "SNAPSHOT_NOT_FOUND",
    `Snapshot '${shown}' not found. Import it first with: vm snapshot import <file>`,
    {
      hint: "vm snapshot import <file>   (vm snapshot list shows the snapshots you have)",
      exitCode: ExitCode.notFound,
    },
  );
}

/**
 * Which snapshot a name on the command line means: `@name` is always the global one; a plain name is the
 * current project's snapshot of that name when there is one, else the global one.
 */
export async function findSnapshot(
  store: SnapshotStore,
  input: string,
  project: string | undefined,
): Promise<{ ref: SnapshotRef; metadata: SnapshotMetadata }> {
  const global = input.startsWith("@");
  const name = global ? input.slice(1) : input;
  validateSnapshotName(name);
  if (!global && project) {
    const ref: SnapshotRef = { scope: "project", project, name };
    const metadata = await store.read(ref);
    if (metadata) return { ref, metadata };
  }
  const ref: SnapshotRef = { scope: "global", name };
  const metadata = await store.read(ref);
  if (metadata) return { ref, metadata };
  throw snapshotNotFound(name);
}

/** The engine image a snapshot box starts from: used as it is, no rebuild. */
export async function resolveSnapshotImage(
  engine: Engine,
  store: SnapshotStore,
  ref: SnapshotRef,
): Promise<{
  image: string;
  imageId: string;
  description: string;
  snapshot: { name: string; volumes: string[] };
}> {
  const metadata = await store.read(ref);
  if (!metadata) throw snapshotNotFound(ref.name);
  // The tag reads better in `docker ps`; the ID is what the snapshot is, should the tag have moved.
  const tagged = await engine.images.inspect(metadata.image_tag);
  const image =
    tagged?.id === metadata.engine_image_id ? tagged : await engine.images.inspect(metadata.engine_image_id);
  if (!image) {
    throw new VmError(
      "SNAPSHOT_IMAGE_MISSING",
      `Snapshot ${describeRef(ref)} is registered, but the engine no longer has its image ${metadata.image_tag} (${metadata.engine_image_id.slice(0, 19)})`,
      {
        hint: `Import the snapshot file again (vm snapshot import <file> --force), or remove the entry: vm snapshot delete ${ref.scope === "global" ? "@" : ""}${ref.name}`,
        exitCode: ExitCode.notFound,
      },
    );
  }
  const reference = image === tagged ? metadata.image_tag : image.id;
  return {
    image: reference,
    imageId: image.id,
    description: `snapshot ${describeRef(ref)}`,
    snapshot: { name: ref.name, volumes: metadata.volumes ?? [] },
  };
}
