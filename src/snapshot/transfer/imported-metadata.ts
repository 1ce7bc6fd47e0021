import type { ImageDetails } from "../../engine/engine.ts";
import { VERSION } from "../../version.ts";
import { imageFacts, type Inventory } from "../inventory.ts";
import type { ImageIdentity, LegacyChecked } from "../../snapshot-file/legacy-format.ts";
import type { ArchiveContents } from "../../snapshot-file/archive-reader.ts";
import { ENTRY } from "../../snapshot-file/format.ts";
import { METADATA_FORMAT, metadataSchema, type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import { imageTag, type SnapshotRef } from "../../snapshot-file/names.ts";

/**
 * The store's metadata for an imported file: what the manifest guarantees (checked), plus what the
 * descriptive documents say when they are well formed.
 */
export function importedMetadata(
  ref: SnapshotRef,
  contents: ArchiveContents,
  engineId: string,
  engineVersion: string,
  file: string,
): SnapshotMetadata {
  const { manifest, small } = contents;
  const json = (path: string): Record<string, unknown> => {
    try {
      return JSON.parse(small.get(path)?.toString("utf8") ?? "{}") as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  const packages = json(ENTRY.packages);
  const build = json(ENTRY.buildInfo);
  const [os = "linux", architecture = "unknown", variant] = manifest.platform.split("/");
  const candidate = {
    format: METADATA_FORMAT,
    name: ref.name,
    scope: "global",
    project: null,
    created_at: manifest.created_at,
    description: manifest.description,
    source: "imported",
    image_id: manifest.image_digest,
    engine_image_id: engineId,
    image_tag: imageTag(ref),
    platform: { os, architecture, ...(variant ? { variant } : {}) },
    size_bytes: manifest.size_bytes,
    languages: manifest.languages,
    tools: Array.isArray(packages.tools)
      ? packages.tools
      : manifest.tools.map((name) => ({ name, version: "", source: "" })),
    os_packages: packages.os_packages ?? { manager: null, count: 0, packages: [] },
    build: {
      vm_version: typeof build.vm_version === "string" ? build.vm_version : manifest.vm_version,
      engine_version:
        typeof build.engine_version === "string" ? build.engine_version : manifest.engine.version,
      image_store: typeof build.image_store === "string" ? build.image_store : manifest.engine.image_store,
      build_date: typeof build.build_date === "string" ? build.build_date : manifest.created_at,
      box: typeof build.box === "string" ? build.box : null,
      dockerfile: typeof build.dockerfile === "string" ? build.dockerfile : null,
      dockerfile_sha256: typeof build.dockerfile_sha256 === "string" ? build.dockerfile_sha256 : null,
      build_args: typeof build.build_args === "object" && build.build_args ? build.build_args : {},
    },
    git: build.git ?? null,
    imported: importRecord(engineVersion, manifest.snapshot_name, file, "vm"),
    ...(manifest.volumes?.length ? { volumes: manifest.volumes } : {}),
  };
  const parsed = metadataSchema.safeParse(candidate);
  if (parsed.success) return parsed.data;
  // The descriptive documents are not trusted to be well formed: keep what the manifest guarantees.
  return metadataSchema.parse({
    ...candidate,
    tools: [],
    os_packages: { manager: null, count: 0, packages: [] },
    git: null,
  });
}

/**
 * The store's metadata for a vm 3.x file: what its two documents say, the identity the image proved, and
 * what the engine reports of the image it loaded; the languages and tools come from vm's own inventory.
 */
export function legacyImportedMetadata(
  ref: SnapshotRef,
  legacy: { checked: LegacyChecked; identity: ImageIdentity },
  image: ImageDetails,
  inventory: Inventory,
  engineVersion: string,
  file: string,
): SnapshotMetadata {
  const { manifest, metadata } = legacy.checked;
  return metadataSchema.parse({
    format: METADATA_FORMAT,
    ...imageFacts(ref, image, inventory),
    created_at: metadata.created_at,
    description: manifest.description ?? metadata.description ?? "",
    source: "imported",
    image_id: legacy.identity.configDigest,
    build: {
      vm_version: "3.x",
      engine_version: "unknown",
      image_store: "unknown",
      build_date: image.created || metadata.created_at,
      box: null,
      dockerfile: null,
      dockerfile_sha256: null,
      build_args: {},
    },
    git: metadata.git_commit
      ? { branch: metadata.git_branch, commit: metadata.git_commit, dirty: metadata.git_dirty }
      : null,
    imported: importRecord(engineVersion, manifest.snapshot_name, file, "vm 3.x"),
    ...(metadata.volumes.length
      ? { volumes: metadata.volumes.map((v) => v.archive_file.replace(/\.tar\.(gz|zst)$/, "")) }
      : {}),
  });
}

/** Where an imported snapshot came from: this import, and the name and file it had. */
function importRecord(engineVersion: string, originalName: string, file: string, format: "vm" | "vm 3.x") {
  return {
    at: new Date().toISOString(),
    vm_version: VERSION,
    engine_version: engineVersion,
    original_name: originalName,
    file,
    format,
  };
}
