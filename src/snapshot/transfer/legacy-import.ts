import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Engine } from "../../engine/engine.ts";
import { VmError } from "../../errors.ts";
import { spoolPathIn } from "../../lib/atomic.ts";
import { decodeError } from "../../snapshot-file/archive-decode.ts";
import type { LegacyReader } from "../../snapshot-file/archive-reader.ts";
import { invalidArchive } from "../../snapshot-file/format.ts";
import { legacyEntries } from "../../snapshot-file/legacy-reader.ts";
import { loadImage, type LoadRecord } from "./image-load.ts";
import {
  checkLegacy,
  type ImageIdentity,
  type LegacyChecked,
  type LegacyRead,
} from "../../snapshot-file/legacy-format.ts";
import type { SnapshotRef } from "../../snapshot-file/names.ts";
import type { ImageVerifier } from "../../snapshot-file/verify.ts";
import {
  removeVolumeQuietly,
  snapshotVolumeLabels,
  snapshotVolumeName,
  writeVolume,
} from "../../store/volumes.ts";

export interface LegacyImportState {
  engine: Engine;
  load: LoadRecord;
  /** Engine volumes made so far, removed by the caller if the import fails. */
  createdVolumes: string[];
  extraLabels: Record<string, string>;
  spoolDir: string;
  /** Locks the snapshot's name and checks it is free; called once the name is known. */
  claim: (manifestName: string) => Promise<SnapshotRef>;
}

export interface LegacyStreamed {
  read: LegacyRead;
  ref: SnapshotRef | undefined;
  /** A load the guard or the engine refused: thrown after the checks that name what was damaged. */
  deferred: unknown;
  /** Volumes that came before the image, spooled to disk until there is an image to write them with. */
  spooled: { name: string; path: string; compression: "gzip" | "zstd" }[];
}

/** The reader an import uses for a vm 3.x file: the image into the engine (names taken out), the volumes into volumes. */
export function legacyImportReader(
  state: LegacyImportState,
  verifier: ImageVerifier,
  streamed: LegacyStreamed,
): LegacyReader<LegacyRead> {
  return legacyEntries({
    onManifest: async (manifest) => {
      streamed.ref = await state.claim(manifest.snapshot_name);
    },
    onImage: async (image) => {
      // vm 3.x saved its images by tag, so the tar names them: the names are taken out on the way in.
      const outcome = await loadImage(state.engine, image, verifier.input, state.load, "strip");
      streamed.deferred = outcome.deferred;
      for (const spooled of streamed.spooled.splice(0)) {
        const ref = requireRef(streamed);
        await writeLegacyVolume(
          state,
          ref,
          spooled.name,
          createReadStream(spooled.path),
          spooled.compression,
        );
        await rm(spooled.path, { force: true });
      }
    },
    onVolume: async (name, archive, compression) => {
      if (streamed.ref && state.load.reported[0]) {
        await writeLegacyVolume(state, streamed.ref, name, archive, compression);
        return;
      }
      await mkdir(state.spoolDir, { recursive: true });
      const path = spoolPathIn(state.spoolDir);
      streamed.spooled.push({ name, path, compression });
      await pipeline(archive, createWriteStream(path, { mode: 0o600 }));
    },
  });
}

function requireRef(streamed: LegacyStreamed): SnapshotRef {
  if (!streamed.ref) throw invalidArchive("The vm 3.x snapshot file's volumes come before its manifest.json");
  return streamed.ref;
}

async function writeLegacyVolume(
  state: LegacyImportState,
  ref: SnapshotRef,
  name: string,
  archive: Readable,
  compression: "gzip" | "zstd",
): Promise<void> {
  const image = state.load.reported[0];
  if (!image) throw invalidArchive("The vm 3.x snapshot file has no image to go with its volumes");
  const engineName = snapshotVolumeName(ref.name, name);
  await removeVolumeQuietly(state.engine, engineName);
  state.createdVolumes.push(engineName);
  await writeVolume(
    state.engine,
    image,
    engineName,
    inflated(archive, compression),
    snapshotVolumeLabels(state.extraLabels, ref.name, name),
  );
}

/**
 * A volume archive (a gzip or zstd tar inside the file's own compression) as a plain tar, stopped if it
 * inflates past 256 MiB and 500 times its compressed size: a decompression bomb, not a volume.
 */
function inflated(archive: Readable, compression: "gzip" | "zstd"): Readable {
  let compressed = 0;
  let out = 0;
  archive.on("data", (chunk: Buffer) => (compressed += chunk.length));
  const inflate = compression === "gzip" ? createGunzip() : createZstdDecompress();
  const bound = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      out += chunk.length;
      if (out > 256 * 1024 * 1024 && out > 500 * compressed)
        return callback(
          invalidArchive("A volume archive in the vm 3.x snapshot file inflates like a decompression bomb"),
        );
      callback(null, chunk);
    },
  });
  archive.on("error", (error) => bound.destroy(error));
  inflate.on("error", (error) => bound.destroy(decodeError(error) as Error));
  archive.pipe(inflate).pipe(bound);
  return bound;
}

/**
 * After the whole file has passed: what the guard refused, the image's own content addresses, the file's
 * documents against its entries and the image ID they record, then what the engine refused. Spooled
 * volumes (the file had no image before them) are written now. Returns the checked documents.
 */
export async function finishLegacyImport(
  state: LegacyImportState,
  streamed: LegacyStreamed,
  verifier: ImageVerifier,
): Promise<{ checked: LegacyChecked; identity: ImageIdentity; ref: SnapshotRef }> {
  const { deferred } = streamed;
  if (deferred instanceof VmError && deferred.code === "IMAGE_INVALID") throw deferred;
  const identity = streamed.read.image ? await verifier.identity() : undefined;
  if (identity) state.load.layers = identity.diffIds;
  const checked = checkLegacy(streamed.read, identity);
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the load's VmError, after the checks
  if (deferred !== undefined) throw deferred;
  const ref = requireRef(streamed);
  for (const spooled of streamed.spooled.splice(0)) {
    await writeLegacyVolume(state, ref, spooled.name, createReadStream(spooled.path), spooled.compression);
    await rm(spooled.path, { force: true });
  }
  return { checked, identity: identity!, ref };
}

/** Removes volume archives spooled by a failed or interrupted import. */
export async function removeSpooled(streamed: LegacyStreamed): Promise<void> {
  for (const spooled of streamed.spooled.splice(0)) await rm(spooled.path, { force: true });
}

/** Refuses a vm 3.x file where a signature is required: such files have none. */
export function unsignedLegacy(): VmError {
  return new VmError(
    "SIGNATURE_REQUIRED",
    "This is a vm 3.x snapshot file, which carries no signature, and a signature is required",
    {
      hint: "Ask its maker for a signed export (vm snapshot export --sign KEY), or import without --require-signature (and without require_signature in settings.yaml)",
    },
  );
}
