import { z } from "zod";

export const METADATA_FORMAT = 1;

const languages = z.record(z.string(), z.string());

/** metadata.json of a stored snapshot. Documented in docs/snapshots.md; `vm snapshot list --format json` shows a summary. */
export const metadataSchema = z.object({
  format: z.literal(METADATA_FORMAT),
  name: z.string(),
  scope: z.enum(["global", "project"]),
  project: z.string().nullable(),
  created_at: z.string(),
  description: z.string(),
  source: z.enum(["committed", "built", "imported"]),
  /** The image config digest: the identity that survives save/load and moving between image stores. */
  image_id: z.string(),
  /** What this engine calls the image (the config digest on the classic store, the manifest digest on containerd's). */
  engine_image_id: z.string(),
  image_tag: z.string(),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }),
  size_bytes: z.number(),
  languages,
  tools: z.array(z.object({ name: z.string(), version: z.string(), source: z.string() })),
  os_packages: z.object({ manager: z.string().nullable(), count: z.number(), packages: z.array(z.string()) }),
  build: z.object({
    vm_version: z.string(),
    engine_version: z.string(),
    image_store: z.string(),
    build_date: z.string(),
    box: z.string().nullable(),
    dockerfile: z.string().nullable(),
    dockerfile_sha256: z.string().nullable(),
    /** Build args by name; a value only when the build was asked to record them (--record-build-args),
     * null otherwise: a value is often a token (NPM_TOKEN), and the metadata travels with every export. */
    build_args: z.record(z.string(), z.string().nullable()),
    build_args_note: z.string().optional(),
  }),
  git: z.object({ branch: z.string().nullable(), commit: z.string(), dirty: z.boolean() }).nullable(),
  inventory_note: z.string().optional(),
  /** Volumes that came with an imported file, kept as vm-snapshot-<name>-<volume>. */
  volumes: z.array(z.string()).optional(),
  imported: z
    .object({
      at: z.string(),
      vm_version: z.string(),
      engine_version: z.string(),
      original_name: z.string(),
      /** The file it was imported from ("-": standard input). */
      file: z.string().optional(),
      /** "vm", or "vm 3.x" for a file of the earlier tool (no checksums, no signature), or "image" for
       * a registry image that carried no vm metadata. */
      format: z.enum(["vm", "vm 3.x", "image"]).optional(),
      /** For `vm snapshot pull` and `vm.box: "@registry/repo:tag"`: the reference and the digest pulled. */
      registry: z.object({ ref: z.string(), digest: z.string() }).optional(),
    })
    .optional(),
});

export type SnapshotMetadata = z.infer<typeof metadataSchema>;

export function platformString(p: SnapshotMetadata["platform"]): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}
