import type { ImageDetails } from "../../engine/engine.ts";
import { VmError } from "../../errors.ts";
import type { RegistryClient } from "../../registry/client.ts";
import type { ArchiveContents } from "../../snapshot-file/archive-reader.ts";
import { ENTRY } from "../../snapshot-file/format.ts";
import { METADATA_FORMAT, metadataSchema, type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import type { SnapshotRef } from "../../snapshot-file/names.ts";
import { enforceSignature, type PublicKey, type SignaturePolicy } from "../../snapshot-file/signing.ts";
import { verifyContents } from "../../snapshot-file/verify.ts";
import { VERSION } from "../../version.ts";
import { imageFacts, type Inventory } from "../inventory.ts";
import { importedMetadata } from "../transfer/imported-metadata.ts";
import { artifactContents, artifactEntries } from "./artifact.ts";
import { vmReferrers, type PlatformImage } from "./referrers.ts";

// What a pull checks and records: vm's metadata read from the registry with the file format's rules, the
// engine's image against it, and the snapshot's metadata.json for what was pulled.

/** vm's metadata from the registry, checked like a snapshot file's head and trailer. */
export interface Checked {
  contents: ArchiveContents;
  signer: PublicKey | undefined;
}

/** vm's newest metadata artifact for `subject`, read and checked; undefined when there is none. */
export async function readMetadata(
  client: RegistryClient,
  subject: string,
  policy: SignaturePolicy,
): Promise<Checked | undefined> {
  const { descriptors } = await vmReferrers(client, subject);
  const newest = descriptors[0];
  if (!newest) return undefined;
  const fetched = await client.manifest(newest.digest);
  if (!fetched || fetched.kind !== "manifest")
    throw new VmError(
      "REGISTRY_MANIFEST_INVALID",
      `vm's metadata ${newest.digest} in ${client.registry}/${client.repository} is missing or not a manifest`,
      {
        hint: "Push the snapshot again with vm snapshot push",
      },
    );
  if (fetched.manifest.subject?.digest !== subject)
    throw new VmError(
      "REGISTRY_MANIFEST_INVALID",
      `vm's metadata ${newest.digest} is about another image than ${subject}`,
    );
  const entries = new Map<string, Buffer>();
  for (const entry of artifactEntries(fetched.manifest))
    entries.set(entry.path, await client.blob(entry.descriptor.digest, entry.max));
  const contents = artifactContents(entries);
  // The file format's rules: every document against manifest.json and checksums.json, then the signature.
  verifyContents(contents);
  const signer = enforceSignature(
    policy,
    contents.signatureRaw,
    contents.checksumsRaw,
    contents.manifest.signed_by,
  );
  if (!entries.has(ENTRY.checksums))
    throw new VmError("ARCHIVE_INCOMPLETE", "vm's metadata in the registry has no checksums.json");
  return { contents, signer };
}

/** The engine's image must be the one checked: the same layers, and on the classic store the same ID. */
export function checkEngineImage(pulled: ImageDetails, image: PlatformImage, shown: string): void {
  const sameLayers = JSON.stringify(pulled.layers) === JSON.stringify(image.diffIds);
  const sameId =
    pulled.id === image.configDigest ||
    pulled.id === image.manifestDigest ||
    pulled.id === image.descriptor.digest;
  if (!sameLayers || !sameId)
    throw new VmError(
      "REGISTRY_DIGEST_MISMATCH",
      `The engine's image for ${shown} is not the one vm checked (${pulled.id})`,
      {
        hint: "Nothing was registered; pull again",
      },
    );
}

function withRegistry(
  metadata: SnapshotMetadata,
  registry: { ref: string; digest: string },
): SnapshotMetadata {
  return { ...metadata, imported: { ...metadata.imported!, registry } };
}

export function parsePlatform(text: string): { os: string; architecture: string; variant?: string } {
  const [os = "linux", architecture = "amd64", variant] = text.split("/");
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export interface Pulled {
  ref: SnapshotRef;
  name: string;
  shown: string;
  checked: Checked | undefined;
  pulled: ImageDetails;
  /** Taken here for a plain image (vm's metadata carries it otherwise). */
  inventory: Inventory | undefined;
  registry: { ref: string; digest: string };
  /** The image config's digest the registry's manifest names (checked against the engine's image). */
  configDigest: string;
  engineVersion: string;
}

/** The snapshot's metadata.json: vm's pushed metadata, or for a plain image what the engine tells. */
export function pulledMetadata(p: Pulled): SnapshotMetadata {
  const { ref, name, shown, checked, pulled, inventory, registry, engineVersion } = p;
  if (checked)
    return withRegistry(importedMetadata(ref, checked.contents, pulled.id, engineVersion, shown), registry);
  if (!inventory) throw new Error("pulledMetadata: a plain image needs the inventory taken here");
  return metadataSchema.parse({
    format: METADATA_FORMAT,
    ...imageFacts(ref, pulled, inventory),
    created_at: pulled.created || new Date().toISOString(),
    description: `image ${shown}`,
    source: "imported",
    image_id: p.configDigest,
    build: {
      vm_version: "unknown",
      engine_version: "unknown",
      image_store: "unknown",
      build_date: pulled.created || "",
      box: null,
      dockerfile: null,
      dockerfile_sha256: null,
      build_args: {},
    },
    git: null,
    imported: {
      at: new Date().toISOString(),
      vm_version: VERSION,
      engine_version: engineVersion,
      original_name: name,
      file: shown,
      format: "image",
      registry,
    },
  });
}
