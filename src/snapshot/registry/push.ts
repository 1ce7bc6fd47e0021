import { resolve } from "node:path";
import type { Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import { RegistryClient } from "../../registry/client.ts";
import { dockerAuthHeader, resolveCredentials } from "../../registry/credentials.ts";
import { formatRef, parseRegistryRef, type RegistryRef } from "../../registry/reference.ts";
import { loadSigner } from "../../snapshot-file/signing.ts";
import { findSnapshotImage } from "../../store/resolve.ts";
import { VERSION } from "../../version.ts";
import { buildArtifact } from "./artifact.ts";
import { annotateImage, imageManifestFor, publishReferrer, vmReferrers } from "./referrers.ts";
import { LayerTracker, type LayerTally } from "./layers.ts";
import type { LayerProgress } from "../../engine/engine.ts";
import { pausePoint } from "../../lib/faults.ts";
import { PendingNames } from "./pending.ts";

export interface PushOptions {
  name: string;
  project: string | undefined;
  /** registry/repository:tag */
  target: string;
  cwd: string;
  /** Path of an ed25519 private key to sign the metadata with. */
  sign?: string;
  onProgress: (tally: LayerTally) => void;
}

export interface PushResult {
  name: string;
  ref: string;
  /** The image manifest's digest: what `docker pull REF@DIGEST` gets. */
  digest: string;
  /** vm's metadata artifact's digest. */
  metadataDigest: string;
  layers: LayerTally;
  /** The metadata was already in the registry (an unchanged snapshot pushed again). */
  metadataPresent: boolean;
  /** How the metadata is found: the registry's referrers API, or the `sha256-<hex>` tag it has instead. */
  referrers: "api" | "tag";
  signedBy: string | undefined;
}

/**
 * `vm snapshot push NAME REF`: the engine pushes the image (its own parallel upload, only the layers the
 * registry lacks, with the user's credentials); then vm's metadata follows as an OCI 1.1 referrer of the
 * exact manifest pushed, after checking that manifest is this snapshot's image.
 */
export async function pushSnapshot(services: Services, options: PushOptions): Promise<PushResult> {
  const { engine } = services;
  const target = parseRegistryRef(options.target);
  if (target.digest)
    throw new VmError("REGISTRY_REF_INVALID", `${options.target}: push to a tag, not a digest`, {
      hint: "e.g. vm snapshot push vibe-base registry.example.com/team/vibe:2024-10",
    });
  const { ref, metadata, image } = await findSnapshotImage(
    engine,
    services.snapshots,
    options.name,
    options.project,
    services.log,
  );
  const signer = options.sign ? await loadSigner(resolve(options.cwd, options.sign)) : undefined;
  const credentials = await resolveCredentials(target.registry, services.env);
  const auth = dockerAuthHeader(credentials, target.registry);
  const client = new RegistryClient(target.registry, target.repository, {
    env: services.env,
    actions: ["pull", "push"],
    credentials,
  });
  try {
    await client.authenticate();
    const name = engineName(target);
    const tracker = new LayerTracker();
    const pushed = await withTag(services, image.id, target, () =>
      engine.images
        .push(name, {
          auth,
          onProgress: (event: LayerProgress) => {
            tracker.update(event);
            options.onProgress(tracker.tally());
          },
        })
        .catch((error: unknown) => {
          throw engineRefusal(error, target, credentials?.source);
        }),
    );
    await pausePoint(services.env, "push-before-metadata");
    const annotations = {
      "org.opencontainers.image.created": metadata.created_at,
      "org.opencontainers.image.description": metadata.description,
      ...(metadata.git ? { "org.opencontainers.image.revision": metadata.git.commit } : {}),
      "dev.vm.snapshot.name": ref.name,
    };
    // The manifest the engine pushed, read back by digest (so checked): it must be this snapshot's image;
    // then the tag gets it with the standard annotations.
    await imageManifestFor(client, pushed.digest, metadata.image_id, metadata.platform);
    const digest = await annotateImage(client, target.tag ?? "latest", pushed.digest, annotations);
    const subject = await imageManifestFor(client, digest, metadata.image_id, metadata.platform);
    const info = await engine.info();
    const artifact = buildArtifact({
      name: ref.name,
      metadata,
      subject: subject.descriptor,
      layers: subject.diffIds,
      engine: { version: info.serverVersion, image_store: info.imageStore },
      signer,
      annotations: { ...annotations, "dev.vm.version": VERSION },
    });
    const existing = await vmReferrers(client, digest);
    const present = existing.descriptors.some((d) => d.digest === artifact.digest);
    const via = present ? existing.via : await publishReferrer(client, digest, artifact);
    return {
      name: ref.name,
      ref: formatRef({ ...target, digest: undefined }),
      digest,
      metadataDigest: artifact.digest,
      layers: tracker.tally(subject.diffIds.length),
      metadataPresent: present,
      referrers: via,
      signedBy: signer?.fingerprint,
    };
  } finally {
    client.close();
  }
}

/** The engine's words for a refused login, said as vm says it (with what to run). */
export function engineRefusal(error: unknown, target: RegistryRef, source: string | undefined): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (
    !/unauthorized|denied|authentication required|no basic auth credentials|insufficient_scope/i.test(message)
  )
    return error;
  return new VmError(
    "REGISTRY_AUTH_FAILED",
    `${target.registry} refused ${target.repository} ${source ? `with the credentials from ${source}` : "without credentials"}: ${message.replace(/^The engine could not (push|pull) \S+: /, "")}`,
    {
      hint: source
        ? `Check the account's access to ${target.repository}, or log in again: docker login ${target.registry}`
        : `Log in first: docker login ${target.registry}`,
      cause: error,
    },
  );
}

/** The name the engine pushes: registry/repository:tag, Docker Hub's without its registry. */
function engineName(target: RegistryRef): string {
  const repository =
    target.registry === "docker.io"
      ? target.repository.replace(/^library\//, "")
      : `${target.registry}/${target.repository}`;
  return `${repository}:${target.tag ?? "latest"}`;
}

/**
 * The engine pushes what a name points at, so the snapshot's image gets the target's name for the push.
 * A name the user had for another image is given back afterwards; one vm added is removed, also after a
 * SIGKILL (by the next push or pull: pending.ts).
 */
async function withTag<T>(
  services: Services,
  imageId: string,
  target: RegistryRef,
  push: () => Promise<T>,
): Promise<T> {
  const { engine } = services;
  const name = engineName(target);
  const pending = await PendingNames.open(services.snapshots.root, engine);
  try {
    const before = await engine.images.inspect(name);
    if (before?.id !== imageId) {
      await pending.add({ name, image: imageId, ...(before ? { restore: before.id } : {}) });
      const colon = name.lastIndexOf(":");
      await engine.images.tag(imageId, name.slice(0, colon), name.slice(colon + 1));
    }
    await pausePoint(services.env, "push-tagged");
    return await push();
  } finally {
    await pending.undo(engine);
  }
}
