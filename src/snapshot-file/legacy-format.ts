import { z } from "zod";
import { VmError } from "../errors.ts";
import { invalidArchive } from "./format.ts";

/**
 * Snapshot files written by vm 3.x (`vm snapshot export` of the Rust tool this one follows): one gzip
 * tar made by the Rust tar crate, the folder "./" first, then in no fixed order manifest.json,
 * metadata.json, images/<service>.tar (a `docker save` of the image by tag), volumes/<volume>.tar.gz
 * (later versions: .tar.zst; a busybox `tar czf -C /data .` of each volume) and compose/ files. Nothing
 * in it carries a checksum or a signature: what can be checked is the image's own content addresses and
 * the image ID metadata.json records for it. docs/snapshot-format.md describes both formats.
 */

const legacyManifestSchema = z.object({
  version: z.union([z.literal("1.0"), z.literal(1)]),
  snapshot_name: z.string(),
  created_at: z.string().optional(),
  description: z.string().nullable().optional(),
  is_global: z.boolean().optional(),
  project_name: z.string().nullable().optional(),
  services: z.number().int().nonnegative(),
  volumes: z.number().int().nonnegative(),
  total_size_bytes: z.number().nonnegative().optional(),
});
export type LegacyManifest = z.infer<typeof legacyManifestSchema>;

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const legacyMetadataSchema = z.object({
  name: z.string(),
  created_at: z.string(),
  description: z.string().nullable(),
  project_name: z.string(),
  project_dir: z.string(),
  git_commit: z.string().nullable(),
  git_dirty: z.boolean(),
  git_branch: z.string().nullable(),
  services: z.array(
    z.object({
      name: z.string(),
      image_tag: z.string(),
      image_file: z.string().regex(FILE_NAME),
      image_digest: z.string().nullable(),
    }),
  ),
  volumes: z.array(
    z.object({
      name: z.string().regex(FILE_NAME),
      archive_file: z.string().regex(FILE_NAME),
      size_bytes: z.number(),
    }),
  ),
  compose_file: z.string(),
  vm_config_file: z.string(),
  total_size_bytes: z.number(),
});
export type LegacyMetadata = z.infer<typeof legacyMetadataSchema>;

/** What each entry of a vm 3.x file is; anything else is refused. */
export type LegacyEntry =
  | { kind: "folder" }
  | { kind: "manifest" }
  | { kind: "metadata" }
  | { kind: "image"; file: string }
  | { kind: "volume"; file: string; compression: "gzip" | "zstd" }
  | { kind: "compose"; file: string };

export const MAX_LEGACY_DOCUMENT = 1024 * 1024;

/** Classifies an entry by its normalized name ("./images/x.tar" and "images/x.tar" alike) and type. */
export function classifyLegacyEntry(rawName: string, type: string | null | undefined): LegacyEntry {
  const name = rawName.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (type === "directory") {
    if (["", ".", "images", "volumes", "compose"].includes(name)) return { kind: "folder" };
    throw invalidArchive(`Unexpected folder '${rawName}' in the vm 3.x snapshot file`);
  }
  if (type !== "file")
    throw invalidArchive(
      `Entry '${rawName}' is a ${type ?? "special entry"}; snapshot files hold only regular files`,
    );
  if (name === "manifest.json") return { kind: "manifest" };
  if (name === "metadata.json") return { kind: "metadata" };
  const [folder, file, ...rest] = name.split("/");
  if (rest.length === 0 && file && FILE_NAME.test(file)) {
    if (folder === "images" && file.endsWith(".tar")) return { kind: "image", file };
    if (folder === "volumes" && file.endsWith(".tar.gz"))
      return { kind: "volume", file, compression: "gzip" };
    if (folder === "volumes" && file.endsWith(".tar.zst"))
      return { kind: "volume", file, compression: "zstd" };
    if (folder === "compose") return { kind: "compose", file };
  }
  throw invalidArchive(`Unexpected entry '${rawName}' in the vm 3.x snapshot file`);
}

export function parseLegacyManifest(raw: Buffer): LegacyManifest {
  return parseJson(raw, "manifest.json", legacyManifestSchema);
}

export function parseLegacyMetadata(raw: Buffer): LegacyMetadata {
  return parseJson(raw, "metadata.json", legacyMetadataSchema);
}

function parseJson<T>(raw: Buffer, what: string, schema: z.ZodType<T>): T {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalidArchive(`${what} of the vm 3.x snapshot file is not valid JSON`);
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw invalidArchive(
      `${what} is not a vm 3.x snapshot ${what === "manifest.json" ? "manifest" : "record"} (${issue?.path.join(".") || "root"}: ${issue?.message})`,
    );
  }
  return result.data;
}

/** What was read of a vm 3.x file, to be checked once all of it has passed. */
export interface LegacyRead {
  manifest?: LegacyManifest;
  metadata?: LegacyMetadata;
  image?: { file: string; size: number };
  volumes: { file: string; name: string; size: number }[];
}

/** What the image tar proved about itself (ImageVerifier.identity). */
export interface ImageIdentity {
  configDigest: string;
  diffIds: string[];
  manifestDigests: string[];
}

export interface LegacyChecked {
  manifest: LegacyManifest;
  metadata: LegacyMetadata;
  /** The service whose image the file carries. */
  service: LegacyMetadata["services"][number];
  /** Whether metadata.json recorded the image's ID (the only record there is to check it against). */
  idRecorded: boolean;
}

/**
 * Checks a vm 3.x file as far as it allows: its two documents are there and agree with each other and with
 * the entries; the image it carries is the one metadata.json records (the image ID `docker inspect` gave:
 * the config digest on the classic store, a manifest digest on the containerd store), which fixes every
 * layer; each volume archive has the size recorded for it.
 */
export function checkLegacy(read: LegacyRead, image: ImageIdentity | undefined): LegacyChecked {
  const { manifest, metadata } = read;
  if (!manifest) throw invalidArchive("The vm 3.x snapshot file has no manifest.json");
  if (!metadata) throw invalidArchive("The vm 3.x snapshot file has no metadata.json");
  if (metadata.services.length !== 1) {
    throw new VmError(
      "LEGACY_SERVICES",
      `The vm 3.x snapshot file holds ${metadata.services.length} images (${metadata.services.map((s) => s.name).join(", ") || "none"}); vm imports snapshots of one image`,
      {
        hint: "Export one service's snapshot with vm 3.x, or load its images/<service>.tar yourself with docker load",
      },
    );
  }
  const service = metadata.services[0]!;
  if (manifest.services !== metadata.services.length || manifest.volumes !== metadata.volumes.length)
    throw invalidArchive(
      `manifest.json counts ${manifest.services} image(s) and ${manifest.volumes} volume(s), metadata.json lists ${metadata.services.length} and ${metadata.volumes.length}`,
    );
  if (!read.image) throw invalidArchive(`The vm 3.x snapshot file has no images/${service.image_file}`);
  if (read.image.file !== service.image_file)
    throw invalidArchive(
      `The image is images/${read.image.file}, but metadata.json records images/${service.image_file}`,
    );
  const recorded = new Map(metadata.volumes.map((v) => [v.archive_file, v]));
  for (const volume of read.volumes) {
    const expected = recorded.get(volume.file);
    if (!expected) throw invalidArchive(`volumes/${volume.file} is not a volume metadata.json lists`);
    if (expected.size_bytes !== volume.size)
      throw invalidArchive(
        `volumes/${volume.file} is ${volume.size} bytes, but metadata.json records ${expected.size_bytes}: it was changed or cut short`,
      );
    recorded.delete(volume.file);
  }
  const missing = [...recorded.keys()];
  if (missing.length) throw invalidArchive(`The vm 3.x snapshot file has no volumes/${missing[0]!}`);
  const id = service.image_digest;
  if (image && id !== null && id !== image.configDigest && !image.manifestDigests.includes(id)) {
    throw new VmError(
      "ARCHIVE_DIGEST_MISMATCH",
      `images/${service.image_file} is not the image metadata.json records: expected image ID ${id}, the file's image is ${image.configDigest}${image.manifestDigests.length ? ` (manifest ${image.manifestDigests.join(", ")})` : ""}`,
      {
        hint: "The file was changed or damaged after it was exported; get a fresh copy (nothing was imported)",
      },
    );
  }
  return { manifest, metadata, service, idRecorded: id !== null };
}

/** The volume's name as vm.yaml names it: the archive's name without its extension. */
export function legacyVolumeName(read: LegacyRead, file: string): string {
  const recorded = read.metadata?.volumes.find((v) => v.archive_file === file)?.name;
  return recorded ?? file.replace(/\.tar\.(gz|zst)$/, "");
}

/** How import and verify describe such a file: plainly, what it lacks. */
export const LEGACY_NOTE =
  "a vm 3.x snapshot file: it has no checksums for its documents or volumes and no signature; checked were its image's own content addresses and the image ID its metadata records";
