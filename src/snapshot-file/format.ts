import { createHash } from "node:crypto";
import { z } from "zod";
import { VmError } from "../errors.ts";
import { platformString, type SnapshotMetadata } from "./metadata.ts";
import { SNAPSHOT_NAME } from "./names.ts";

/** Snapshot file format; see docs/snapshot-format.md. Bump on any change a version-1 reader cannot read. */
export const FORMAT_VERSION = 1;

export const ENTRY = {
  manifest: "manifest.json",
  versions: "metadata/versions.json",
  packages: "metadata/packages.json",
  buildInfo: "metadata/build-info.json",
  readme: "docs/README.md",
  image: "images/base.tar",
  checksums: "checksums.json",
  signature: "signature.json",
} as const;

/** Entries whose bytes are known before writing starts: their digests are in the manifest itself. */
export const VOLUME_ENTRY = /^volumes\/([a-zA-Z0-9][a-zA-Z0-9_.-]{0,127})\.tar$/;

export const HEAD_ENTRIES = [ENTRY.versions, ENTRY.packages, ENTRY.buildInfo, ENTRY.readme] as const;

export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MAX_SMALL_ENTRY_BYTES = 16 * 1024 * 1024;

const digest = z.string().regex(/^[0-9a-f]{64}$/);
const entryDigest = z.object({ path: z.string(), size: z.number().int().nonnegative(), sha256: digest });
export type EntryDigestRecord = z.infer<typeof entryDigest>;

export const manifestSchema = z.object({
  format: z.literal("vm-snapshot"),
  version: z.number().int().positive(),
  snapshot_name: z.string(),
  created_at: z.string(),
  exported_at: z.string(),
  description: z.string(),
  image_digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  platform: z.string(),
  size_bytes: z.number().nonnegative(),
  languages: z.record(z.string(), z.string()),
  tools: z.array(z.string()),
  vm_version: z.string(),
  engine: z.object({ version: z.string(), image_store: z.string() }),
  image_tag: z.string(),
  /** What the exporting engine called the image: the manifest digest on a containerd store. */
  source_image_id: z.string(),
  layers: z.array(z.string()),
  entries: z.array(entryDigest),
  streamed: z.array(z.string()),
  /** The fingerprint of the key whose signature.json ends the file; a reader then requires it. */
  signed_by: z.string().optional(),
  /** Named volumes carried as volumes/<name>.tar (export --include-volumes). */
  volumes: z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/)).optional(),
  checksums: z.literal(ENTRY.checksums),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const checksumsSchema = z.object({
  version: z.number().int().positive(),
  manifest_sha256: digest,
  entries: z.array(entryDigest),
});
export type Checksums = z.infer<typeof checksumsSchema>;

/** Parses manifest.json: a newer format is refused with "upgrade vm", an older one is read. */
export function parseManifest(raw: Buffer): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalidArchive("manifest.json is not valid JSON");
  }
  const version = (data as { version?: unknown } | null)?.version;
  const major =
    typeof version === "number" ? version : typeof version === "string" ? Number.parseInt(version, 10) : NaN;
  if (Number.isInteger(major) && major > FORMAT_VERSION) {
    throw new VmError(
      "ARCHIVE_FORMAT_NEWER",
      `This snapshot file uses format version ${major}; this vm reads versions up to ${FORMAT_VERSION}`,
      {
        hint: "Upgrade vm to import it",
      },
    );
  }
  const normalized = typeof version === "string" ? { ...(data as object), version: major } : data;
  const result = manifestSchema.safeParse(normalized);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw invalidArchive(
      `manifest.json is not a vm snapshot manifest (${issue?.path.join(".") || "root"}: ${issue?.message})`,
    );
  }
  if (!SNAPSHOT_NAME.test(result.data.snapshot_name)) {
    throw invalidArchive(
      `manifest.json names the snapshot '${result.data.snapshot_name}', which is not a valid snapshot name`,
    );
  }
  return result.data;
}

const RANK: Record<string, number> = {
  [ENTRY.manifest]: 0,
  ...Object.fromEntries(HEAD_ENTRIES.map((path, i) => [path, 1 + i])),
  [ENTRY.image]: 100,
  [ENTRY.checksums]: 1_000_000,
  [ENTRY.signature]: 1_000_001,
};

/** An entry's place in the format's order; volumes follow the image in the manifest's order. */
export function entryRank(name: string, volume: string | undefined, manifest: Manifest | undefined): number {
  if (volume !== undefined) return 101 + (manifest?.volumes?.indexOf(volume) ?? 0);
  return RANK[name] ?? 0;
}

/** Parses checksums.json. */
export function parseChecksums(raw: Buffer): Checksums {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalidArchive("checksums.json is not valid JSON");
  }
  const result = checksumsSchema.safeParse(data);
  if (!result.success) throw invalidArchive("checksums.json is not a vm checksum list");
  return result.data;
}

export function invalidArchive(
  message: string,
  hint = "The file is damaged or is not a vm snapshot; get a fresh copy of it",
): VmError {
  return new VmError("ARCHIVE_INVALID", message, { hint });
}

export interface ManifestInput {
  name: string;
  metadata: SnapshotMetadata;
  /** The head documents (documents()), listed with their digests. */
  docs: Record<string, Buffer>;
  exportedAt: string;
  vmVersion: string;
  engine: { version: string; image_store: string };
  /** The image's diff IDs. */
  layers: string[];
  /** Entries written after the head, their digests in checksums.json (none for a registry artifact). */
  streamed: string[];
  volumes: string[];
  signedBy: string | undefined;
}

/** manifest.json of a snapshot: what a file export, a registry artifact and the test files all write. */
export function buildManifest(input: ManifestInput): Manifest {
  const { metadata, docs } = input;
  const hex = (data: Buffer) => createHash("sha256").update(data).digest("hex");
  return {
    format: "vm-snapshot",
    version: FORMAT_VERSION,
    snapshot_name: input.name,
    created_at: metadata.created_at,
    exported_at: input.exportedAt,
    description: metadata.description,
    image_digest: metadata.image_id,
    platform: platformString(metadata.platform),
    size_bytes: metadata.size_bytes,
    languages: metadata.languages,
    tools: metadata.tools.map((t) => t.name),
    vm_version: input.vmVersion,
    engine: input.engine,
    image_tag: metadata.image_tag,
    source_image_id: metadata.engine_image_id,
    layers: input.layers,
    entries: HEAD_ENTRIES.map((path) => ({ path, size: docs[path]!.length, sha256: hex(docs[path]!) })),
    streamed: input.streamed,
    checksums: ENTRY.checksums,
    ...(input.volumes.length ? { volumes: input.volumes } : {}),
    ...(input.signedBy ? { signed_by: input.signedBy } : {}),
  };
}

/** The human-readable entries written beside the image. */
export function documents(meta: SnapshotMetadata, name: string): Record<string, Buffer> {
  const json = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2) + "\n");
  return {
    [ENTRY.versions]: json({ languages: meta.languages }),
    [ENTRY.packages]: json({ tools: meta.tools, os_packages: meta.os_packages }),
    [ENTRY.buildInfo]: json({
      ...meta.build,
      platform: platformString(meta.platform),
      source: meta.source,
      git: meta.git,
      created_at: meta.created_at,
    }),
    [ENTRY.readme]: Buffer.from(readme(meta, name)),
  };
}

function readme(meta: SnapshotMetadata, name: string): string {
  const langs = Object.entries(meta.languages);
  const rows = langs.length ? langs.map(([k, v]) => `| ${k} | ${v} |`).join("\n") : "| (none detected) | |";
  const tools = meta.tools.length
    ? meta.tools.map((t) => `- ${t.name}${t.version ? ` ${t.version}` : ""} (${t.source})`).join("\n")
    : "- (none detected)";
  return `# Snapshot ${name}

${meta.description || "(no description)"}

- Platform: ${platformString(meta.platform)}
- Created: ${meta.created_at} (${meta.source}); built with vm ${meta.build.vm_version}, Docker ${meta.build.engine_version}
- Image config digest: ${meta.image_id}
- OS packages: ${meta.os_packages.count}${meta.os_packages.manager ? ` (${meta.os_packages.manager})` : ""}

| language | version |
|---|---|
${rows}

Tools:
${tools}

## Import and use it

    vm snapshot import ${name}.snapshot.tar.gz
    # then in any project's vm.yaml:
    vm:
      box: "@${name}"

## Without vm

\`images/base.tar\` is exactly what \`docker save\` writes:

    tar -xzf ${name}.snapshot.tar.gz images/base.tar   # -x --zstd for .tar.zst
    docker load -i images/base.tar
    docker tag ${meta.image_id} ${name}:latest
`;
}
