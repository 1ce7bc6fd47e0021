import type { ArchiveContents } from "../../snapshot-file/archive-reader.ts";
import {
  ENTRY,
  FORMAT_VERSION,
  HEAD_ENTRIES,
  MAX_MANIFEST_BYTES,
  MAX_SMALL_ENTRY_BYTES,
  buildManifest,
  documents,
  parseChecksums,
  parseManifest,
  type Checksums,
  type Manifest,
} from "../../snapshot-file/format.ts";
import { type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import { signChecksums, type Signer } from "../../snapshot-file/signing.ts";
import { sha256 } from "../../snapshot-file/writer.ts";
import { VmError } from "../../errors.ts";
import {
  EMPTY_BLOB,
  MediaType,
  sha256Digest,
  type Descriptor,
  type ImageManifest,
} from "../../registry/oci.ts";
import { VERSION } from "../../version.ts";

/**
 * vm's metadata in a registry: one OCI 1.1 artifact whose `subject` is the image's manifest. Its blobs are
 * the entries a snapshot file begins and ends with — manifest.json, the descriptive documents,
 * checksums.json and, when signed, signature.json — so the same checks and the same signature apply.
 * See docs/snapshot-format.md, "In a registry".
 */
export const ARTIFACT_TYPE = "application/vnd.dev.vm.snapshot.v1";

const TITLE = "org.opencontainers.image.title";

const ENTRY_TYPES: Record<string, string> = {
  [ENTRY.manifest]: "application/vnd.dev.vm.snapshot.manifest.v1+json",
  [ENTRY.checksums]: "application/vnd.dev.vm.snapshot.checksums.v1+json",
  [ENTRY.signature]: "application/vnd.dev.vm.snapshot.signature.v1+json",
  [ENTRY.readme]: "text/markdown",
};

export interface BuiltArtifact {
  manifest: Manifest;
  /** The artifact manifest's bytes (what its digest covers). */
  bytes: Buffer;
  digest: string;
  blobs: { digest: string; data: Buffer }[];
}

export interface ArtifactInput {
  name: string;
  metadata: SnapshotMetadata;
  /** The image manifest pushed: the artifact's subject. */
  subject: Descriptor;
  layers: string[];
  engine: { version: string; image_store: string };
  signer: Signer | undefined;
  /** Standard annotations for the image and the artifact. */
  annotations: Record<string, string>;
}

/** Builds the artifact: the same manifest.json a file export writes, minus streamed entries. */
export function buildArtifact(input: ArtifactInput): BuiltArtifact {
  const { metadata, name } = input;
  const docs = documents(metadata, name);
  const manifest = buildManifest({
    name,
    metadata,
    docs,
    // The snapshot's own time, not the push's: pushing the same snapshot again makes the same artifact.
    exportedAt: metadata.created_at,
    vmVersion: VERSION,
    engine: input.engine,
    layers: input.layers,
    streamed: [],
    volumes: [],
    signedBy: input.signer?.fingerprint,
  });
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + "\n");
  const entries: [string, Buffer][] = [
    [ENTRY.manifest, manifestBytes],
    ...HEAD_ENTRIES.map((p) => [p, docs[p]!] as [string, Buffer]),
  ];
  const checksums: Checksums = {
    version: FORMAT_VERSION,
    manifest_sha256: sha256(manifestBytes),
    entries: entries.map(([path, data]) => ({ path, size: data.length, sha256: sha256(data) })),
  };
  const checksumsBytes = Buffer.from(JSON.stringify(checksums, null, 2) + "\n");
  entries.push([ENTRY.checksums, checksumsBytes]);
  if (input.signer) {
    const signature = signChecksums(input.signer, checksumsBytes);
    entries.push([ENTRY.signature, Buffer.from(JSON.stringify(signature, null, 2) + "\n")]);
  }
  return { manifest, ...artifactFromEntries(entries, input.subject, input.annotations) };
}

/**
 * The artifact that carries these entries (manifest.json first, checksums.json and signature.json last)
 * about `subject`: the push of a store snapshot builds them, the push of a file takes the file's own.
 */
export function artifactFromEntries(
  entries: [string, Buffer][],
  subject: Descriptor,
  annotations: Record<string, string>,
): Omit<BuiltArtifact, "manifest"> {
  const blobs = entries.map(([, data]) => ({ digest: sha256Digest(data), data }));
  const document: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: ARTIFACT_TYPE,
    config: { mediaType: MediaType.ociEmpty, digest: sha256Digest(EMPTY_BLOB), size: EMPTY_BLOB.length },
    layers: entries.map(([path, data]) => ({
      mediaType: ENTRY_TYPES[path] ?? "application/json",
      digest: sha256Digest(data),
      size: data.length,
      annotations: { [TITLE]: path },
    })),
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(document));
  return {
    bytes,
    digest: sha256Digest(bytes),
    blobs: [{ digest: sha256Digest(EMPTY_BLOB), data: EMPTY_BLOB }, ...blobs],
  };
}

/** The entry a blob of the artifact holds, and the most a registry may send for it. */
export function artifactEntries(
  document: ImageManifest,
): { path: string; descriptor: Descriptor; max: number }[] {
  if (document.artifactType !== ARTIFACT_TYPE)
    throw invalid(`its artifactType is ${document.artifactType ?? "none"}, not ${ARTIFACT_TYPE}`);
  const seen = new Set<string>();
  const allowed = new Set<string>([ENTRY.manifest, ...HEAD_ENTRIES, ENTRY.checksums, ENTRY.signature]);
  return document.layers.map((descriptor) => {
    const path = descriptor.annotations?.[TITLE] ?? "";
    if (!allowed.has(path)) throw invalid(`it carries an entry vm does not know: '${path}'`);
    if (seen.has(path)) throw invalid(`it carries ${path} twice`);
    seen.add(path);
    const max = path === ENTRY.manifest ? MAX_MANIFEST_BYTES : MAX_SMALL_ENTRY_BYTES;
    if (descriptor.size > max) throw invalid(`its ${path} is ${descriptor.size} bytes, more than vm reads`);
    return { path, descriptor, max };
  });
}

/**
 * The artifact's entries as a snapshot file's reader would have seen them, for the file format's own
 * checks (verifyContents) and the signature policy: nothing here is trusted until those pass.
 */
export function artifactContents(entries: Map<string, Buffer>): ArchiveContents {
  const manifestRaw = entries.get(ENTRY.manifest);
  if (!manifestRaw) throw invalid("it has no manifest.json");
  const manifest = parseManifest(manifestRaw);
  const streamed = manifest.streamed.filter((path) => path !== ENTRY.image);
  if (streamed.length || manifest.volumes?.length)
    throw invalid("its manifest.json lists entries a registry snapshot does not carry");
  const checksumsRaw = entries.get(ENTRY.checksums);
  const checksums = checksumsRaw ? parseChecksums(checksumsRaw) : undefined;
  const small = new Map<string, Buffer>();
  for (const path of HEAD_ENTRIES) {
    const data = entries.get(path);
    if (data) small.set(path, data);
  }
  const read = [...entries]
    .filter(([path]) => path !== ENTRY.checksums && path !== ENTRY.signature)
    .map(([path, data]) => ({ path, size: data.length, sha256: sha256(data) }));
  // A pushed snapshot file keeps its own checksums.json and signature, which cover images/base.tar as the
  // file had it. The registry holds that image as its blobs instead: what vouches for it is the config
  // digest and layers manifest.json records (checked against the registry's image by the pull), so the
  // file's record of images/base.tar is taken as read.
  const image = manifest.streamed.includes(ENTRY.image)
    ? checksums?.entries.find((e) => e.path === ENTRY.image)
    : undefined;
  if (image) read.push(image);
  return {
    kind: "vm",
    compression: "none",
    manifest,
    manifestRaw,
    small,
    read,
    checksums,
    checksumsRaw,
    signatureRaw: entries.get(ENTRY.signature),
    stoppedAtImage: false,
  };
}

function invalid(why: string): VmError {
  return new VmError(
    "REGISTRY_MANIFEST_INVALID",
    `vm's metadata in the registry is not one vm can read: ${why}`,
    {
      hint: "Push the snapshot again with vm snapshot push; nothing was registered",
    },
  );
}
