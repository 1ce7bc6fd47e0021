import { VmError } from "../../errors.ts";
import { fallbackTag, type RegistryClient } from "../../registry/client.ts";
import {
  MediaType,
  imageConfigSchema,
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
} from "../../registry/oci.ts";
import { ARTIFACT_TYPE, type BuiltArtifact } from "./artifact.ts";

export interface PlatformImage {
  /** The manifest the tag points at (an index, or the image manifest itself): what referrers name. */
  descriptor: Descriptor;
  top: FetchedManifest;
  /** The image manifest for the platform (the same as `top` when `top` is not an index). */
  manifestDigest: string;
  configDigest: string;
  diffIds: string[];
  platform: { os: string; architecture: string; variant?: string };
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/**
 * The image a manifest (or index) describes for a platform, with its config read and checked: the config's
 * digest is the manifest's (the client checks blobs against their digests) and, when `expectedConfig` is
 * given, that one.
 */
export async function imageManifestFor(
  client: RegistryClient,
  reference: string,
  expectedConfig: string | undefined,
  platform: { os: string; architecture: string; variant?: string | undefined },
  fetched?: FetchedManifest,
): Promise<PlatformImage> {
  const top = fetched ?? (await client.manifest(reference));
  const where = `${client.registry}/${client.repository}${reference.startsWith("sha256:") ? "@" : ":"}${reference}`;
  if (!top)
    throw new VmError("REGISTRY_NOT_FOUND", `${where} is not in the registry`, {
      hint: "Check the reference (registry/repository:tag), or push the snapshot first: vm snapshot push NAME REF",
    });
  let image = top;
  if (top.kind === "index") {
    const entry = pickPlatform(top.index, platform);
    if (!entry)
      throw new VmError(
        "PLATFORM_MISMATCH",
        `${where} has no image for ${platform.os}/${platform.architecture}`,
        {
          hint: "Push an image built for this platform",
        },
      );
    const inner = await client.manifest(entry.digest);
    if (!inner || inner.kind !== "manifest")
      throw new VmError(
        "REGISTRY_MANIFEST_INVALID",
        `${where} lists ${entry.digest}, which the registry does not hold as an image manifest`,
      );
    image = inner;
  }
  if (image.kind !== "manifest") throw new Error("unreachable");
  const configDigest = image.manifest.config.digest;
  if (expectedConfig && configDigest !== expectedConfig)
    throw new VmError(
      "REGISTRY_DIGEST_MISMATCH",
      `${where} is not the snapshot's image: its config is ${configDigest}, the snapshot's metadata says ${expectedConfig}`,
      { hint: "The tag was moved or the metadata belongs to another image; nothing was registered" },
    );
  const raw = await client.blob(configDigest, MAX_CONFIG_BYTES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const config = imageConfigSchema.safeParse(parsed);
  if (!config.success)
    throw new VmError("REGISTRY_MANIFEST_INVALID", `The image config of ${where} is not one vm can read`);
  return {
    descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length },
    top,
    manifestDigest: image.digest,
    configDigest,
    diffIds: config.data.rootfs.diff_ids,
    platform: {
      os: config.data.os,
      architecture: config.data.architecture,
      ...(config.data.variant ? { variant: config.data.variant } : {}),
    },
  };
}

function pickPlatform(
  index: ImageIndex,
  platform: { os: string; architecture: string; variant?: string | undefined },
): Descriptor | undefined {
  const images = index.manifests.filter(
    (d) =>
      (d.mediaType === MediaType.ociManifest || d.mediaType === MediaType.dockerManifest) &&
      d.platform?.os !== "unknown" &&
      d.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest",
  );
  const same = images.filter(
    (d) => d.platform?.os === platform.os && d.platform.architecture === platform.architecture,
  );
  const exact = same.find((d) => (d.platform?.variant ?? "") === (platform.variant ?? ""));
  return exact ?? same[0] ?? (images.length === 1 ? images[0] : undefined);
}

/** vm's artifacts among what refers to `digest`, newest first. */
export async function vmReferrers(
  client: RegistryClient,
  digest: string,
): Promise<{ descriptors: Descriptor[]; via: "api" | "tag" }> {
  const { descriptors, via } = await client.referrers(digest);
  const ours = descriptors.filter((d) => d.artifactType === ARTIFACT_TYPE);
  const created = (d: Descriptor) => d.annotations?.["org.opencontainers.image.created"] ?? "";
  return { descriptors: ours.sort((a, b) => created(b).localeCompare(created(a))), via };
}

/**
 * Puts the artifact's blobs and manifest; a registry that did not take the `subject` into its referrers
 * (no OCI-Subject header) gets the distribution spec's fallback: the artifact listed in the index tagged
 * `sha256-<hex>` of the subject, replacing vm artifacts listed there before and keeping every other entry.
 */
export async function publishReferrer(
  client: RegistryClient,
  subject: string,
  artifact: Pick<BuiltArtifact, "blobs" | "bytes" | "digest">,
): Promise<"api" | "tag"> {
  for (const blob of artifact.blobs) await client.putBlob(blob.digest, blob.data);
  const put = await client.putManifest(artifact.digest, MediaType.ociManifest, artifact.bytes);
  if (put.subject === subject) return "api";
  const tag = fallbackTag(subject);
  const existing = await client.manifest(tag);
  const kept =
    existing?.kind === "index"
      ? existing.index.manifests.filter(
          (d) => d.artifactType !== ARTIFACT_TYPE && d.digest !== artifact.digest,
        )
      : [];
  const document = JSON.parse(artifact.bytes.toString("utf8")) as { annotations?: Record<string, string> };
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      ...kept,
      {
        mediaType: MediaType.ociManifest,
        digest: artifact.digest,
        size: artifact.bytes.length,
        artifactType: ARTIFACT_TYPE,
        ...(document.annotations ? { annotations: document.annotations } : {}),
      },
    ],
  };
  await client.putManifest(tag, MediaType.ociIndex, Buffer.from(JSON.stringify(index)));
  return "tag";
}

/**
 * The engine pushes its own manifest, without annotations. vm puts the same document again under the tag
 * with the standard ones added (the config and layers unchanged, so `docker pull` gets the same image and
 * the config digest stays the snapshot's): returns the digest the tag now points at. An already annotated
 * manifest (an unchanged snapshot pushed again) is put back as it was, byte for byte.
 */
export async function annotateImage(
  client: RegistryClient,
  tag: string,
  digest: string,
  annotations: Record<string, string>,
): Promise<string> {
  const pushed = await client.manifest(digest);
  if (!pushed)
    throw new VmError(
      "REGISTRY_NOT_FOUND",
      `${client.registry}/${client.repository}@${digest} vanished after the push`,
    );
  const document = JSON.parse(pushed.bytes.toString("utf8")) as { annotations?: Record<string, string> };
  const merged = { ...document.annotations, ...annotations };
  const bytes = Buffer.from(JSON.stringify({ ...document, annotations: merged }));
  const put = await client.putManifest(tag, pushed.mediaType, bytes);
  return put.digest;
}
