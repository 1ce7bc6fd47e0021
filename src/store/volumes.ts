import type { Readable } from "node:stream";
import type { Engine } from "../engine/engine.ts";
import { EngineError } from "../engine/errors.ts";
import { Label, managedLabels } from "../engine/labels.ts";

const MOUNT = "/vm-volume";

/** A project's named volumes: the name vm.yaml gives each, and the engine's name for it. */
export async function projectVolumes(
  engine: Engine,
  project: string,
): Promise<{ name: string; engineName: string }[]> {
  const volumes = await engine.volumes.list({
    [Label.managed]: "true",
    [Label.project]: project,
    [Label.role]: "volume",
  });
  return volumes
    .map((v) => ({
      name: v.labels[Label.volume] ?? v.name.replace(`vm-${project}-`, ""),
      engineName: v.name,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The engine volume an imported snapshot's volume lives in until an environment is seeded from it. */
export const snapshotVolumeName = (snapshot: string, volume: string) => `vm-snapshot-${snapshot}-${volume}`;

/**
 * Streams a volume's files as a tar, through a never-started helper container of `image` (the engine's
 * archive API works on stopped containers, so nothing runs and the image needs no tar of its own).
 */
export async function readVolume(
  engine: Engine,
  image: string,
  engineName: string,
  labels: Record<string, string>,
): Promise<{ tar: Readable; close: () => Promise<void> }> {
  const helper = await engine.containers.createHelper(image, [{ name: engineName, target: MOUNT }], labels);
  try {
    const tar = await engine.containers.getArchive(helper, `${MOUNT}/.`);
    return { tar, close: () => engine.containers.remove(helper, { force: true }) };
  } catch (error) {
    await engine.containers.remove(helper, { force: true });
    throw error;
  }
}

/** Creates (or fills) an engine volume from a tar stream. */
export async function writeVolume(
  engine: Engine,
  image: string,
  engineName: string,
  tar: Readable,
  labels: Record<string, string>,
): Promise<void> {
  await engine.volumes.ensure(engineName, labels);
  const helper = await engine.containers.createHelper(image, [{ name: engineName, target: MOUNT }], labels);
  try {
    await engine.containers.putArchive(helper, MOUNT, tar);
  } finally {
    await engine.containers.remove(helper, { force: true });
  }
}

/**
 * When an environment is created from a snapshot that carries volumes, each of the project's named volumes
 * that does not exist yet starts as a copy of the snapshot's volume of the same name.
 */
export async function seedVolumes(
  engine: Engine,
  image: string,
  snapshot: string,
  wanted: { name: string; engineName: string }[],
  labels: (volume: string) => Record<string, string>,
): Promise<string[]> {
  const seeded: string[] = [];
  const existing = new Set((await engine.volumes.list({ [Label.managed]: "true" })).map((v) => v.name));
  for (const volume of wanted) {
    const source = snapshotVolumeName(snapshot, volume.name);
    if (existing.has(volume.engineName) || !existing.has(source)) continue;
    const { tar, close } = await readVolume(engine, image, source, labels(volume.name));
    try {
      await writeVolume(engine, image, volume.engineName, tar, labels(volume.name));
    } finally {
      await close();
    }
    seeded.push(volume.name);
  }
  return seeded;
}

export function snapshotVolumeLabels(
  extra: Record<string, string>,
  snapshot: string,
  volume: string,
): Record<string, string> {
  return managedLabels("snapshot-volume", extra, {
    [Label.snapshot]: `global/${snapshot}`,
    [Label.volume]: volume,
  });
}

export async function removeVolumeQuietly(engine: Engine, name: string): Promise<void> {
  try {
    await engine.volumes.remove(name);
  } catch (error) {
    if (!(error instanceof EngineError)) throw error;
  }
}
