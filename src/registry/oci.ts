import { createHash } from "node:crypto";
import { z } from "zod";
import { VmError } from "../errors.ts";

/** Media types of the OCI image spec 1.1 and Docker's schema 2 that vm reads and writes. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** What vm asks for when it reads a manifest: every kind it can read. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerList,
  MediaType.dockerManifest,
].join(", ");

/** The OCI 1.1 empty descriptor's blob: `{}`. */
export const EMPTY_BLOB = Buffer.from("{}");

const digestPattern = /^sha256:[0-9a-f]{64}$/;

const descriptorSchema = z.object({
  mediaType: z.string(),
  digest: z.string().regex(digestPattern),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof indexSchema>;

/** A manifest as the registry sent it: its exact bytes (what the digest covers) and what they say. */
export type FetchedManifest =
  | { kind: "manifest"; mediaType: string; digest: string; bytes: Buffer; manifest: ImageManifest }
  | { kind: "index"; mediaType: string; digest: string; bytes: Buffer; index: ImageIndex };

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function isDigest(text: string): boolean {
  return digestPattern.test(text);
}

/** Parses a manifest's bytes by their media type (the header's, else the document's own field). */
export function parseManifestBytes(
  bytes: Buffer,
  headerType: string | undefined,
  where: string,
): FetchedManifest {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw invalidManifest(where, "it is not JSON");
  }
  const declared = (data as { mediaType?: unknown } | null)?.mediaType;
  const mediaType =
    typeof declared === "string" ? declared : (headerType?.split(";")[0]?.trim() ?? MediaType.ociManifest);
  const digest = sha256Digest(bytes);
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList) {
    const parsed = indexSchema.safeParse(data);
    if (!parsed.success) throw invalidManifest(where, issueOf(parsed.error));
    return { kind: "index", mediaType, digest, bytes, index: parsed.data };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest) {
    const parsed = imageManifestSchema.safeParse(data);
    if (!parsed.success) throw invalidManifest(where, issueOf(parsed.error));
    return { kind: "manifest", mediaType, digest, bytes, manifest: parsed.data };
  }
  throw invalidManifest(where, `its media type ${mediaType} is not one vm reads`);
}

export function parseIndexBytes(bytes: Buffer, where: string): ImageIndex {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw invalidManifest(where, "it is not JSON");
  }
  const parsed = indexSchema.safeParse(data);
  if (!parsed.success) throw invalidManifest(where, issueOf(parsed.error));
  return parsed.data;
}

function issueOf(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join(".") || "root"}: ${issue?.message}`;
}

function invalidManifest(where: string, why: string): VmError {
  return new VmError(
    "REGISTRY_MANIFEST_INVALID",
    `The registry's manifest for ${where} is not one vm can read: ${why}`,
    {
      hint: "Check that the reference names an image; `docker manifest inspect` shows what the registry holds",
    },
  );
}

/** The OCI image config's parts vm checks: the layers' diff IDs and the platform. */
export const imageConfigSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(z.string().regex(digestPattern)) }),
});
export type OciImageConfig = z.infer<typeof imageConfigSchema>;
