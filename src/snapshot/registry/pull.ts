import { dirname, resolve } from "node:path";
import { isNotFound } from "../../engine/errors.ts";
import { managedLabels } from "../../engine/labels.ts";
import type { Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import { pausePoint } from "../../lib/faults.ts";
import { transaction } from "../../lib/transaction.ts";
import { RegistryClient } from "../../registry/client.ts";
import { dockerAuthHeader, resolveCredentials } from "../../registry/credentials.ts";
import { formatRef, parseRegistryRef, type RegistryRef } from "../../registry/reference.ts";
import { platformString, type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import { imageRepo, validateSnapshotName, type SnapshotRef } from "../../snapshot-file/names.ts";
import { signaturePolicy } from "../../snapshot-file/signing.ts";
import { lockSnapshot } from "../../store/lock.ts";
import { takeInventory } from "../inventory.ts";
import { ownerLabel } from "../leftovers.ts";
import { checkPlatform } from "../transfer/import-checks.ts";
import { LayerTracker, type LayerTally } from "./layers.ts";
import { imageManifestFor, type PlatformImage } from "./referrers.ts";
import { PendingNames } from "./pending.ts";
import {
  checkEngineImage,
  parsePlatform,
  pulledMetadata,
  readMetadata,
  type Checked,
} from "./pull-checks.ts";
import { engineRefusal } from "./push.ts";

export interface PullOptions {
  /** registry/repository:tag or @digest */
  source: string;
  /** The snapshot's name here (default: the name it was pushed with; for a plain image, repository-tag). */
  name?: string;
  force: boolean;
  yes: boolean;
  confirm: ((question: string) => Promise<boolean>) | undefined;
  requireSignature: boolean;
  trustedKeys: string[];
  cwd: string;
  onProgress: (tally: LayerTally) => void;
  onWarning: (text: string) => void;
}

export interface PullResult {
  name: string;
  ref: string;
  digest: string;
  metadata: SnapshotMetadata;
  /** The engine pulled layers (false: it held the image already). */
  pulled: boolean;
  layers: LayerTally;
  replaced: boolean;
  /** The image carried no vm metadata: a plain image, registered as such and unsigned. */
  plain: boolean;
  signer: { fingerprint: string; comment: string } | undefined;
}

/**
 * `vm snapshot pull REF`: reads vm's metadata (the OCI referrer of the image's manifest), checks it with
 * the file format's rules and the signature policy, checks the registry's image is the one it describes
 * (config digest, diff IDs), has the engine pull exactly that manifest (by digest), checks the engine's
 * image, and only then registers the snapshot. One transaction: a failure or an interruption leaves
 * nothing registered and nothing vm pulled.
 */
export async function pullSnapshot(services: Services, options: PullOptions): Promise<PullResult> {
  const { engine, snapshots } = services;
  const source = parseRegistryRef(options.source);
  const policy = await signaturePolicy(
    dirname(snapshots.root),
    options.requireSignature,
    options.trustedKeys.map((f) => resolve(options.cwd, f)),
  );
  const info = await engine.info();
  const credentials = await resolveCredentials(source.registry, services.env);
  const client = new RegistryClient(source.registry, source.repository, {
    env: services.env,
    actions: ["pull"],
    credentials,
  });
  try {
    const reference = source.digest ?? source.tag ?? "latest";
    const top = await client.manifest(reference);
    const shown = formatRef(source);
    if (!top)
      throw new VmError("REGISTRY_NOT_FOUND", `${shown} is not in the registry`, {
        hint: "Check the reference (registry/repository:tag), or push the snapshot first: vm snapshot push NAME REF",
      });
    const here = { os: info.os, architecture: info.architecture };
    const checked = await readMetadata(client, top.digest, policy);
    const expected = checked?.contents.manifest;
    const platform = expected ? parsePlatform(expected.platform) : here;
    const image = await imageManifestFor(client, reference, expected?.image_digest, platform, top);
    if (!checked && top.kind === "index") {
      // An index's vm metadata may refer to the platform's own manifest instead.
      const inner = await readMetadata(client, image.manifestDigest, policy);
      if (inner) return await finish(services, options, source, image, inner, credentials);
    }
    if (expected && JSON.stringify(image.diffIds) !== JSON.stringify(expected.layers))
      throw new VmError(
        "REGISTRY_DIGEST_MISMATCH",
        `${shown}'s image config lists other layers than the snapshot's metadata says`,
        { hint: "The metadata belongs to another image; nothing was registered" },
      );
    if (!checked) {
      if (policy.require)
        throw new VmError(
          "SIGNATURE_MISSING",
          `${shown} carries no vm metadata, so no signature, and this pull requires one`,
          {
            hint: "Push it with vm snapshot push --sign KEY, or pull without --require-signature (and without require_signature in settings.yaml)",
          },
        );
      options.onWarning(
        `${shown} carries no vm metadata: pulling it as a plain image (unsigned; its languages and tools are taken here)\n`,
      );
    }
    return await finish(services, options, source, image, checked, credentials);
  } finally {
    client.close();
  }
}

async function finish(
  services: Services,
  options: PullOptions,
  source: RegistryRef,
  image: PlatformImage,
  checked: Checked | undefined,
  credentials: Awaited<ReturnType<typeof resolveCredentials>>,
): Promise<PullResult> {
  const { engine, snapshots } = services;
  const info = await engine.info();
  const manifest = checked?.contents.manifest;
  const name = options.name ?? manifest?.snapshot_name ?? plainName(source);
  validateSnapshotName(name);
  if (manifest) validateSnapshotName(manifest.snapshot_name);
  const ref: SnapshotRef = { scope: "global", name };
  const pinned = `${engineRepository(source)}@${image.descriptor.digest}`;
  const shown = formatRef({ ...source, digest: undefined });

  return transaction(async (tx) => {
    const lock = await lockSnapshot(snapshots.root, ref, "pulled");
    tx.finally(() => lock.release());
    const old = await snapshots.read(ref);
    if (old && !options.force)
      throw new VmError("SNAPSHOT_EXISTS", `Snapshot '${name}' already exists`, {
        hint: "Use --force to replace it, or --name to pull it under another name",
      });
    await checkPlatform(platformString(image.platform), `${info.os}/${info.architecture}`, {
      yes: options.yes,
      confirm: options.confirm,
      onWarning: options.onWarning,
    });
    // First what a killed pull left (its pinned name), so that it is not taken for the user's own.
    const pending = await PendingNames.open(snapshots.root, engine);
    tx.undo(() => pending.undo(engine));
    const held = await engine.images.inspect(pinned).catch(() => undefined);
    const tracker = new LayerTracker();
    if (!held) {
      await pending.add({ name: pinned, image: "" });
      await engine.images
        .pullFrom(pinned, {
          auth: dockerAuthHeader(credentials, source.registry),
          onProgress: (event) => {
            tracker.update(event);
            options.onProgress(tracker.tally());
          },
        })
        .catch((error: unknown) => {
          throw engineRefusal(error, source, credentials?.source);
        });
    }
    const pulled = await engine.images.inspect(pinned);
    if (!pulled)
      throw new VmError("LOADED_IMAGE_MISSING", `The engine pulled ${pinned} but does not report it`);
    checkEngineImage(pulled, image, shown);
    const inventory = manifest
      ? undefined
      : await takeInventory(engine, pulled.id, managedLabels("snapshot", services.extraLabels, ownerLabel()));
    const registry = { ref: shown, digest: image.descriptor.digest };
    const metadata = pulledMetadata({
      ref,
      name,
      shown,
      checked,
      pulled,
      inventory,
      registry,
      configDigest: image.configDigest,
      engineVersion: info.serverVersion,
    });
    await pausePoint(services.env, "pull-before-commit");
    return tx.commit(async () => {
      await engine.images.tag(pulled.id, imageRepo(ref), ref.name);
      await snapshots.write(ref, metadata);
      // The snapshot's own tag holds the image now; the pinned name the pull added goes (as vm removes
      // what it made), unless it was there before.
      if (!held) await engine.images.remove(pinned).catch(() => undefined);
      await pending.close();
      if (
        old &&
        old.engine_image_id !== pulled.id &&
        !(await snapshots.imageShared(old.engine_image_id, ref))
      ) {
        await engine.images.remove(old.engine_image_id).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
      }
      return {
        name,
        ref: shown,
        digest: image.descriptor.digest,
        metadata,
        pulled: !held,
        layers: tracker.tally(image.diffIds.length),
        replaced: old !== undefined,
        plain: !checked,
        signer: checked?.signer
          ? { fingerprint: checked.signer.fingerprint, comment: checked.signer.comment }
          : undefined,
      };
    });
  });
}

/** The repository as the engine names it: Docker Hub's without its registry. */
export function engineRepository(ref: RegistryRef): string {
  return ref.registry === "docker.io"
    ? ref.repository.replace(/^library\//, "")
    : `${ref.registry}/${ref.repository}`;
}

/** A name for a plain image: its repository's last part and its tag (`vibe-2024-10`). */
function plainName(ref: RegistryRef): string {
  const last = ref.repository.split("/").pop() ?? "image";
  return `${last}-${ref.tag ?? "latest"}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, "-")
    .slice(0, 128);
}
