import { Transform, type Readable } from "node:stream";
import { VmError } from "../../errors.ts";
import { tarEntries } from "../../lib/tar-entries.ts";
import { RegistryClient } from "../../registry/client.ts";
import { resolveCredentials } from "../../registry/credentials.ts";
import { MediaType, type Descriptor, type ImageManifest } from "../../registry/oci.ts";
import { formatRef, parseRegistryRef } from "../../registry/reference.ts";
import { readSnapshotArchive } from "../../snapshot-file/archive-reader.ts";
import { ENTRY, HEAD_ENTRIES } from "../../snapshot-file/format.ts";
import { openInput } from "../../snapshot-file/input.ts";
import { verifyArchiveFile } from "../../snapshot-file/verify-file.ts";
import { ImageVerifier } from "../../snapshot-file/verify.ts";
import { VERSION } from "../../version.ts";
import { artifactFromEntries } from "./artifact.ts";
import { publishReferrer, vmReferrers } from "./referrers.ts";

export interface FilePushOptions {
  file: string;
  /** registry/repository:tag */
  target: string;
  cwd: string;
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  onPhase: (phase: "verifying" | "uploading", total: number) => void;
  onBytes: (n: number) => void;
}

export interface FilePushResult {
  name: string;
  ref: string;
  digest: string;
  metadataDigest: string;
  layers: { moved: number; skipped: number; done: number; total: number };
  metadataPresent: boolean;
  referrers: "api" | "tag";
  signedBy: string | undefined;
}

const LAYER_TYPES = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;

/**
 * `vm snapshot push FILE REF`, with no engine (CI machines often have none): the whole file is verified
 * first, as `vm snapshot verify` does; then the layers the registry lacks are uploaded straight from a
 * second read of the file, as the file holds them; then the image manifest (its config unchanged, so
 * its digest is the one the file records), then the file's own metadata, checksums and signature as
 * the image's referrer: a file signed at export stays signed, with no key on the pushing machine.
 */
export async function pushSnapshotFile(options: FilePushOptions): Promise<FilePushResult> {
  const target = parseRegistryRef(options.target);
  if (target.digest)
    throw new VmError("REGISTRY_REF_INVALID", `${options.target}: push to a tag, not a digest`, {
      hint: "e.g. vm snapshot push ./vibe.snapshot.tar.gz registry.example.com/team/vibe:2024-10",
    });
  if (options.file === "-")
    throw new VmError(
      "VERIFY_NEEDS_FILE",
      "vm snapshot push reads the file twice, so it needs a file, not standard input",
      {
        hint: "Save the stream to a file first",
      },
    );
  const source = await openInput(options.file, options.cwd, options.stdin);
  source.stream.destroy();
  options.onPhase("verifying", source.size ?? 0);
  const verifier = new ImageVerifier();
  const contents = await verifyArchiveFile(
    options.file,
    options.cwd,
    options.onBytes,
    options.stdin,
    verifier,
  );
  if (contents.kind !== "vm")
    throw new VmError(
      "USAGE",
      `${options.file} is a vm 3.x file: it has no checksums or signature to publish`,
      {
        hint: "Import it (vm snapshot import FILE) and push the snapshot: vm snapshot push @NAME REF",
      },
    );
  const { manifest } = contents;
  if (manifest.volumes?.length)
    throw new VmError(
      "USAGE",
      `${options.file} carries volumes (${manifest.volumes.join(", ")}), which a registry does not hold`,
      {
        hint: "Export the snapshot without --include-volumes to push it, or share this file as a file",
      },
    );
  const parts = await verifier.parts();

  const credentials = await resolveCredentials(target.registry, options.env);
  const client = new RegistryClient(target.registry, target.repository, {
    env: options.env,
    actions: ["pull", "push"],
    credentials,
  });
  try {
    await client.authenticate();
    const layers: Descriptor[] = parts.layers.map((layer) => ({
      mediaType: LAYER_TYPES[layer.compression],
      digest: layer.digest,
      size: layer.size,
    }));
    const missing = new Map<string, { digest: string; size: number }>();
    for (const layer of parts.layers)
      if (!missing.has(layer.path) && !(await client.blobExists(layer.digest)))
        missing.set(layer.path, layer);
    const uploaded = {
      layers: missing.size,
      bytes: [...missing.values()].reduce((sum, l) => sum + l.size, 0),
    };
    if (missing.size > 0) {
      options.onPhase("uploading", uploaded.bytes);
      await uploadFromFile(client, options, missing);
    }
    await client.putBlob(parts.config.digest, parts.config.bytes);
    const document: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: MediaType.ociConfig,
        digest: parts.config.digest,
        size: parts.config.bytes.length,
      },
      layers,
      annotations: {
        "org.opencontainers.image.created": manifest.created_at,
        "org.opencontainers.image.description": manifest.description,
        "dev.vm.snapshot.name": manifest.snapshot_name,
      },
    };
    const bytes = Buffer.from(JSON.stringify(document));
    const pushed = await client.putManifest(target.tag ?? "latest", MediaType.ociManifest, bytes);
    const subject: Descriptor = {
      mediaType: MediaType.ociManifest,
      digest: pushed.digest,
      size: bytes.length,
    };
    const entries: [string, Buffer][] = [[ENTRY.manifest, contents.manifestRaw]];
    for (const path of HEAD_ENTRIES) {
      const data = contents.small.get(path);
      if (data) entries.push([path, data]);
    }
    entries.push([ENTRY.checksums, contents.checksumsRaw!]);
    if (contents.signatureRaw) entries.push([ENTRY.signature, contents.signatureRaw]);
    const artifact = artifactFromEntries(entries, subject, {
      "org.opencontainers.image.created": manifest.created_at,
      "org.opencontainers.image.description": manifest.description,
      "dev.vm.snapshot.name": manifest.snapshot_name,
      "dev.vm.version": VERSION,
    });
    const existing = await vmReferrers(client, pushed.digest);
    const present = existing.descriptors.some((d) => d.digest === artifact.digest);
    const via = present ? existing.via : await publishReferrer(client, pushed.digest, artifact);
    return {
      name: manifest.snapshot_name,
      ref: formatRef({ ...target, digest: undefined }),
      digest: pushed.digest,
      metadataDigest: artifact.digest,
      layers: {
        moved: uploaded.layers,
        skipped: parts.layers.length - uploaded.layers,
        done: uploaded.bytes,
        total: parts.layers.reduce((sum, l) => sum + l.size, 0),
      },
      metadataPresent: present,
      referrers: via,
      signedBy: manifest.signed_by,
    };
  } finally {
    client.close();
  }
}

/** Reads the file again and streams each missing layer, as its tar entry, into its upload. */
async function uploadFromFile(
  client: RegistryClient,
  options: FilePushOptions,
  missing: Map<string, { digest: string; size: number }>,
): Promise<void> {
  const source = await openInput(options.file, options.cwd, options.stdin);
  await readSnapshotArchive(source.stream, {
    onImage: async (image) => {
      const { input, entries } = tarEntries();
      image.pipe(input);
      const piped = new Promise<void>((resolve, reject) => {
        input.once("finish", resolve);
        input.once("error", reject);
        image.once("error", reject);
      });
      for (;;) {
        const next = await entries.next();
        if (next.done) break;
        const entry = next.value;
        const layer = missing.get(entry.header.name);
        if (!layer) {
          entry.resume();
          await new Promise((resolve) => entry.once("end", resolve));
          continue;
        }
        // Counted on its way into the request (a "data" listener here would start the flow before the
        // upload is there to take it).
        const counted = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            options.onBytes(chunk.length);
            callback(null, chunk);
          },
        });
        // pipe() passes no errors on: a damaged entry must fail the upload, not leave it waiting.
        entry.once("error", (error) => counted.destroy(error));
        entry.pipe(counted);
        await client.putBlobStream(layer.digest, layer.size, counted);
        missing.delete(entry.header.name);
      }
      await piped;
      if (missing.size > 0)
        throw new VmError(
          "ARCHIVE_INVALID",
          `${options.file} changed while it was pushed: layers are missing on the second read`,
        );
      return "consumed";
    },
  });
}
