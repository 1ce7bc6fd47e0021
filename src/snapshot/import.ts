import { dirname, resolve } from "node:path";
import type { Readable } from "node:stream";
import { EngineError } from "../engine/http.ts";
import type { Services } from "../env/box.ts";
import { ExitCode, VmError, isVmError } from "../errors.ts";
import { guardInterrupts } from "../interrupt.ts";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import { counting, openInput } from "./input.ts";
import type { Manifest } from "./format.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import { importedMetadata } from "./imported-metadata.ts";
import { lockSnapshot, type SnapshotLock } from "./lock.ts";
import { imageRepo, validateSnapshotName, type SnapshotRef } from "./names.ts";
import { enforceSignature, signaturePolicy, type PublicKey } from "./signing.ts";
import { loadImage, newLoadRecord, removeLoaded, type LoadRecord } from "./image-load.ts";
import { ImageVerifier, verifyContents } from "./verify.ts";
import { removeVolumeQuietly, snapshotVolumeLabels, snapshotVolumeName, writeVolume } from "./volumes.ts";

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
}

export interface ImportResult {
  name: string;
  metadata: SnapshotMetadata;
  loaded: boolean;
  /** The whole file was read and checked (not only its head: signed files, files with volumes). */
  readWhole: boolean;
  replaced: boolean;
  signer: { fingerprint: string; comment: string } | undefined;
}

/**
 * `vm snapshot import`: reads the file once, streaming the image into the engine while checking every
 * byte; only when all of it matched does the snapshot get its tag and metadata. Any failure removes what
 * was loaded. An image the engine already holds is not loaded again, and only the file's head is read.
 */
export async function importSnapshot(services: Services, options: ImportOptions): Promise<ImportResult> {
  const { engine, snapshots } = services;
  if (options.verify) await verifyFirst(options);
  const policy = await signaturePolicy(
    dirname(snapshots.root),
    options.requireSignature,
    options.trustedKeys.map((f) => resolve(options.cwd, f)),
  );
  const source = await openInput(options.input, options.cwd, options.stdin);
  options.onStart({ total: source.size });
  const info = await engine.info();
  let ref: SnapshotRef | undefined;
  let old: SnapshotMetadata | undefined;
  let present: string | undefined;
  /** What the load may have made: the IDs the engine reported, and the image tar's own IDs. */
  const load: LoadRecord = newLoadRecord();
  const createdVolumes: string[] = [];
  let signer: PublicKey | undefined;
  let lock: SnapshotLock | undefined;
  let registering: Promise<ImportResult> | undefined;
  // Ctrl-C or SIGTERM: stop reading and remove what was loaded, unless the snapshot is being registered
  // already (a tag and one rename): then let that finish, so the snapshot is either whole or absent.
  const interrupted = async () => {
    if (registering) {
      await registering.catch(() => {});
    } else {
      source.stream.destroy();
      for (const volume of createdVolumes) await removeVolumeQuietly(engine, volume);
      await removeLoaded(services, load, present);
    }
    await lock?.release();
  };
  try {
    return await guardInterrupts(interrupted, importLocked);
  } finally {
    await lock?.release();
  }

  async function importLocked(): Promise<ImportResult> {
    const verifier = new ImageVerifier();
    /** A load the engine refused, or the guard: reported after the digests, which name what was damaged. */
    let deferred: unknown;

    let contents: ArchiveContents;
    try {
      contents = await readSnapshotArchive(counting(source.stream, options.onBytes), {
        onManifest: async (manifest) => {
          load.layers = manifest.layers;
          // The file's own name is checked even when --name replaces it: a hostile one marks a hostile file.
          validateSnapshotName(manifest.snapshot_name);
          const name = options.name ?? manifest.snapshot_name;
          validateSnapshotName(name);
          ref = { scope: "global", name };
          lock = await lockSnapshot(snapshots.root, ref, "imported");
          old = await snapshots.read(ref);
          if (old && !options.force) {
            throw new VmError("SNAPSHOT_EXISTS", `Snapshot '${name}' already exists`, {
              hint: "Use --force to overwrite or --name to import with different name",
              exitCode: ExitCode.conflict,
            });
          }
          await checkPlatform(manifest, `${info.os}/${info.architecture}`, options);
          // A file with volumes is read to the end even when the image is here: the volumes are after it.
          // Signatures and volumes sit after the image: such files are read to the end even when the image is here.
          present =
            manifest.volumes?.length || manifest.signed_by || policy.require
              ? undefined
              : await findPresent(services, manifest);
        },
        onImage: async (image) => {
          // The engine holds this very image (same config digest, so the same layers): nothing after the
          // head is used, so nothing after it is read. `vm snapshot verify` checks a whole file.
          if (present) return "skip";
          const outcome = await loadImage(engine, image, verifier.input, load, "refuse");
          deferred = outcome.deferred;
          return "consumed";
        },
        onVolume: async (volume, tar) => {
          const image = present ?? load.reported[0];
          if (!image || !ref)
            throw new VmError("ARCHIVE_INVALID", `volumes/${volume}.tar comes before the image`, {
              exitCode: ExitCode.integrity,
            });
          const engineName = snapshotVolumeName(ref.name, volume);
          await removeVolumeQuietly(engine, engineName);
          createdVolumes.push(engineName);
          await writeVolume(
            engine,
            image,
            engineName,
            tar,
            snapshotVolumeLabels(services.extraLabels, ref.name, volume),
          );
        },
      });
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
    } catch (error) {
      for (const volume of createdVolumes) await removeVolumeQuietly(engine, volume);
      await removeLoaded(services, load, present);
      throw error;
    }
    if (!ref)
      throw new VmError("ARCHIVE_INVALID", "The snapshot file has no manifest", {
        exitCode: ExitCode.integrity,
      });
    const engineId = present ?? (await loadedImageId(services, load.reported, contents.manifest));
    registering = registerImport(contents, ref, engineId);
    return registering;
  }

  async function registerImport(
    contents: ArchiveContents,
    ref: SnapshotRef,
    engineId: string,
  ): Promise<ImportResult> {
    try {
      const metadata = importedMetadata(ref, contents, engineId, info.serverVersion);
      await engine.images.tag(engineId, imageRepo(ref), ref.name);
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
        readWhole: !contents.stoppedAtImage,
        replaced: old !== undefined,
        signer: signer ? { fingerprint: signer.fingerprint, comment: signer.comment } : undefined,
      };
    } catch (error) {
      if (!present) await removeLoaded(services, load, present);
      throw error;
    }
  }
}

/** --verify: the whole file is checked before the engine is touched at all. */
async function verifyFirst(options: ImportOptions): Promise<void> {
  if (options.input === "-") {
    throw new VmError(
      "VERIFY_NEEDS_FILE",
      "--verify reads the file twice, so it needs a file, not standard input",
      {
        hint: "Save the stream to a file first, or import from stdin without --verify (every byte is still checked before the snapshot becomes visible)",
        exitCode: ExitCode.usage,
      },
    );
  }
  const { verifyArchiveFile } = await import("./verify-file.ts");
  await verifyArchiveFile(options.input, options.cwd, () => {}, options.stdin);
}

async function checkPlatform(manifest: Manifest, engine: string, options: ImportOptions): Promise<void> {
  const archive = manifest.platform.split("/").slice(0, 2).join("/");
  if (archive === engine) return;
  const warning = `Warning: Snapshot built for ${manifest.platform}, current platform is ${engine}\nThis may not work correctly.`;
  if (options.yes) {
    options.onWarning(warning + "\n");
    return;
  }
  if (options.confirm) {
    if (await options.confirm(`${warning} Continue?`)) return;
    throw new VmError("IMPORT_CANCELLED", "Import cancelled: nothing was imported", {
      exitCode: ExitCode.failure,
    });
  }
  throw new VmError(
    "PLATFORM_MISMATCH",
    `Snapshot built for ${manifest.platform}, current platform is ${engine}; refusing without a terminal to ask on`,
    {
      hint: "Pass --yes to import it anyway",
      exitCode: ExitCode.failure,
    },
  );
}

/** The engine's ID for the archive's image when the engine holds it already, else undefined. */
async function findPresent(services: Services, manifest: Manifest): Promise<string | undefined> {
  // Only IDs known to be this config digest: the digest itself (the classic store's ID), or what an earlier
  // create or import verified and recorded. The file's own claims about IDs are not trusted here.
  const direct = await services.engine.images.inspect(manifest.image_digest);
  if (direct?.id === manifest.image_digest) return direct.id;
  for (const known of await services.snapshots.list()) {
    if (known.image_id !== manifest.image_digest) continue;
    const image = await services.engine.images.inspect(known.engine_image_id);
    if (image && JSON.stringify(image.layers) === JSON.stringify(manifest.layers)) return image.id;
  }
  return undefined;
}

async function loadedImageId(services: Services, loaded: string[], manifest: Manifest): Promise<string> {
  for (const id of [...loaded, manifest.image_digest]) {
    const image = await services.engine.images.inspect(id);
    if (image && JSON.stringify(image.layers) === JSON.stringify(manifest.layers)) return image.id;
  }
  throw new VmError(
    "LOAD_FAILED",
    `The engine loaded the file but does not report the image ${manifest.image_digest}`,
    { exitCode: ExitCode.failure },
  );
}
