import type { Engine, ImageDetails } from "../engine/engine.ts";
import { VmError } from "../errors.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import { describeRef, validateSnapshotName, type SnapshotRef } from "../snapshot-file/names.ts";
import type { SnapshotStore } from "./store.ts";
import { parseSnapshotInput } from "../lib/names.ts";

export function snapshotNotFound(input: string, elsewhere: SnapshotMetadata[] = []): VmError {
  const { global, name } = parseSnapshotInput(input);
  const shown = `@${name}`;
  const projects = elsewhere.filter((s) => s.scope === "project" && s.name === name);
  if (projects.length > 0) {
    const list = projects.map((s) => `${s.name} (project ${s.project!})`).join(", ");
    return new VmError(
      "SNAPSHOT_NOT_FOUND",
      `Snapshot '${input}' not found${global ? " among the global snapshots" : " in this project or among the global ones"}; there is ${list}`,
      {
        hint: `Name its project: --project ${projects[0]!.project!}   (vm snapshot list shows every snapshot)`,
      },
    );
  }
  return new VmError(
    "SNAPSHOT_NOT_FOUND",
    `Snapshot '${shown}' not found. Import it first with: vm snapshot import <file>`,
    {
      hint: "vm snapshot import <file>   (vm snapshot list shows the snapshots you have)",
    },
  );
}

/**
 * Which snapshot a name on the command line means. `@name` is always the global one. A plain name is the
 * project's snapshot of that name when there is a project in context, else the global one; with no project
 * in context, it is also the one project snapshot of that name when exactly one project has one (the
 * design document's `--project ... (auto-detected if omitted)`); several are refused, listing them.
 */
export async function findSnapshot(
  store: SnapshotStore,
  input: string,
  project: string | undefined,
  log: (text: string) => void = () => {},
): Promise<{ ref: SnapshotRef; metadata: SnapshotMetadata }> {
  const { global, name } = parseSnapshotInput(input);
  validateSnapshotName(name);
  if (!global && project) {
    const ref: SnapshotRef = { scope: "project", project, name };
    const metadata = await store.read(ref);
    if (metadata) return { ref, metadata };
  }
  const globalRef: SnapshotRef = { scope: "global", name };
  const metadata = await store.read(globalRef);
  if (metadata) return { ref: globalRef, metadata };
  const all = await store.list();
  const owners = all.filter((s) => s.scope === "project" && s.name === name && s.project !== null);
  if (!global && !project && owners.length === 1) {
    const only = owners[0]!;
    log(`Using snapshot '${name}' of project '${only.project!}' (the only snapshot of that name)\n`);
    return { ref: { scope: "project", project: only.project!, name }, metadata: only };
  }
  if (!global && !project && owners.length > 1) {
    const lines = owners.map((s) => `  ${name} (project ${s.project!}): --project ${s.project!}`);
    throw new VmError(
      "SNAPSHOT_AMBIGUOUS",
      `Several projects have a snapshot named '${name}':\n${lines.join("\n")}`,
      { hint: "Pick one with --project NAME, as listed above" },
    );
  }
  throw snapshotNotFound(input, all);
}

/** A snapshot by what the user typed, with the engine's image of it (which must still be there). */
export async function findSnapshotImage(
  engine: Engine,
  store: SnapshotStore,
  input: string,
  project: string | undefined,
  log?: (text: string) => void,
): Promise<{ ref: SnapshotRef; metadata: SnapshotMetadata; image: ImageDetails }> {
  const { ref, metadata } = await findSnapshot(store, input, project, log);
  const image = await engine.images.inspect(metadata.engine_image_id);
  if (!image) throw snapshotImageMissing(ref, metadata);
  return { ref, metadata, image };
}

/** A snapshot the store lists whose image the engine no longer has. */
export function snapshotImageMissing(ref: SnapshotRef, metadata: SnapshotMetadata): VmError {
  return new VmError(
    "SNAPSHOT_IMAGE_MISSING",
    `Snapshot ${describeRef(ref)} is registered, but the engine no longer has its image ${metadata.image_tag} (${metadata.engine_image_id.slice(0, 19)})`,
    {
      hint: `Import the snapshot file again (vm snapshot import <file> --force), or remove the entry: vm snapshot delete ${ref.scope === "global" ? "@" : ""}${ref.name}`,
    },
  );
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
  if (!image) throw snapshotImageMissing(ref, metadata);
  const reference = image === tagged ? metadata.image_tag : image.id;
  return {
    image: reference,
    imageId: image.id,
    description: `snapshot ${describeRef(ref)}`,
    snapshot: { name: ref.name, volumes: metadata.volumes ?? [] },
  };
}
