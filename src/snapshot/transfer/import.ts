import { dirname, resolve } from "node:path";
import { removeStaleSpools } from "../../lib/atomic.ts";
import type { Readable } from "node:stream";
import { EngineError } from "../../engine/errors.ts";
import type { Services } from "../../env/services.ts";
import { VmError, isVmError } from "../../errors.ts";
import { pausePoint } from "../../lib/faults.ts";
import { transaction } from "../../lib/transaction.ts";
import { checkPlatform, findPresent, loadedImageId, verifyFirst } from "./import-checks.ts";
import { readSnapshotArchive } from "../../snapshot-file/archive-reader.ts";
import type { Manifest } from "../../snapshot-file/format.ts";
import { LEGACY_NOTE } from "../../snapshot-file/legacy-format.ts";
import {
  finishLegacyImport,
  legacyImportReader,
  removeSpooled,
  unsignedLegacy,
  type LegacyImportState,
  type LegacyStreamed,
} from "./legacy-import.ts";
import { counting, openInput, settled, type Input, type RemoteOptions } from "../../snapshot-file/input.ts";
import { platformString, type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import { importedMetadata, legacyImportedMetadata } from "./imported-metadata.ts";
import { lockSnapshot } from "../../store/lock.ts";
import { takeInventory } from "../inventory.ts";
import { ownerLabel } from "../leftovers.ts";
import { managedLabels } from "../../engine/labels.ts";
import { imageRepo, validateSnapshotName, type SnapshotRef } from "../../snapshot-file/names.ts";
import { enforceSignature, signaturePolicy, type PublicKey } from "../../snapshot-file/signing.ts";
import { loadImage, newLoadRecord, removeLoaded, type LoadRecord } from "./image-load.ts";
import { ImageVerifier, verifyContents } from "../../snapshot-file/verify.ts";
import {
  removeVolumeQuietly,
  snapshotVolumeLabels,
  snapshotVolumeName,
  writeVolume,
} from "../../store/volumes.ts";

export interface ImportOptions {
  /** A path, or "-" for `stdin`. */
  input: string;
  stdin: Readable;
  cwd: string;
  name?: string;
  force: boolean;
  verify: boolean;
  /** Answers the platform question on a terminal; undefined when there is no terminal. */
  confirm: ((question: string) => Promise<boolean>) | undefined;
  yes: boolean;
  requireSignature: boolean;
  trustedKeys: string[];
  onStart: (info: { total: number | undefined }) => void;
  onBytes: (n: number) => void;
  onWarning: (text: string) => void;
  /** Where a vm 3.x file's volumes wait when they come before its image. */
  spoolDir: string;
  /** How a file at an http(s) URL is read. */
  remote?: RemoteOptions;
}

export interface ImportResult {
  name: string;
  metadata: SnapshotMetadata;
  loaded: boolean;
  /** The whole file was read and checked (not only its head: signed files, files with volumes). */
  readWhole: boolean;
  replaced: boolean;
  /** For a file written by vm 3.x, what was and what could not be checked (nothing else vouches for it). */
  legacy: string | undefined;
  signer: { fingerprint: string; comment: string } | undefined;
}

/**
 * `vm snapshot import`: reads the file once, streaming the image into the engine while checking every
 * byte; only when all of it matched does the snapshot get its tag and metadata. It is one transaction
 * (lib/transaction.ts): each step that makes something registers its undo, and a failure or an
 * interruption undoes them all; the registration is its commit. An image the engine already holds is not
 * loaded again, and only the file's head is read.
 */
export async function importSnapshot(services: Services, options: ImportOptions): Promise<ImportResult> {
  const { engine, snapshots } = services;
  // What an export or import killed earlier left in the scratch folder (a spooled image or volume).
  await removeStaleSpools(options.spoolDir);
  if (options.verify) await verifyFirst(options);
  const policy = await signaturePolicy(
    dirname(snapshots.root),
    options.requireSignature,
    options.trustedKeys.map((f) => resolve(options.cwd, f)),
  );
  const source = await openInput(options.input, options.cwd, options.stdin, options.remote);
  options.onStart({ total: source.size });
  const info = await engine.info();

  return settled(source, () => importFrom(services, options, source, policy, info));
}

async function importFrom(
  services: Services,
  options: ImportOptions,
  source: Input,
  policy: Awaited<ReturnType<typeof signaturePolicy>>,
  info: Awaited<ReturnType<Services["engine"]["info"]>>,
): Promise<ImportResult> {
  const { engine, snapshots } = services;
  return transaction(async (tx) => {
    tx.stop(() => source.stream.destroy());
    /** What the load may have made: the IDs the engine reported, and the image tar's own IDs. */
    const load: LoadRecord = newLoadRecord();
    /** The engine's copy of this very image, when it has one: then nothing is loaded and nothing removed. */
    let present: string | undefined;
    tx.undo(() => removeLoaded(services, load, present));
    const createdVolumes: string[] = [];
    tx.undo(async () => {
      for (const volume of createdVolumes) await removeVolumeQuietly(engine, volume);
    });
    const streamed: LegacyStreamed = {
      read: { volumes: [] },
      ref: undefined,
      deferred: undefined,
      spooled: [],
    };
    tx.undo(() => removeSpooled(streamed));
    let claimed: { ref: SnapshotRef; old: SnapshotMetadata | undefined } | undefined;
    const verifier = new ImageVerifier();
    /** A load the engine refused, or the guard: reported after the digests, which name what was damaged. */
    let deferred: unknown;

    /** Takes the snapshot's name: checks it, locks it, and refuses an existing one unless --force. */
    async function claim(fileName: string): Promise<SnapshotRef> {
      const name = options.name ?? fileName;
      validateSnapshotName(name);
      const ref: SnapshotRef = { scope: "global", name };
      const lock = await lockSnapshot(snapshots.root, ref, "imported");
      tx.finally(() => lock.release());
      const old = await snapshots.read(ref);
      if (old && !options.force) {
        throw new VmError("SNAPSHOT_EXISTS", `Snapshot '${name}' already exists`, {
          hint: "Use --force to overwrite or --name to import with different name",
        });
      }
      claimed = { ref, old };
      return ref;
    }

    /** The head is read: the name, the platform, and whether the engine has the image already. */
    async function admit(manifest: Manifest): Promise<void> {
      load.layers = manifest.layers;
      // The file's own name is checked even when --name replaces it: a hostile one marks a hostile file.
      validateSnapshotName(manifest.snapshot_name);
      await claim(manifest.snapshot_name);
      await checkPlatform(manifest.platform, `${info.os}/${info.architecture}`, options);
      // Signatures and volumes sit after the image: such files are read to the end even when the image is here.
      present =
        manifest.volumes?.length || manifest.signed_by || policy.require
          ? undefined
          : await findPresent(services, manifest);
    }

    const legacyState: LegacyImportState = {
      engine,
      load,
      createdVolumes,
      extraLabels: services.extraLabels,
      spoolDir: options.spoolDir,
      claim: (fileName) => {
        // A 3.x name is not held to vm's rules when --name replaces it, but must not be a path.
        if (options.name === undefined || /[/\\]|^\.|\0/.test(fileName)) validateSnapshotName(fileName);
        return claim(fileName);
      },
    };
    const legacyReader = legacyImportReader(legacyState, verifier, streamed);
    const contents = await readSnapshotArchive(
      counting(source.stream, options.onBytes),
      {
        onManifest: admit,
        onImage: async (image) => {
          // The engine holds this very image (same config digest, so the same layers): nothing after the
          // head is used, so nothing after it is read. `vm snapshot verify` checks a whole file.
          if (present) return "skip";
          ({ deferred } = await loadImage(engine, image, verifier.input, load, "refuse"));
          return "consumed";
        },
        onVolume: async (volume, tar) => {
          const image = present ?? load.reported[0];
          if (!image || !claimed)
            throw new VmError("ARCHIVE_INVALID", `volumes/${volume}.tar comes before the image`);
          const engineName = snapshotVolumeName(claimed.ref.name, volume);
          await removeVolumeQuietly(engine, engineName);
          createdVolumes.push(engineName);
          const labels = snapshotVolumeLabels(services.extraLabels, claimed.ref.name, volume);
          await writeVolume(engine, image, engineName, tar, labels);
        },
      },
      async (first, rest) => {
        if (policy.require) throw unsignedLegacy();
        return legacyReader(first, rest);
      },
    );

    let metadata: SnapshotMetadata;
    let engineId: string;
    let signer: PublicKey | undefined;
    if (contents.kind === "vm3") {
      streamed.read = contents.result;
      const legacy = await finishLegacyImport(legacyState, streamed, verifier);
      if (!claimed) throw new VmError("ARCHIVE_INVALID", "The snapshot file has no manifest");
      engineId = await loadedImageId(services, load.reported, legacy.identity.diffIds);
      const image = (await engine.images.inspect(engineId))!;
      await checkPlatform(platformString(image.platform), `${info.os}/${info.architecture}`, options);
      const inventory = await takeInventory(
        engine,
        engineId,
        managedLabels("snapshot", services.extraLabels, ownerLabel()),
      );
      metadata = legacyImportedMetadata(
        claimed.ref,
        legacy,
        image,
        inventory,
        info.serverVersion,
        source.path,
      );
    } else {
      // Every digest of a vm snapshot file, its signature, then what the guard or the engine refused.
      verifyContents(contents);
      signer = contents.stoppedAtImage
        ? undefined
        : enforceSignature(policy, contents.signatureRaw, contents.checksumsRaw, contents.manifest.signed_by);
      // What the guard refused comes first (a re-sealed hostile file passes every digest), then the image's
      // own content addresses, then what the engine refused.
      if (isVmError(deferred, "IMAGE_NAMES_REFUSED") || isVmError(deferred, "IMAGE_INVALID")) throw deferred;
      if (!present) await verifier.result(contents.manifest);
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a VmError from the load
      if (deferred !== undefined) throw deferred;
      if (!claimed) throw new VmError("ARCHIVE_INVALID", "The snapshot file has no manifest");
      engineId = present ?? (await loadedImageId(services, load.reported, contents.manifest.layers));
      metadata = importedMetadata(claimed.ref, contents, engineId, info.serverVersion, source.path);
    }

    const { ref, old } = claimed;
    await pausePoint(services.env, "import-before-commit");
    return tx.commit(async () => {
      await engine.images.tag(engineId, imageRepo(ref), ref.name);
      await pausePoint(services.env, "import-committing");
      await snapshots.write(ref, metadata);
      if (
        old &&
        old.engine_image_id !== engineId &&
        !(await snapshots.imageShared(old.engine_image_id, ref))
      ) {
        await engine.images.remove(old.engine_image_id).catch((error: unknown) => {
          if (!(error instanceof EngineError)) throw error;
        });
      }
      return {
        name: ref.name,
        metadata,
        loaded: !present,
        readWhole: contents.kind === "vm3" || !contents.stoppedAtImage,
        replaced: old !== undefined,
        legacy: contents.kind === "vm3" ? LEGACY_NOTE : undefined,
        signer: signer ? { fingerprint: signer.fingerprint, comment: signer.comment } : undefined,
      };
    });
  });
}
